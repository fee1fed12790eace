"""Roots held by C code: the objects whose exact address a word of C memory holds.

The walk finds what Python's roots reach; C code holds more (module globals,
static types, the interpreter's own state in libpython's .bss, extension modules'
state, locals of C functions on the threads' stacks). A word of the modules'
writable data or of a thread's stack that is exactly the address of an object the
walk found roots it, labelled by the symbol that holds it; a word that points into
a malloc'd block is followed one level (the block is bounded by its glibc size word,
or by its pymalloc pool). A word that merely looks like a pointer is never taken.
"""

from __future__ import annotations

import numpy as np

from ..corefile.vector import within
from ..cpython.flags import MAX_USER_ADDRESS
from ..errors import NsdebugError
from .arenas import ALIGNMENT_SHIFT
from .graph import C_GLOBALS, C_STACKS
from .vec import U64, distinct


class CRoots:
    """The C roots of one walk: `sink` for reads and names, `process` for the modules,
    stacks and segments, `found` an AddressTable of the objects the walk found, and
    `arenas` pymalloc's arena ranges (starts, ends, pool size) or None."""

    def __init__(self, sink, process, found, arenas):
        self.s, self.vm, self.L, self.o = sink, sink.vm, sink.L, sink.o
        self.process, self.found, self._arenas = process, found, arenas
        self._anon = None

    def roots(self, module_objects):
        """{group: (targets, names)}: objects that C code holds, found by the words of
        the modules' writable data (globals, static types, the interpreter's own state,
        which lives in libpython's .bss) and of the threads' stacks that are exactly the
        address of an object the walk found. A word that merely looks like a pointer is
        not taken: only the addresses of objects already known."""
        p = self.process
        found = self.found
        out = {}
        regions = []
        for m in p.modules:
            for seg in p.data_regions(m):
                regions.append((seg.start, seg.end,
                                lambda addrs, m=m: self._global_names(m, addrs)))
        out[C_GLOBALS] = self._scan_words(regions, found)
        regions = []
        for t in p.threads:
            seg = p.memory.find_segment(t.sp)
            if seg is not None:
                regions.append((t.sp & ~7, seg.start + seg.filesz,
                                lambda addrs, tid=t.tid: [f"thread {tid} stack {a:#x}"
                                                          for a in addrs]))
        out[C_STACKS] = self._scan_words(regions, found)
        # Extension modules keep objects in their state (md_state): C's too.
        states = self._module_states(module_objects)
        if len(states):
            t, n = out[C_GLOBALS]
            more = self._scan_blocks(states, found)
            out[C_GLOBALS] = (np.concatenate([t, more[0]]), np.concatenate([n, more[1]]))
        return out

    def _module_states(self, sel):
        """{md_state block: label} of the module objects at `sel`."""
        off = self.L.module.md_state
        if off is None or not len(sel):
            return {}
        state, ok = self.vm.u64(sel + U64(off))
        out = {}
        for a, st in zip(sel[ok & (state != 0)].tolist(), state[ok & (state != 0)].tolist()):
            try:
                name = self.o.module_name(a)
            except NsdebugError:
                name = f"{a:#x}"
            out[st] = f"state of module {name}"
        return out

    MAX_BLOCK = 1 << 20                  # a larger malloc chunk is not scanned
    MAX_BLOCK_BYTES = 64 << 20           # nor more than this in all

    def _scan_words(self, regions, found):
        """Edges to the objects whose exact address a word of the regions (start, end,
        namer: the labels of a list of word addresses) holds; and, one level deep, to
        those held by the malloc'd blocks such words point to (the parser's arena of a
        running script, a C extension's state...): a glibc chunk's size word precedes
        it, which bounds what is read."""
        spans = []
        for start, end, label in regions:
            words = self._words_at(start, end - start) if end > start else None
            if words is not None:
                spans.append((start, words, label))
        targets, names, blocks = [], [], {}
        hits, others = self._match_spans(spans, found)
        for r, local, values in hits:
            start, _, label = spans[r]
            targets += values.tolist()
            names += [self.s.name_id(t) for t in label([start + 8 * k for k in local.tolist()])]
        for r, k in others:                 # named only if the block holds an object
            start, words, label = spans[r]
            blocks.setdefault(int(words[k]), (label, start + 8 * k))
        more = self._scan_blocks(blocks, found)
        return (np.concatenate([np.array(targets, dtype=np.uint64), more[0]]),
                np.concatenate([np.array(names, dtype=np.int32), more[1]]))

    def _scan_blocks(self, blocks, found):
        """Edges to the objects held by the allocated blocks {pointer: label, or (namer,
        address) of the word that points to it}."""
        spans = []
        budget = self.MAX_BLOCK_BYTES
        for pointer, via in sorted(blocks.items()):
            block, size = self._block_of(pointer)
            if block is None or size > budget:
                continue
            words = self._words_at(block, size)
            if words is not None:
                budget -= size
                spans.append((block, words, via))
        targets, names = [], []
        for r, local, values in self._match_spans(spans, found)[0]:
            block, _, via = spans[r]
            if not isinstance(via, str):
                via = via[0]([via[1]])[0]
            targets += values.tolist()
            names += [self.s.name_id(f"malloc block {block:#x}+{8 * k:#x} (from {via})")
                      for k in local.tolist()]
        return np.array(targets, dtype=np.uint64), np.array(names, dtype=np.int32)

    def _words_at(self, start, nbytes):
        """The 8-byte words of [start, start + nbytes) as a view of the core, or None
        when the core does not hold them all."""
        off, ok = self.vm.offsets(np.array([start], dtype=np.uint64), nbytes)
        if not ok[0]:
            return None
        o = int(off[0])
        return self.vm.data[o:o + nbytes // 8 * 8].view("<u8")

    def _match_spans(self, spans, found):
        """_match() over the words of many spans (start, words, ...) at once: hundreds
        of small .data/.bss regions or malloc'd blocks in one pass. Returns the hits
        per span that has any, in span order ([(span, word positions, objects)], each
        object once per span, by address) and the other candidate words ([(span, word
        position)], in order)."""
        if not spans:
            return [], []
        lengths = np.array([len(w) for _, w, _ in spans], dtype=np.int64)
        first_word = np.cumsum(lengths) - lengths
        region = np.repeat(np.arange(len(spans)), lengths)
        hit_k, hit_v, other_k = self._match(np.concatenate([w for _, w, _ in spans]), found,
                                            region)
        hit_r = region[hit_k]
        hits = []
        for r in distinct(hit_r).tolist():
            sel = hit_r == r
            hits.append((r, hit_k[sel] - first_word[r], hit_v[sel]))
        other_r = region[other_k]
        return hits, list(zip(other_r.tolist(), (other_k - first_word[other_r]).tolist()))

    def _block_of(self, pointer):
        """(start, size) of the allocated block a pointer points into: a pymalloc block,
        from its pool's header, or a glibc chunk from the size word before it; (None,
        0) when neither makes sense."""
        vm = self.vm
        arenas = self._arenas
        if arenas is not None and len(arenas[0]):
            i = int(np.searchsorted(arenas[0], pointer, side="right")) - 1
            if i >= 0 and pointer < int(arenas[1][i]):
                P, pool_size = self.L.pool, arenas[2]
                pool = pointer & ~(pool_size - 1)
                hdr, ok = vm.u32(np.array([pool + P.ref, pool + P.szidx], dtype=np.uint64))
                if not ok.all() or hdr[0] == 0 or hdr[1] > 63:
                    return None, 0
                align = 1 << ALIGNMENT_SHIFT
                overhead = (P.size + align - 1) & ~(align - 1)
                bsize = (int(hdr[1]) + 1) << ALIGNMENT_SHIFT
                if pointer < pool + overhead:
                    return None, 0
                return pool + overhead + (pointer - pool - overhead) // bsize * bsize, bsize
        if not 0x10000 <= pointer < MAX_USER_ADDRESS:
            return None, 0                   # a garbage word names no malloc'd block
        size, ok = vm.u64(np.array([pointer - 8], dtype=np.uint64))
        size = int(size[0]) & ~7
        if not ok[0] or not 32 <= size <= self.MAX_BLOCK:
            return None, 0
        return pointer, size - 8

    def _match(self, words, found, region):
        """(positions, objects) of the words that are an object's address, one per
        object and region (`region` gives each word's), ordered by region then address;
        and the positions of other aligned words into the core's anonymous writable
        memory (candidate malloc'd blocks)."""
        cand = np.nonzero(((words & U64(15)) == 0) & (words > U64(0x10000)) &
                          (words < U64(MAX_USER_ADDRESS)))[0]
        vals = words[cand]
        hit = found.map(vals) >= found.n_synth
        # Addresses are 16-aligned and under 2**47: 43 bits once shifted.
        key = (region[cand[hit]].astype(U64) << U64(44)) | (vals[hit] >> U64(4))
        _, first = np.unique(key, return_index=True)
        uniq = vals[hit][first]
        other = cand[~hit]
        anon = self._anonymous_rw()
        return cand[hit][first], uniq, other[within(anon[0], anon[1], words[other])]

    def _anonymous_rw(self):
        if self._anon is None:
            segs = [s for s in self.process.memory.segments
                    if s.file is None and s.perms.startswith("rw") and s.filesz]
            self._anon = (np.array([s.start for s in segs], dtype=np.uint64),
                          np.array([s.start + s.filesz for s in segs], dtype=np.uint64))
        return self._anon

    @staticmethod
    def _global_names(module, addrs):
        """Labels of words in a module's data: symbol+offset, else module+offset."""
        out, mod, start = [], module.name, module.start
        for addr, hit in zip(addrs, module.symbolize_many(addrs)):
            if hit is None:
                out.append(f"{mod}+{addr - start:#x}")
            else:
                name, off = hit[0], hit[1]
                out.append(f"{mod}:{name}+{off:#x}" if off else f"{mod}:{name}")
        return out
