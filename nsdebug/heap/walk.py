"""What every heap walk starts from: the synthetic roots, the tables of names and types,
the GC's lists, and the checks an object found in a pymalloc block must pass.

The walk itself is fastwalk.FastWalker. Synthetic nodes (the root, its groups,
threads and frames) come first; objects found only through the GC lists or the
allocator's arenas are unreachable and hang under "(Unreachable)".
"""

from __future__ import annotations

import os
from array import array

import numpy as np

from ..cpython import layout_check
from ..cpython.sizes import SizeOf
from ..errors import NsdebugError
from .referents import ELEMENT, INTERNAL, PROPERTY, Referents
from .strings import StringTable

SYNTH = 1 << 63               # marks an edge target that is a synthetic node index
C_GLOBALS, C_STACKS, UNREACHABLE = "(C globals)", "(C stacks)", "(Unreachable)"
# The order in which a BFS from the root expands the groups (paths name Python roots
# before C's; the unreachable are reached last, and only through their group).
GROUP_PHASE = {C_GLOBALS: 1, C_STACKS: 1, UNREACHABLE: 2}
UNREACHABLE_PHASE = 2
TPFLAGS_HAVE_GC = 1 << 14
TPFLAGS_PREHEADER = (1 << 3) | (1 << 4)
INVALID_TYPE = -1
MAX_USER_ADDRESS = 1 << 47        # x86-64 user space: a larger pointer is garbage
MAX_REFCOUNT = 1 << 36            # above this a "refcount" is a pointer (immortal is 2**32-1)


class HeapWalker:
    """The base of the heap walk: roots, tables, GC lists, block plausibility."""

    def __init__(self, rt, progress=None, arenas=True):
        self.rt = rt
        self.o = rt.objects
        self.refs = Referents(rt.objects)
        self.sizes = SizeOf(rt.objects)
        self.progress = progress
        self.scan_arenas = arenas
        self.warnings = []
        # Node arrays.
        self.addr = array("Q")
        self.type_ix = array("i")
        self.size = array("Q")
        self.flags = bytearray()
        self.edge_start = array("Q")
        self.e_to = array("Q")
        self.e_kind = bytearray()
        self.e_name = array("i")
        # Tables.
        self._names = StringTable()
        self.names = self._names.strings
        self.types: list = []
        self._type_ix: dict[int, int] = {}
        self.synth_names: list[str] = []
        self.synth_kinds: list[str] = []
        self.problems: dict[int, str] = {}
        self.tracked = array("Q")          # addresses on the GC lists

    # -- tables -----------------------------------------------------------------------
    def name_id(self, name):
        return self._names.add(name)

    def _type_index(self, info):
        ix = self._type_ix.get(info.address)
        if ix is None:
            ix = self._type_ix[info.address] = len(self.types)
            self.types.append(info)
        return ix

    def _edge(self, kind, name, target):
        self.e_to.append(target)
        self.e_kind.append(kind)
        self.e_name.append(name if kind == ELEMENT else self.name_id(name))

    # -- synthetic nodes ------------------------------------------------------------------
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
                    for loc in rt.walker.locals_of(f):
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
        self.root_dicts = {"(Modules)": interp.modules, "(Builtins)": interp.builtins}

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

    def gc_objects(self):
        """(tracked, frozen): the objects on the GC's generation lists, then those of the
        permanent generation (gc.freeze(); 3.12 puts its static tuples there), which
        gc.get_objects() leaves out. Lists are followed through the mapped core."""
        rt, L = self.rt, self.rt.layout
        heads = layout_check.gc_heads(self.o, L, rt.main_interpreter.address, rt.address)
        gch = L.gchead.size
        found = []
        for head in heads:
            nodes, closed = self.vm.chase(head, L.gchead.gc_next, ~3)
            if not closed:
                self.warnings.append(f"the GC list at {head:#x} is broken after "
                                     f"{len(nodes)} objects")
            found.append(nodes + np.uint64(gch))
        permanent = len(heads) == 4
        tracked = np.concatenate(found[:3])
        frozen = found[3] if permanent else np.zeros(0, dtype=np.uint64)
        return tracked, frozen

    def _plausible(self, obj, info, block_end, gc_type, has_pre):
        o = self.o
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
