"""pymalloc's own bookkeeping: arenas -> pools -> allocated blocks.

Trusting the allocator (not appearances): a block counts as allocated only if
it lies below its pool's high-water mark and is not on the pool's free list.
"""

from __future__ import annotations

import struct

ALIGNMENT_SHIFT = 4          # 16-byte size classes on 64-bit builds


def pool_and_arena_size(version):
    # 3.10 turned on the radix tree and with it 16 KiB pools in 1 MiB arenas.
    if version >= (3, 10):
        return 16 << 10, 1 << 20
    return 4 << 10, 256 << 10


def arena_table(rt):
    """(address of the arena_object array, its length), or None when not findable."""
    o, L = rt.objects, rt.layout
    if L.obmalloc.present and L.interp.obmalloc is not None:
        state = rt.main_interpreter.address + L.interp.obmalloc
        if rt.version.key >= (3, 13):
            state = o.ptr(state)          # 3.13 made interp->obmalloc a pointer
        arenas = o.ptr(state + L.obmalloc.arenas)
        count = struct.unpack("<I", rt.memory.read(state + L.obmalloc.maxarenas, 4))[0]
        return arenas, count
    # 3.8-3.11: file-level statics of obmalloc.c, named in the full symbol table.
    f = rt.module.file
    if f is None:
        return None
    a, m = f.lookup("arenas"), f.lookup("maxarenas")
    if a is None or m is None:
        return None
    arenas = o.ptr(a[0] + rt.module.bias)
    count = struct.unpack("<I", rt.memory.read(m[0] + rt.module.bias, 4))[0]
    return arenas, count
