"""glibc malloc's heap read from a core: every chunk with its size, in use or free.

Found from the chunk headers alone, by the rules of malloc (x86-64, glibc 2.26+), so a
core whose libc has no symbols is read the same:
- the main arena's heap: an anonymous mapping whose first chunk has PREV_INUSE set and
  whose chunks, laid end to end, end exactly at the mapping's end (the top chunk);
- other arenas' heaps: mappings aligned to HEAP_MAX (64 MiB) that start with a heap_info
  (its arena pointer, previous heap and size); the arena's first heap holds its
  malloc_state right after;
- mmapped chunks (IS_MMAPPED, page-sized): one or several in an anonymous mapping.
A chunk is free when the next one's PREV_INUSE is clear, when it is the top chunk, or
when a tcache or fastbin list holds it: those keep PREV_INUSE set, so they are read
from each thread's tcache_perthread_struct (a chunk of its size, checked entry by entry)
and from the arenas' fastbins (the main arena found in libc's data by its top pointer),
undoing safe-linking (glibc 2.32+) where the list is mangled.
"""

from __future__ import annotations

import numpy as np

from ..errors import NsdebugError
from ..record import record
from . import vec
from .ranges import merge, subtract

HEAP_MAX = 64 << 20                 # HEAP_MAX_SIZE on 64-bit: 2 * 32 MiB
HEAP_INFO = 32                      # sizeof(heap_info), padded to MALLOC_ALIGNMENT


@record
class MState:
    """Where struct malloc_state keeps what is read here, per glibc."""
    glibc: str
    size: int
    top: int
    fastbins: int | None
    next: int
    system_mem: int


MSTATES = (MState("2.27-2.41", 2200, 96, 16, 2160, 2184),
           # 2.42 dropped the fastbins (and have_fastchunks).
           MState("2.42+", 2112, 8, None, 2072, 2096))
NFASTBINS = 10
TCACHE_BINS = 64
# tcache_perthread_struct chunk sizes: uint16 counts (2.30+), uint8 counts (2.26-2.29).
TCACHE_CHUNKS = {0x290: 2, 0x250: 1}
PREV_INUSE, IS_MMAPPED, NON_MAIN_ARENA = 1, 2, 4
MAX_CHUNKS = 1 << 26
MAX_DATA_SCAN = 16 << 20      # bytes of a data mapping searched for malloc's arena


@record
class MallocRegion:
    """One stretch of malloc's memory: an arena's heap or a run of mmapped chunks."""
    kind: str               # "main heap", "arena heap", "mmapped"
    start: int
    end: int
    arena: int              # its malloc_state's address (0: unknown or none)
    chunks: int
    used: int               # bytes of chunks in use (headers included)
    free: int               # bytes of free chunks, the top chunk included
    top: int                # bytes of the top chunk
    complete: bool          # the walk reached the end (else a damaged chunk stopped it)
    beyond: int = 0         # bytes of the top chunk past what the core holds


