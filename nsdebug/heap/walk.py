"""The heap walk: every object, found in waves from the roots, decoded kind by kind.

One walk (HeapWalker.run) makes a HeapGraph:
1. synthetic nodes: (root) -> groups ((Modules), (Builtins), (Threads) -> thread ->
   frame -> locals, (Interned strings), (C globals), (C stacks), (Unreachable));
2. waves from the roots: each wave's new objects are decoded by kind, a chunk at a
   time, for the whole chunk at once (containers.py, attributes.py; the rare kinds
   object by object through Referents and SizeOf), and their targets not seen before
   make the next wave;
3. then what only the GC's lists (gc.get_objects) and pymalloc's arenas (arenas.py)
   hold, decoded the same way;
4. C roots (croots.py): objects whose address a word of C memory holds;
5. the graph's assembly: reachability, the unreachable hung under (Unreachable).

Decoders see the walk only through its WaveSink (sink.py).
"""

from __future__ import annotations

import os
import struct
import time
from array import array
from functools import partial

import numpy as np

from ..corefile.vector import VectorMemory, within
from ..cpython import layout_check
from ..cpython.sizes import SizeOf
from ..errors import NsdebugError
from ..freemem import release_free_memory
from ..parallel import Background
from .arenas import ArenaScan
from .attributes import Attributes
from .buffers import Buffers
from .mallocheap import MallocHeap
from .nativemem import WORDS_STEP, NativeOwners
from .ranges import thread_stack_ranges
from .resident import Residency
from .containers import Containers
from .croots import CRoots
from .fields import KIND_FIELDS
from .graph import (C_GLOBALS, C_STACKS, INVALID_TYPE, SYNTH, UNREACHABLE, AddressTable,
                    HeapGraph, WalkTables, drain_into, running_sums)
from .referents import ELEMENT, INTERNAL, PROPERTY, Referents
from .sink import WaveSink
from .spill import Spill
from .vec import U64, Visited, by_source, of_types, ramp, runs_within

# Kinds whose decoder reads the object's own attributes itself (no second pass).
ATTRIBUTE_KINDS = ("instance", "other", "object", "type")
# Objects per slice where a pass over all of them makes temporaries of several words
# each (the native attribution's words, the arena search): bounded, not 30 bytes an
# object at once (slices of 1M objects peaked 12 MiB higher at 1M).
WORDS_SLICE = 1 << 18
# Kinds read per object (referents.py, sizes.py): their frames vary in shape.
PER_OBJECT_KINDS = ("generator", "coroutine", "async_generator", "frame")


