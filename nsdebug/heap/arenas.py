"""pymalloc's own bookkeeping: arenas -> pools -> allocated blocks.

Trusting the allocator (not appearances): a block counts as allocated only if
it lies below its pool's high-water mark and is not on the pool's free list.
"""

from __future__ import annotations

import struct

from ..errors import NsdebugError

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


def allocated_blocks(rt, limit=1 << 26):
    """Yield (block address, block size) of every allocated pymalloc block."""
    table = arena_table(rt)
    if table is None:
        raise NsdebugError("pymalloc's arena table cannot be found (stripped build?)")
    arenas, count = table
    if count > 1 << 24:
        raise NsdebugError(f"arena table claims {count} arenas")
    L, mem = rt.layout, rt.memory
    A, P = L.arena, L.pool
    pool_size, _arena_size = pool_and_arena_size(rt.version.key)
    overhead = (P.size + (1 << ALIGNMENT_SHIFT) - 1) & ~((1 << ALIGNMENT_SHIFT) - 1)
    raw = mem.read(arenas, count * A.size) if count else b""
    yielded = 0
    for i in range(count):
        base = i * A.size
        address = struct.unpack_from("<Q", raw, base + A.address)[0]
        if not address:
            continue
        pool_address = struct.unpack_from("<Q", raw, base + A.pool_address)[0]
        first = (address + pool_size - 1) & ~(pool_size - 1)
        for pool in range(first, min(pool_address, address + (1 << 24)), pool_size):
            try:
                head = mem.read(pool, P.size)
            except NsdebugError:
                continue
            ref = struct.unpack_from("<I", head, P.ref)[0]
            if ref == 0:
                continue
            szidx = struct.unpack_from("<I", head, P.szidx)[0]
            nextoffset = struct.unpack_from("<I", head, P.nextoffset)[0]
            freeblock = struct.unpack_from("<Q", head, P.freeblock)[0]
            size = (szidx + 1) << ALIGNMENT_SHIFT
            if szidx > 63 or nextoffset > pool_size:
                continue
            free = set()
            steps = 0
            while freeblock and pool <= freeblock < pool + pool_size and steps < 4096:
                free.add(freeblock)
                freeblock = struct.unpack("<Q", mem.read(freeblock, 8))[0]
                steps += 1
            for off in range(overhead, min(nextoffset, pool_size - size + 1), size):
                block = pool + off
                if block not in free:
                    yield block, size
                    yielded += 1
                    if yielded >= limit:
                        return