class MallocHeap:
    """The chunks of glibc malloc in a core (see the module's comment). Columns, in
    address order: `addr` (chunk start; user memory at +16), `size`, `free` (bool),
    `region` (index into `regions`). `warnings` says what could not be read."""

    def __init__(self, vm, mappings, skip=()):
        self.vm = vm
        self.regions: list[MallocRegion] = []
        self.warnings: list[str] = []
        self.mstate = None              # the glibc layout of malloc_state found (MSTATES)
        parts = []
        self._libc = [m for m in mappings if m.file and _is_libc(m.file)]
        self._files = [m for m in mappings if m.file]
        anon = [m for m in mappings if m.file is None and "w" in m.perms and
                m.source != "missing"]
        skip = sorted(skip)
        # Adjacent mappings in runs: a heap may span several (madvise splits one, as
        # transparent huge pages do the brk heap of a large process).
        groups = []
        for m in anon:
            if groups and groups[-1][-1].end == m.start:
                groups[-1].append(m)
            else:
                groups.append([m])
        for group in groups:
            ends, covered = {m.end for m in group}, 0
            for m in group:
                if m.start < covered or any(s < m.end and m.start < e for s, e in skip):
                    continue
                got = self._region(m, group[-1].end, ends)
                if got is not None:
                    parts.append(got)
                    covered = self.regions[got[3]].end
        parts = self._one_main_heap(parts)
        rest = subtract(merge([(m.start, m.end) for m in anon]),
                        [(r.start, r.end) for r in self.regions])
        parts.extend(self._mmapped(subtract(rest, skip)))
        if parts:
            self.addr = np.concatenate([p[0] for p in parts])
            self.size = np.concatenate([p[1] for p in parts])
            self.free = np.concatenate([p[2] for p in parts])
            self.region = np.concatenate([np.full(len(p[0]), p[3], np.int32) for p in parts])
            order = np.argsort(self.addr, kind="stable")
            self.addr, self.size, self.free, self.region = (
                self.addr[order], self.size[order], self.free[order], self.region[order])
            self._mark_cached_free()
            self._totals()
        else:
            self.addr = self.size = np.zeros(0, np.uint64)
            self.free = np.zeros(0, np.bool_)
            self.region = np.zeros(0, np.int32)

    # -- regions ---------------------------------------------------------------------
    def _region(self, m, run_end, ends):
        """The chunks of an arena's heap that starts at mapping m (a main heap may go on
        through the adjacent mappings up to `run_end` and end at one of their `ends`),
        or None."""
        if m.start % HEAP_MAX == 0:
            got = self._arena_heap(m)
            if got is not None:
                return got
        w = self._word(m.start + 8)
        if w is not None and w & 7 == PREV_INUSE and self._word(m.start) == 0:
            # Whole, or long enough before a damaged chunk to be no accident.
            return self._walk(m.start, run_end, "main heap", 0, to_end=False, min_chunks=16,
                              ends=ends)
        return None

    def _arena_heap(self, m):
        ar_ptr, prev, size = (self._word(m.start + k) for k in (0, 8, 16))
        if None in (ar_ptr, prev, size) or not HEAP_INFO < size <= HEAP_MAX or \
                size > m.end - m.start + HEAP_MAX or size & 0xfff:
            return None
        first = ar_ptr == m.start + HEAP_INFO
        end = min(m.start + size, m.end)
        if not first:
            return self._walk(m.start + HEAP_INFO, end, "arena heap", ar_ptr, to_end=False)
        # The arena's first heap: its malloc_state, then the chunks (which glibc's
        # layout: the one whose walk reaches a top chunk).
        for ms in MSTATES:
            start = m.start + HEAP_INFO + ms.size
            start += (-(start + 16)) % 16
            got = self._walk(start, end, "arena heap", ar_ptr, to_end=False, quiet=True)
            if got is not None and self.regions[got[3]].complete:
                self.mstate = self.mstate or ms
                return got
            if got is not None:
                self.regions.pop()
        return None

    def _walk(self, start, end, kind, arena, to_end=True, quiet=False, min_chunks=1,
              ends=None):
        """The chunks from start to end, end to end; None unless the walk is whole (or,
        when not `to_end`, reaches a top chunk that ends at `end`)."""
        addr, word = walk_chunks(self.vm, start, end)
        if not len(addr):
            return None
        complete = word[-1] != 0
        beyond = 0                      # bytes of a top chunk the core does not hold
        if not complete:
            stop = int(addr[-1])
            raw = self._word(stop + 8) or 0
            past = stop + (raw & ~7) - end
            if ends is not None and raw & 7 == PREV_INUSE and not (raw & ~7) % 16 and \
                    0 < past <= HEAP_MAX and end in ends:
                # The top chunk runs past the mapping the core holds (the heap grew
                # or shrank by brk around the capture): it is the top, cut to the core.
                word[-1] = (end - stop) | PREV_INUSE
                beyond = past
            else:
                addr, word = addr[:-1], word[:-1]
                if not len(addr):
                    return None
        size = word & ~np.uint64(7)
        last = int(addr[-1] + size[-1])
        reached = last == end or (ends is not None and last in ends)
        if reached:
            end = last
        if (to_end and not reached) or (word & np.uint64(IS_MMAPPED)).any() or \
                (not reached and len(addr) < min_chunks):
            return None
        free = np.zeros(len(addr), np.bool_)
        free[:-1] = (word[1:] & np.uint64(PREV_INUSE)) == 0
        free[-1] = reached                       # the top chunk
        top = int(size[-1]) + beyond if reached else 0
        if not reached and not quiet:
            self.warnings.append(f"malloc {kind} at {start:#x}: a damaged chunk at "
                                 f"{last:#x} ends the walk")
        if kind == "main heap" and arena == 0 and reached:
            arena = self._main_arena(int(addr[-1]), end + beyond - start)
        ix = len(self.regions)
        self.regions.append(MallocRegion(kind, start, end, arena, len(addr), 0, 0, top,
                                         reached, beyond))
        return addr, size, free, ix

    def _mmapped(self, runs):
        """The mmapped chunks in runs of adjacent anonymous mappings (a chunk may span
        several: madvise splits a mapping, as numpy's huge-page advice on its data does):
        at a page start, a header with a small alignment pad, IS_MMAPPED alone, a size
        in whole pages that ends at a page within the run; the first one found in
        address order wins over any header-like words inside it."""
        out = []
        for start, end in runs:
            reach = 0
            for pages in self._held_pages(start, end):
                reach = self._mmapped_in(pages, end, reach, out)
        return self._mmapped_parts(out)

    def _held_pages(self, start, end, window=1 << 18):
        """The page starts of [start, end) whose bytes the core holds, in arrays of at
        most `window` pages: a run's size comes from the core's headers (a damaged one
        claimed a TiB: found by fuzz_cores.py), the pages it holds are what is read."""
        vm = self.vm
        lo_i = max(int(np.searchsorted(vm.end, np.uint64(start), side="right")), 0)
        for i in range(lo_i, len(vm.start)):
            lo, hi = max(start, int(vm.start[i])), min(end, int(vm.end[i]))
            if lo >= end:
                break
            lo = (lo + 4095) & ~4095
            for w in range(lo, hi, window * 4096):
                yield np.arange(w, min(hi, w + window * 4096), 4096, dtype=np.uint64)

    def _mmapped_in(self, pages, end, reach, out):
        """The chunk headers at `pages` (see _mmapped), appended to out; the end of the
        last chunk taken."""
        pad, ok1 = self.vm.u64(pages)
        w, ok2 = self.vm.u64(pages + np.uint64(8))
        size = w & ~np.uint64(7)
        # The chunk ends where its pages end (glibc up to 2.41), or 16 bytes short
        # of it (2.42 records the mapping's length less its header): the chunk
        # here spans the whole mapping.
        span = np.where(((pages + size) & np.uint64(0xfff)) == 0, size,
                        np.where(((pages + size + np.uint64(16)) & np.uint64(0xfff)) == 0,
                                 size + np.uint64(16), np.uint64(0)))
        cand = ok1 & ok2 & ((w & np.uint64(7)) == IS_MMAPPED) & (pad < (1 << 16)) & \
            ((pad & np.uint64(15)) == 0) & (size >= 4096) & (span > 0) & \
            (pages + span <= np.uint64(end))
        for c, n in zip(pages[cand].tolist(), span[cand].tolist()):
            if c < reach:
                continue                    # words inside a chunk already taken
            out.append((c, n))
            reach = c + n
        return reach

    def _mmapped_parts(self, out):
        if not out:
            return []
        a = np.array([c for c, _ in out], np.uint64)
        s = np.array([n for _, n in out], np.uint64)
        ix = len(self.regions)
        self.regions.append(MallocRegion("mmapped", int(a[0]), int(a[-1] + s[-1]), 0,
                                         len(out), 0, 0, 0, True))
        return [(a, s, np.zeros(len(out), np.bool_), ix)]

    def _one_main_heap(self, parts):
        """There is one main heap: the one whose arena was found in libc's data, else the
        largest. Other mappings that walked like one are left to the mmapped scan."""
        mains = [p for p in parts if self.regions[p[3]].kind == "main heap"]
        if len(mains) <= 1:
            return parts
        keep = max(mains, key=lambda p: (self.regions[p[3]].arena != 0,
                                         self.regions[p[3]].end - self.regions[p[3]].start))
        out, regions = [], []
        for p in parts:
            r = self.regions[p[3]]
            if r.kind == "main heap" and p is not keep:
                continue
            regions.append(r)
            out.append((p[0], p[1], p[2], len(regions) - 1))
        self.regions = regions
        return out

    # -- free lists --------------------------------------------------------------------
    def _main_arena(self, top, heap_size):
        """The main arena's malloc_state: where libc's data holds the top chunk's address
        at malloc_state.top, its system_mem the heap's size, its arena list leading back
        to it (for each glibc layout in MSTATES)."""
        for m in self._libc_data():
            # libc's data and bss are a few hundred KiB; a mapping's size comes from the
            # core's headers (a damaged one claimed a TiB: found by fuzz_cores.py).
            n = min(m.end - m.start, MAX_DATA_SCAN) // 8
            words, ok = self.vm.u64(np.uint64(m.start) + np.arange(n, dtype=np.uint64) * 8)
            for k in np.nonzero(ok & (words == np.uint64(top)))[0].tolist():
                for ms in MSTATES:
                    arena = m.start + 8 * k - ms.top
                    if self._word(arena + ms.system_mem) != heap_size:
                        continue
                    nxt, steps = self._word(arena + ms.next), 0
                    while nxt and nxt != arena and steps < 1024:
                        nxt, steps = self._word(nxt + ms.next), steps + 1
                    if nxt == arena:
                        self.mstate = ms
                        return arena
        return 0

    def _libc_data(self):
        """libc's writable mappings; in a static build (no libc mapped) the other
        file-backed writable ones: malloc's main arena is in the executable's data."""
        libc = [m for m in self._libc if "w" in m.perms]
        return libc or [m for m in self._files if "w" in m.perms and m.size <= 64 << 20]

    def _mark_cached_free(self):
        """Chunks on a tcache or fastbin list: free, though PREV_INUSE says otherwise."""
        user = self.addr + np.uint64(16)
        for k in np.nonzero(~self.free)[0].tolist():
            width = TCACHE_CHUNKS.get(int(self.size[k]))
            if width:
                self._tcache(int(user[k]), width, user)
        ms = self.mstate
        for r in self.regions:
            if r.arena and ms is not None and ms.fastbins is not None:
                for i in range(NFASTBINS):
                    head = self._word(r.arena + ms.fastbins + 8 * i)
                    self._chain(head, 0, user, chunk_pointers=True)

    def _tcache(self, at, width, user):
        """A tcache_perthread_struct at `at` (checked: a count per bin, an entry where
        the count is not 0): its lists' chunks marked free."""
        if width == 2:
            counts, ok = self.vm.u32(np.uint64(at) + np.arange(0, 128, 4, dtype=np.uint64))
            if not ok.all():
                return
            counts = np.stack([counts & 0xffff, counts >> 16], axis=1).ravel()
        else:
            counts, ok = self.vm.u8(np.uint64(at) + np.arange(64, dtype=np.uint64))
            if not ok.all():
                return
        base = at + TCACHE_BINS * width
        entries, ok = self.vm.u64(np.uint64(base) + np.arange(64, dtype=np.uint64) * 8)
        counts = counts.astype(np.int64)
        if not ok.all() or ((counts == 0) != (entries == 0)).any() or (counts > 1024).any():
            return
        for i in np.nonzero(counts)[0].tolist():
            self._chain(int(entries[i]), 0, user, limit=int(counts[i]))

    def _chain(self, head, next_off, user, limit=1 << 16, chunk_pointers=False):
        """Mark the chunks of one singly linked free list: `head` is a user pointer (a
        chunk's, with chunk_pointers); each next pointer at +next_off of the user memory,
        mangled (glibc 2.32+: (its own address >> 12) ^ next) or plain."""
        seen, cur = 0, head
        while cur and seen < limit:
            mem = cur + 16 if chunk_pointers else cur
            k = _user_index(user, mem)
            if k < 0:
                return
            self.free[k] = True
            seen += 1
            raw = self._word(mem + next_off)
            if raw is None:
                return
            slot = mem + next_off
            plain, mangled = raw, raw ^ (slot >> 12)
            is_chunk = _user_index(user, mangled + 16 if chunk_pointers else mangled) >= 0
            cur = mangled if is_chunk or mangled == 0 else plain

    def _totals(self):
        for i, r in enumerate(self.regions):
            sel = self.region == i
            r.used = int(self.size[sel & ~self.free].sum())
            r.free = int(self.size[sel & self.free].sum()) + r.beyond

    # -- lookups -----------------------------------------------------------------------
    def chunk_of(self, addrs, near=None):
        """Index of the chunk whose user memory holds each address (-1: none, or free);
        with `near`, only addresses within that many bytes of the user memory's start."""
        addrs = np.asarray(addrs, dtype=np.uint64)
        k = np.searchsorted(self.addr, addrs, side="right").astype(np.int64) - 1
        ok = k >= 0
        kk = np.maximum(k, 0)
        ok &= addrs >= self.addr[kk] + np.uint64(16)
        ok &= addrs < self.addr[kk] + self.size[kk]
        if near is not None:
            ok &= addrs < self.addr[kk] + np.uint64(16 + near)
        ok &= ~self.free[kk]
        return np.where(ok, k, -1)

    def _word(self, addr):
        v, ok = self.vm.u64(np.array([addr], dtype=np.uint64))
        return int(v[0]) if ok[0] else None

    @property
    def used(self):
        return int(self.size[~self.free].sum())