class HeapWalker:
    """One walk of a Runtime's heap; `run()` gives the HeapGraph. `progress`, if given,
    is called with the number of objects decoded so far; `arenas=False` leaves
    pymalloc's arenas out (the objects only they hold are then not found); `spill`
    (spill.py) says where the large arrays go when memory is short (never, without)."""

    def __init__(self, rt, progress=None, arenas=True, spill=None, assembled=None):
        self.rt = rt
        self.assembled = assembled
        self._parked = None             # per list _park() moves, how many it has moved
        self.o = rt.objects
        self.L = rt.layout
        self.refs = Referents(rt.objects)
        self.progress = progress
        self.scan_arenas = arenas
        self.spill = spill if spill is not None else Spill(None, "never")
        self.warnings = []
        self.vm = VectorMemory(rt.process)
        self.sink = WaveSink(self.vm, rt, self.refs, SizeOf(rt.objects))
        self.sink.buffers = Buffers(self.sink, rt)
        self.visited = Visited(self.vm)
        self.attributes = Attributes(self.sink)
        containers = Containers(self.sink, self.attributes)
        self._decoders = containers.decoders()
        for kind in ("instance", "other", "object"):
            self._decoders[kind] = self.attributes.instances
        for kind in KIND_FIELDS:
            if kind not in self._decoders and kind not in PER_OBJECT_KINDS:
                self._decoders[kind] = containers.fields
        # The synthetic nodes, one by one (the objects come in numpy chunks).
        self.addr = array("Q")
        self.type_ix = array("i")
        self.size = array("Q")
        self.flags = bytearray()
        self.edge_start = array("Q")
        self.e_to = array("Q")
        self.e_kind = bytearray()
        self.e_name = array("i")
        self.synth_names: list[str] = []
        self.synth_kinds: list[str] = []
        self.tracked = array("Q")          # addresses on the GC lists
        self.modules = []                  # the module objects' addresses, per chunk
        self.type_objects = []             # the type objects' addresses, per chunk
        # The objects' columns, a chunk per wave chunk; edges per node likewise.
        self.chunks = {"addr": [], "type": [], "size": []}
        self.edge_counts = []
        self.count = 0
        self.kind_stats = {}            # kind -> [objects, seconds]: where the walk goes
        self._arenas = None             # (starts, ends, pool size) of pymalloc's arenas

    @property
    def types(self):
        return self.sink.types

    # -- synthetic nodes ------------------------------------------------------------------
    def _edge(self, kind, name, target):
        self.e_to.append(target)
        self.e_kind.append(kind)
        self.e_name.append(name if kind == ELEMENT else self.sink.name_id(name))

    def _synth(self, name, kind, edges, elements=()):
        """A synthetic node; edges are (kind, name, target address or SYNTH|index), then
        `elements`: target addresses of element edges named by their position."""
        ix = len(self.addr)
        self.addr.append(0)
        self.type_ix.append(INVALID_TYPE)
        self.size.append(0)
        self.flags.append(0)
        self.edge_start.append(len(self.e_to))
        self.synth_names.append(name)
        self.synth_kinds.append(kind)
        for e in edges:
            self._edge(*e)
        if elements:
            first = len(edges)
            self.e_to.extend(elements)
            self.e_kind.extend([ELEMENT] * len(elements))
            self.e_name.extend(range(first, first + len(elements)))
        return ix

    def _roots(self):
        """Synthetic nodes: (root) -> groups -> threads -> frames -> locals."""
        rt, o = self.rt, self.o
        threads_ix = []
        frame_plan = []
        for t in rt.threads:
            label = f"thread {t.native_tid or t.thread_id}" + (f" ({t.name})" if t.name else "")
            frames = []
            for f in rt.frames(t):
                if f.code is None:
                    continue
                edges = [(INTERNAL, "f_code", f.code.address)]
                try:
                    for loc in rt.frame_walker.locals_of(f):
                        edges.append((PROPERTY, loc.name, loc.address))
                except NsdebugError:
                    pass
                if rt.version.key < (3, 11):
                    edges.append((INTERNAL, "frame object", f.address))
                else:
                    # 3.11+: the frame is not an object; what it holds, it holds directly.
                    I = rt.layout.iframe
                    for what, off in (("f_func", I.func), ("f_globals", I.globals),
                                      ("f_builtins", I.builtins), ("f_locals", I.locals),
                                      ("frame object", I.frame_obj)):
                        try:
                            # f_func is a tagged reference from 3.14 (others are plain
                            # pointers; masking them changes nothing).
                            target = o.stackref(f.address + off) if off is not None else 0
                        except NsdebugError:
                            target = 0
                        if target:
                            edges.append((INTERNAL, what, target))
                frames.append((f"frame {f.function} ({os.path.basename(f.filename)}:{f.line})",
                               edges))
            threads_ix.append((label, frames))
        interp = rt.main_interpreter
        # Modules first: where a global and a frame local tie, the path names the global.
        # The C roots (module data, thread stacks) and the unreachable are known only
        # after the walk (their edges are spliced in by the graph's assembly).
        groups = [("(Modules)", interp.modules), ("(Builtins)", interp.builtins),
                  ("(Threads)", None), ("(Interned strings)", self._interned()),
                  (C_GLOBALS, None), (C_STACKS, None), (UNREACHABLE, None)]
        # Index layout: 0 root, 1..7 groups, then threads, then their frames.
        n_groups = len(groups)
        thread_base = 1 + n_groups
        frame_base = thread_base + len(threads_ix)
        frame_ix = frame_base
        thread_edges = []
        for label, frames in threads_ix:
            edges = [(ELEMENT, i, SYNTH | (frame_ix + i)) for i in range(len(frames))]
            thread_edges.append((label, edges))
            frame_plan.extend(frames)
            frame_ix += len(frames)
        self._synth("(root)", "root", [(ELEMENT, i, SYNTH | (1 + i)) for i in range(n_groups)])
        for name, dict_addr in groups:
            edges, elements = [], []
            if name == "(Threads)":
                edges = [(ELEMENT, i, SYNTH | (thread_base + i)) for i in range(len(threads_ix))]
            elif dict_addr:
                try:
                    if name == "(Interned strings)":
                        if o.kind(dict_addr) == "dict":
                            edges.append((INTERNAL, "dict", dict_addr))
                            elements = [k for k, _ in o.dict_items(dict_addr)]
                    else:
                        edges = [(PROPERTY, self.refs.key_name(k), v)
                                 for k, v in o.dict_items(dict_addr)]
                except NsdebugError as e:
                    self.warnings.append(f"{name}: {e}")
            self._synth(name, "group", edges, elements)
        self.group_ix = {name: 1 + i for i, (name, _) in enumerate(groups)}
        for label, edges in thread_edges:
            self._synth(label, "thread", edges)
        for label, edges in frame_plan:
            self._synth(label, "frame", edges)

    def _interned(self):
        rt, L, o = self.rt, self.rt.layout, self.o
        try:
            if L.interp.interned_strings is not None:
                return o.ptr(rt.main_interpreter.address + L.interp.interned_strings)
            f = rt.module.file
            hit = f.lookup("interned") if f is not None else None
            if hit is not None:
                return o.ptr(hit[0] + rt.module.bias)
        except NsdebugError:
            pass
        return 0

    def gc_lists(self):
        """The GC's generation lists chased on the second CPU from now on: a Background
        whose result() is (head, nodes, whether the list came back to its head) per list,
        for gc_objects(). A list of millions of objects is a cache miss per object, and
        needs nothing the walk's waves make."""
        rt, L = self.rt, self.rt.layout
        try:
            heads = layout_check.gc_heads(self.o, L, rt.main_interpreter.address,
                                          rt.address)
        except NsdebugError as e:
            # (raised where the lists are asked for, as a failed chase would be)
            return Background(partial(_raise, e), threaded=False)
        vm = self.vm
        # (The chase without the compiled module holds the GIL: it runs when asked for.)
        return Background(lambda: [(head,) + vm.chase(head, L.gchead.gc_next, ~3)
                                   for head in heads], threaded=vm.compiled)

    def gc_objects(self, chased):
        """(tracked, frozen): the objects on the GC's generation lists, then those of the
        permanent generation (gc.freeze(); 3.12 puts its static tuples there), which
        gc.get_objects() leaves out, from gc_lists(). Lists are followed through the
        mapped core."""
        gch = self.rt.layout.gchead.size
        found = []
        lists = chased.result()
        for head, nodes, closed in lists:
            if not closed:
                self.warnings.append(f"the GC list at {head:#x} is broken after "
                                     f"{len(nodes)} objects")
            found.append(nodes + np.uint64(gch))
        permanent = len(lists) == 4
        tracked = np.concatenate(found[:3])
        frozen = found[3] if permanent else np.zeros(0, dtype=np.uint64)
        return tracked, frozen

    # -- the walk -------------------------------------------------------------------------
    WAVE_CHUNK = 1 << 17       # objects decoded together: bounds a wave's temporaries

    def _wave(self, addrs):
        """Decode a set of new objects, a chunk at a time: a wave of millions of objects
        at once would hold tens of bytes of temporaries per edge."""
        for lo in range(0, len(addrs), self.WAVE_CHUNK):
            self._wave_chunk(addrs[lo:lo + self.WAVE_CHUNK])

    def _wave_chunk(self, addrs):
        edges = self.sink.edges
        mark = len(edges["tgt"])
        base = self.count
        self._decode_wave(addrs)
        # Node indices only grow from chunk to chunk: edges grouped by source within
        # each are grouped overall (no global sort, no copy of every edge), and the
        # number of edges per node is all the graph needs of their sources.
        counts = np.zeros(len(addrs), dtype=np.int32)
        pieces, edges["src"] = edges["src"], []
        if pieces:
            order = by_source(np.concatenate(pieces), base, counts)
            del pieces
            for field in ("tgt", "kind", "name"):
                merged = np.concatenate(edges[field][mark:])[order]
                del edges[field][mark:]
                edges[field].append(merged)
        self.edge_counts.append(counts)
        self.spill.objects = self.count
        if self.spill.check():
            self._park()

    def _park(self):
        """Spilling: what the walk keeps until its end (the nodes' and edges' chunks)
        moved into the scratch file. The memory they held is not given back here (no
        malloc_trim per wave chunk): the next chunks reuse it, where pages given back
        would be faulted in and zeroed again (a tenth of the time of a 1M-object walk,
        with the same peak); run() gives it back once the waves are done."""
        edges = self.sink.edges
        lists = (edges["tgt"], edges["kind"], edges["name"], self.chunks["addr"],
                 self.chunks["type"], self.chunks["size"], self.edge_counts,
                 self.sink.key_refs)
        # The lists only grow past what was parked (a wave chunk's merge replaces only
        # its own edges): each chunk is looked at once, not at every later wave chunk.
        parked = self._parked or [0] * len(lists)
        self._parked = [self.spill.park_all(chunks, start)
                        for chunks, start in zip(lists, parked)]

    def _decode_wave(self, addrs):
        vm, L, sink = self.vm, self.L, self.sink
        n = len(addrs)
        base = self.count
        sink.begin_wave(addrs, base)
        self.count += n
        sizes = np.zeros(n, dtype=np.uint64)
        types, ok = vm.u64(addrs + U64(L.object.ob_type or 8))
        tix = sink.type_indices(types)
        tix[~ok] = -1
        for k in np.nonzero(tix < 0)[0][:1000]:
            a = int(addrs[k])
            sink.problems[a] = sink.why_not_a_type(int(types[k]))
        valid = tix >= 0
        idx_all = np.arange(n)
        sink.emit(base + idx_all[valid], types[valid], INTERNAL, sink.name_id("ob_type"))
        _basic, _item, pre, is_heap, _kinds, kind_code = sink.type_arrays()
        t_all = np.where(valid, tix, len(sink.types))
        codes = kind_code[t_all]
        heap = is_heap[t_all]
        by_kind = np.argsort(codes.astype(np.int16), kind="stable")      # a radix sort
        bounds = np.searchsorted(codes[by_kind], np.arange(len(sink.kind_names) + 1))
        for code in range(len(sink.kind_names)):
            if bounds[code] == bounds[code + 1]:
                continue
            kind = sink.kind_names[code]
            start = time.perf_counter()
            idx = by_kind[bounds[code]:bounds[code + 1]]       # in address order (stable)
            if kind == "module":
                self.modules.append(addrs[idx])     # (the C roots look in their dicts)
            elif kind == "type":
                self.type_objects.append(addrs[idx])    # (the arena scan's types)
            dec = self._decoders.get(kind)
            if dec is None:
                self._fallback(addrs, idx, base, tix, sizes)
            else:
                dec(addrs, idx, base, tix, sizes)
                # Heap subclasses of built-ins (IntEnum members, a dict subclass...) and
                # exceptions have attributes of their own besides the built-in's data.
                if kind not in ATTRIBUTE_KINDS:
                    own = np.ones(len(idx), np.bool_) if kind == "exception" else heap[idx]
                    if own.any():
                        self.attributes.attributes(addrs, idx[own], base, tix)
                    if kind not in KIND_FIELDS and not own.all():
                        # collections.defaultdict and other C types of a built-in kind.
                        self.attributes.type_fields(addrs, idx[~own], base, tix)
                sizes[idx] += pre[tix[idx]].astype(np.uint64)
            stat = self.kind_stats.setdefault(kind, [0, 0.0])
            stat[0] += len(idx)
            stat[1] += time.perf_counter() - start
        self.chunks["addr"].append(addrs)
        self.chunks["type"].append(tix)
        self.chunks["size"].append(sizes)
        if self.progress:
            self.progress(self.count)

    def _fallback(self, addrs, idx, base, tix, sizes):
        for k in idx.tolist():
            addr = int(addrs[k])
            info = self.sink.types[int(tix[k])]
            try:
                sizes[k] = self.sink.sizes.own_size(addr, info)
            except (NsdebugError, struct.error, ValueError) as e:
                sizes[k] = info.basicsize
                self.sink.problems[addr] = f"size: {getattr(e, 'why', e)}"
            src, tgt, kk, nm = [], [], [], []
            for kind, name, target in self.refs.edges(addr, info):
                if name == "ob_type" and kind == INTERNAL:
                    continue                    # emitted for the whole wave
                if target == 0:
                    if name == "<unreadable>":
                        self.sink.problems.setdefault(addr, "references unreadable")
                    continue
                src.append(base + k)
                tgt.append(target)
                kk.append(kind)
                nm.append(name if kind == ELEMENT else self.sink.name_id(name))
            if src:
                self.sink.emit(np.array(src), np.array(tgt, dtype=np.uint64), np.array(kk),
                               np.array(nm))

    # -- driving ----------------------------------------------------------------------------
    def _drain_waves(self, frontier):
        """Decode `frontier` (new, already marked seen) and everything new it leads to."""
        while len(frontier):
            tgt = self.sink.edges["tgt"]
            mark = len(tgt)
            self._wave(frontier)
            # The wave's targets looked up a wave chunk's at a time, not joined first:
            # every edge's target passes here once, and a join of them all (and the
            # lookup's temporaries as long) was new memory each wave (1.25 GB of
            # targets in all at 48M objects), where a chunk's temporaries are reused.
            empty = self._limited_empty()
            new = [self.visited.add_many(chunk, empty) for chunk in tgt[mark:]]
            frontier = self._joined(new) if new else np.zeros(0, dtype=np.uint64)

    def _limited_empty(self):
        """What makes a wave's large temporaries: the spill's scratch file where a limit
        started the spill (there a wave of millions of targets is 8 bytes each the limit
        would count), else memory."""
        return self.spill.empty if self.spill.for_a_limit else np.empty

    def _joined(self, parts):
        """`parts` as one array (made by _limited_empty)."""
        out = self._limited_empty()(sum(len(p) for p in parts), np.uint64)
        return np.concatenate(parts, out=out)

    def run(self):
        self._roots()
        chased = self.gc_lists()
        self.n_synth = self.count = len(self.addr)
        # The synthetic nodes' edges, as rows like every other edge.
        starts = np.frombuffer(self.edge_start, dtype=np.uint64).astype(np.int64)
        counts = np.diff(np.append(starts, len(self.e_to)))
        targets = np.frombuffer(self.e_to, dtype=np.uint64).copy()
        self.edge_counts.append(counts.astype(np.int32))
        edges = self.sink.edges
        edges["tgt"].append(targets)
        edges["kind"].append(np.frombuffer(bytes(self.e_kind), dtype=np.uint8).copy())
        edges["name"].append(np.frombuffer(self.e_name, dtype=np.int32).copy())
        # 1. Everything reachable from the roots.
        self._drain_waves(self.visited.add_many(targets[(targets & U64(1 << 63)) == 0]))
        self.n_reachable = self.count
        # 2. On the GC lists or in pymalloc's blocks, but not reached (yet: C code may
        # hold them; the graph's assembly tells, with the C roots spliced in).
        seeds = []
        try:
            tracked, frozen = self.gc_objects(chased)
            self.tracked = tracked
            seeds += [tracked, frozen]
        except NsdebugError as e:
            self.warnings.append(f"GC lists: {e}")
        for group in seeds:
            self._drain_waves(self.visited.add_many(group))
        if self.scan_arenas:
            try:
                scan = ArenaScan(self.sink, self.rt, self.visited, self.type_objects)
                found = scan.objects()
                self._arenas = scan.ranges
                self._drain_waves(self.visited.add_many(found))
            except NsdebugError as e:
                self.warnings.append(f"pymalloc arenas: {e}")
        release_free_memory()             # the waves' temporaries, before the big arrays
        # Every node is known now: their addresses as one column, and a table to find a
        # node by its address (the C roots' words, then every edge's target).
        self._addr_col = self.spill.zeros(self.count, np.uint64)
        drain_into(self.chunks["addr"], self._addr_col[self.n_synth:], self.spill.copy)
        self.chunks["addr"] = None
        self._table = AddressTable(self._addr_col, self.n_synth, self.spill.empty)
        modules = np.concatenate(self.modules) if self.modules else \
            np.zeros(0, dtype=np.uint64)
        self.modules = None
        c_roots = CRoots(self.sink, self.rt.process, self._table, self._arenas)
        return self._graph(c_roots.roots(modules))

    def _native_memory(self, g):
        """Native memory held by objects, added to their sizes in the graph, with a row
        each in g.buffers (nativemem.py); g.malloc: the summary of malloc's chunks by who
        claims them (None without a malloc heap)."""
        if not self.scan_arenas:
            return
        start = time.perf_counter()
        try:
            heap = MallocHeap(self.vm, self.rt.process.mappings(), self._not_malloc())
        except NsdebugError as e:
            g.warnings.append(f"malloc heap: {e}")
            return
        if not heap.regions:
            g.warnings.append("no glibc malloc heap found in the core: native memory is "
                              "not attributed to objects")
            return
        g.warnings.extend(heap.warnings)
        owners = NativeOwners(heap, self.vm)
        s, L, types = g.n_synth, self.L, g.types
        a, t = g.addr[s:], g.type_ix[s:]
        # Objects in pymalloc's arenas are in no malloc chunk: only the others (large
        # ones, or all when pymalloc is off) are looked up.
        owners.claim_python(a[~self._in_arenas(a)])
        # Tables larger than pymalloc's blocks (512 bytes) are malloc'd: only objects of
        # more than that can have one.
        # (The few large objects first: a type lookup per object is seconds at 48M.)
        big = np.nonzero(g.size[s:] > 512)[0]
        t_big = t[big]
        for kind, fields in (("list", (L.list.ob_item,)),
                             ("dict", (L.dict.ma_keys, L.dict.ma_values)),
                             ("set", (L.set.table,))):
            ix = [i for i, ti in enumerate(types) if ti.kind == kind]
            sel = big[of_types(t_big, ix, len(types))]
            for off in fields:
                if off is not None and len(sel):
                    ptrs, ok = self.vm.u64(a[sel] + U64(off))
                    owners.claim_python(ptrs[ok & (ptrs != 0)])
        buffers = self.sink.buffers
        owners.claim_buffers(g.buffers["data"])
        # The sources: C types' words nothing else accounts for (Referents.body_offsets:
        # none for Python classes); not the buffer owners (their data is claimed), nor
        # arrays of a numpy whose layout is unknown (their data stays unattributed).
        offsets = {i: self.refs.body_offsets(ti) for i, ti in enumerate(types)
                   if ti.kind in ("other", "instance") and buffers.rule(i) is None and
                   ti.address not in buffers.unknown_layout}
        offsets = {i: np.array(o, np.uint64) for i, o in offsets.items() if o}
        if offsets:
            # Per type: its offsets' count and where they start in one flat array.
            count_of = np.zeros(len(types) + 1, np.int64)
            first_of = np.zeros(len(types) + 1, np.int64)
            flat, at = [], 0
            for i, o in offsets.items():
                count_of[i], first_of[i] = len(o), at
                flat.append(o)
                at += len(o)
            flat = np.concatenate(flat)
            # The dominators first (the attribution needs them, the index too), while
            # only the graph is held; then the words, a slice of the objects at a time.
            common = owners.shared_owners(g.dominators(), g.n_synth)

            def words():
                # A slice of the objects at a time, and of their words WORDS_STEP at a
                # time (C types with many words would make tens of MiB at once).
                for lo in range(0, len(t), WORDS_SLICE):
                    tt = t[lo:lo + WORDS_SLICE]
                    sel_all = np.nonzero(count_of[tt] > 0)[0]
                    counts_all = count_of[tt[sel_all]]
                    for i, j in runs_within(counts_all, WORDS_STEP):
                        sel, counts = sel_all[i:j], counts_all[i:j]
                        word_at = np.repeat(a[lo:lo + WORDS_SLICE][sel], counts) + \
                            flat[np.repeat(first_of[tt[sel]], counts) + ramp(counts)]
                        yield np.repeat(sel + (s + lo), counts), word_at
            got, extra = owners.attribute(words(), common)
            release_free_memory()       # its temporaries, before the index's arrays
            g.size[got] += extra.astype(np.uint64)
            buffers.native(got, extra)
            g.buffers = buffers.table()
        residency = Residency(self.rt.process, lambda: self.vm)
        summary = owners.summary(residency.chunk_bytes(heap.addr, heap.size))
        summary["resident_exact"] = residency.exact
        mm = np.nonzero(np.isin(heap.region, [i for i, r in enumerate(heap.regions)
                                              if r.kind == "mmapped"]))[0]
        summary["mmapped"] = [[int(heap.addr[k]), int(heap.size[k])] for k in mm]
        summary["regions"] = [[r.kind, r.start, r.end, r.arena, r.chunks, r.used, r.free,
                               r.top, r.complete, r.beyond] for r in heap.regions]
        if self._arenas is not None:
            starts, ends, _ = self._arenas
            summary["pymalloc"] = [[a, b] for a, b in zip(starts.tolist(), ends.tolist())]
        summary["seconds"] = time.perf_counter() - start
        g.malloc = summary

    def _in_arenas(self, addrs):
        """Whether each address is in one of pymalloc's arenas (a slice at a time: the
        lookup's offsets are 8 bytes an address)."""
        out = np.zeros(len(addrs), np.bool_)
        if self._arenas is None or not len(self._arenas[0]):
            return out
        starts, ends, _ = self._arenas
        for lo in range(0, len(addrs), WORDS_SLICE):
            out[lo:lo + WORDS_SLICE] = within(starts, ends, addrs[lo:lo + WORDS_SLICE])
        return out

    def _not_malloc(self):
        """Address ranges that are no malloc memory: pymalloc's arenas, thread stacks."""
        out = thread_stack_ranges(self.rt.process)
        if self._arenas is not None:
            starts, ends, _ = self._arenas
            out += list(zip(starts.tolist(), ends.tolist()))
        return out

    def _graph(self, late):
        n = self.count
        empty = self.spill.empty
        starts = self.spill.zeros(n + 1, np.int64)
        drain_into(self.edge_counts, starts[1:], running_sums(self.spill.copy))
        self.edge_counts = self.sink.edges["src"] = None
        self.visited = None
        sink = self.sink
        key_refs = np.concatenate(sink.key_refs) if sink.key_refs else \
            np.zeros(0, dtype=np.uint64)
        sink.key_refs = None
        cols = {"addr": self._addr_col}
        self._addr_col = None
        for name, fill, dtype in (("type", -1, np.int32), ("size", 0, np.uint64)):
            out = empty(n, dtype)
            out[:self.n_synth] = fill
            cols[name] = drain_into(self.chunks[name], out[self.n_synth:], self.spill.copy).base
        # Room before the edges for the group edges the assembly adds (C roots, the
        # unreachable: only objects the roots' waves did not find can be unreachable),
        # so that they go in without a copy of every edge.
        room = sum(len(t) for t, _ in late.values()) + (n - self.n_reachable)
        m = sum(len(c) for c in sink.edges["tgt"])
        cols["tgt"] = sink.edges["tgt"]              # a list of chunks: mapped one by one
        sink.edges["tgt"] = None
        for field, dtype in (("kind", np.uint8), ("name", np.int32)):
            cols[field] = empty(room + m, dtype)
            drain_into(sink.edges[field], cols[field][room:], self.spill.copy)
        sink.edges = self.chunks = None
        # Hand the columns over (no reference kept here, so the assembly can free them);
        # the C roots' and (Unreachable)'s edges are spliced in there.
        table, self._table = self._table, None
        tables = WalkTables(sink.names, sink.types, sink.problems, key_refs,
                            self.refs.key_name, self.synth_names, self.synth_kinds,
                            self.warnings + sink.buffers.warnings, self.n_synth,
                            self.n_reachable, self.group_ix, self.tracked,
                            sink.buffers.table(), None)
        g = HeapGraph.assemble(tables, late, cols.pop("addr"), cols.pop("type"),
                               cols.pop("size"), starts, cols.pop("tgt"), cols.pop("kind"),
                               cols.pop("name"), table, room, empty)
        # Beside the native attribution below, which needs it only at its end.
        g.start_dominators()
        if self.assembled is not None:
            self.assembled(g)
        self._native_memory(g)
        # What only the walk needed goes before the dominator pass (whoever keeps this
        # walker, for its kind_stats, does not keep these too); a capture's copy of the
        # core too (read again, it is made again): the index and the dominator pass then
        # take its pages, not new ones (VectorMemory.release).
        self.tracked = None
        sink.release()
        self.vm.release()
        return g


def _raise(error):
    raise error
