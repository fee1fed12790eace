"""pymalloc's own bookkeeping: arenas -> pools -> allocated blocks, and the objects in them.

Trusting the allocator (not appearances): a block counts as allocated only if
it lies below its pool's high-water mark and is not on the pool's free list, and
holds an object only if its type is known, its layout (GC header and pre-header)
fits the type's flags, its refcount is sane and its GC header is a GC header; so
stale bytes and item buffers are not taken for objects.
"""

from __future__ import annotations

import struct

import numpy as np

from ..cpython.flags import (MAX_REFCOUNT, MAX_USER_ADDRESS, TPFLAGS_HAVE_GC, TPFLAGS_HEAPTYPE,
                             TPFLAGS_PREHEADER)
from ..errors import NsdebugError
from . import vec
from .vec import U64, ramp

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


class ArenaScan:
    """Allocated pymalloc blocks and the objects in them, many pools at a time: `sink`
    for reads and the types met so far, `visited` the walk's visited set (a block
    whose object the walk found is accounted for)."""

    POOLS_PER_BATCH = 2048

    def __init__(self, sink, rt, visited, type_objects=()):
        self.s, self.rt, self.visited = sink, rt, visited
        self.type_objects = type_objects    # the type objects the walk found, per chunk
        self.vm = sink.vm
        self.L = sink.L
        self.ranges = None          # (starts, ends, pool size) of the arenas, once read

    def pools(self):
        """Addresses of every pool of every arena in use."""
        vm, L = self.vm, self.L
        table = arena_table(self.rt)
        if table is None:
            raise NsdebugError("pymalloc's arena table cannot be found (stripped build?)")
        arenas, count = table
        if count > 1 << 24:
            raise NsdebugError(f"arena table claims {count} arenas")
        pool_size, _ = pool_and_arena_size(self.rt.version.key)
        A = L.arena
        ao = U64(arenas) + U64(A.size) * np.arange(count, dtype=np.uint64)
        address, _ = vm.u64(ao + U64(A.address))
        end, _ = vm.u64(ao + U64(A.pool_address))
        live = address != 0
        address, end = address[live], end[live]
        first = (address + U64(pool_size - 1)) & ~U64(pool_size - 1)
        end = np.minimum(end, address + U64(1 << 24))
        order = np.argsort(address)
        self.ranges = (address[order], end[order], pool_size)
        n = np.where(end > first, (end - first) // U64(pool_size), 0).astype(np.int64)
        rep = np.repeat(np.arange(len(first)), n)
        return first[rep] + U64(pool_size) * ramp(n).astype(U64), pool_size

    def _allocated_blocks(self, pools, szidx, nextoff, overhead, pool_size):
        """(blocks, sizes) of the pools' allocated blocks: below the high-water mark,
        not on the free list (every pool's list followed in lockstep)."""
        vm, P = self.vm, self.L.pool
        align = 1 << ALIGNMENT_SHIFT
        bsize = (szidx + 1) << ALIGNMENT_SHIFT
        limit = np.minimum(nextoff, pool_size - bsize + 1)
        nblocks = np.maximum((limit - overhead + bsize - 1) // bsize, 0)
        first_block = np.cumsum(nblocks) - nblocks
        rep = np.repeat(np.arange(len(pools)), nblocks)
        blocks = pools[rep] + (U64(overhead) + (bsize[rep] * ramp(nblocks)).astype(U64))
        bsz = bsize[rep]
        keep = np.ones(len(blocks), dtype=np.bool_)
        cur, _ = vm.u64(pools + U64(P.freeblock))
        pool_i = np.arange(len(pools))
        for _ in range(pool_size // align):
            lo = pools[pool_i]
            offset = cur.astype(np.int64) - lo.astype(np.int64) - overhead
            number = offset // bsize[pool_i]
            live = (cur != 0) & (offset >= 0) & (offset % bsize[pool_i] == 0) & \
                (number < nblocks[pool_i])
            if not live.any():
                break
            cur, pool_i = cur[live], pool_i[live]
            keep[first_block[pool_i] + number[live]] = False
            cur, _ = vm.u64(cur)
        return blocks[keep], bsz[keep]

    def _types_of_untracked(self):
        """The type objects the walk found whose instances may be on no GC list (static
        types, heap types without GC: an untracked object only C holds, such as 3.13's
        decimal context variable, kept in its module's state), met as types from now
        on: a block is taken for an object only of a type met, and a type none of
        whose instances the walk reached was not. Classes (heap types with GC) are left
        out: their instances are all on GC lists."""
        found = [a for a in self.type_objects if len(a)]
        if not found or self.L.type.tp_flags is None:
            return
        addrs = np.concatenate(found)
        flags, ok = self.vm.u64(addrs + U64(self.L.type.tp_flags))
        classes = U64(TPFLAGS_HEAPTYPE | TPFLAGS_HAVE_GC)
        self.s.type_indices(addrs[ok & ((flags & classes) != classes)])

    def objects(self):
        vm, P = self.vm, self.L.pool
        self._types_of_untracked()
        all_pools, pool_size = self.pools()
        align = 1 << ALIGNMENT_SHIFT
        overhead = (P.size + align - 1) & ~(align - 1)
        types = self.s.types
        known = np.array(sorted(t.address for t in types), dtype=np.uint64)
        by_addr = {t.address: t for t in types}
        gch = self.L.gchead.size
        pre = 16 if self.s.v >= (3, 11) else 0
        out = []
        for lo_i in range(0, len(all_pools), self.POOLS_PER_BATCH):
            pools = all_pools[lo_i:lo_i + self.POOLS_PER_BATCH]
            ref, ok1 = vm.u32(pools + U64(P.ref))
            szidx, ok2 = vm.u32(pools + U64(P.szidx))
            nextoff, ok3 = vm.u32(pools + U64(P.nextoffset))
            used = ok1 & ok2 & ok3 & (ref > 0) & (szidx <= 63) & (nextoff <= pool_size)
            pools, szidx, nextoff = pools[used], szidx[used].astype(np.int64), \
                nextoff[used].astype(np.int64)
            if not len(pools):
                continue
            if vec._kernels is not None:
                # In C: each pool's free list followed, and the blocks whose object
                # was visited left out (most of them: only the rest is looked at).
                bound = int(np.maximum((nextoff - overhead) // 16 + 1, 0).sum())
                blocks = np.empty(bound, dtype=np.uint64)
                bsz = np.empty(bound, dtype=np.int64)
                k = vec._kernels.pool_blocks(*vm.segments(), pools, szidx, nextoff, overhead,
                                             pool_size, P.freeblock, self.visited.flags.bytes,
                                             np.array([gch + pre, gch, 0], dtype=np.uint64),
                                             blocks, bsz)
                blocks, bsz = blocks[:k], bsz[:k]
            else:
                blocks, bsz = self._allocated_blocks(pools, szidx, nextoff, overhead,
                                                     pool_size)
            chosen = np.zeros(len(blocks), dtype=np.uint64)
            open_ = np.ones(len(blocks), dtype=np.bool_)
            for off in (gch + pre, gch, 0):
                obj = blocks + U64(off)
                word, ok = vm.u64(obj + U64(8))
                pos = np.minimum(np.searchsorted(known, word), len(known) - 1)
                cand = open_ & ok & (known[pos] == word) & \
                    (obj + U64(16) <= blocks + bsz.astype(U64))
                # A block whose object was already found is accounted for.
                seen = np.zeros(len(cand), dtype=np.bool_)
                seen[cand] = self.visited.contains_many(obj[cand])
                open_ &= ~seen
                cand &= ~seen
                for k in np.nonzero(cand)[0]:
                    info = by_addr[int(word[k])]
                    gc_type = bool(info.flags & TPFLAGS_HAVE_GC)
                    if gc_type and info.is_heap:
                        # An instance of a class is always on a GC list while it lives
                        # (and all of those were walked): this block is freed memory
                        # that still carries its old type pointer.
                        continue
                    has_pre = gc_type and pre and info.flags & TPFLAGS_PREHEADER
                    want = gch + (pre if has_pre else 0) if gc_type else 0
                    if want != off:
                        continue
                    o = int(obj[k])
                    if self._plausible(o, info, int(blocks[k]) + int(bsz[k]), gc_type, has_pre):
                        chosen[k] = o
                        open_[k] = False
            out.append(chosen[chosen != 0])
        return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)

    def _plausible(self, obj, info, block_end, gc_type, has_pre):
        """Whether the block holds a live object of `info` at `obj`: a sane refcount,
        the object inside the block, a GC header that is one, and a real dict in the
        pre-header."""
        o = self.s.o
        try:
            refcnt = o.ssize(obj)
            if not 0 < refcnt < MAX_REFCOUNT:
                return False
            if obj + info.basicsize > block_end:
                return False
            if gc_type:
                gc_next = o.ptr(obj - self.rt.layout.gchead.size)
                if gc_next & 7 or (gc_next and gc_next >= MAX_USER_ADDRESS):
                    return False
            if has_pre:
                d = o.ptr(obj - 24)
                if d and (d & 7 or o.info(d).kind != "dict"):
                    return False
        except NsdebugError:
            return False
        return True