def walk_chunks(vm, start, end, limit=MAX_CHUNKS):
    """(chunk addresses, raw size words) of chunks end to end from start (see
    _kernels.malloc_chunks; the last word is 0 when a bad chunk stopped the walk)."""
    cap = int(min(limit, max(1, (end - start) // 32)))
    if vec._kernels is not None:
        step = min(cap, 1 << 20)
        addrs, words, c = [], [], start
        while True:
            a = np.empty(step, np.uint64)
            w = np.empty(step, np.uint64)
            n = vec._kernels.malloc_chunks(*vm.segments(), c, end, a, w)
            addrs.append(a[:n])
            words.append(w[:n])
            if n < step or w[n - 1] == 0 or sum(len(x) for x in addrs) >= cap:
                break
            c = int(a[n - 1]) + int(w[n - 1] & ~np.uint64(7))
        return np.concatenate(addrs), np.concatenate(words)
    addrs, words, c = [], [], start
    while c < end and not c & 15 and len(addrs) < cap:
        v, ok = vm.u64(np.array([c + 8], dtype=np.uint64))
        w = int(v[0])
        size = w & ~7
        good = bool(ok[0]) and size >= 32 and not size & 15 and size <= end - c
        addrs.append(c)
        words.append(w if good else 0)
        if not good:
            break
        c += size
    return np.array(addrs, np.uint64), np.array(words, np.uint64)


def _user_index(user, mem):
    """Index of the chunk whose user memory starts at mem (sorted `user`), or -1."""
    k = int(np.searchsorted(user, np.uint64(mem)))
    return k if k < len(user) and int(user[k]) == mem else -1


def _is_libc(path):
    name = path.rsplit("/", 1)[-1]
    return name.startswith("libc.so") or name.startswith("libc-")


def malloc_heap(vm, mappings, skip=()):
    """MallocHeap of a core, or raises NsdebugError when nothing of malloc is found."""
    heap = MallocHeap(vm, mappings, skip)
    if not heap.regions:
        raise NsdebugError("no glibc malloc heap found in the core")
    return heap
