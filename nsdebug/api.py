"""nsdebug as a library: a core's threads, Python stacks, objects and heap, as values.

    import nsdebug

    with nsdebug.open("core.1234") as core:
        for thread in core.threads:
            for frame in thread.frames:             # oldest call first, as `bt` shows
                print(frame.function, frame.line, frame.locals)
        for row in core.heap.histogram(top=5):
            print(row.type, row.count, row.size)

The API reads the same model the shell's commands read (corefile -> cpython -> heap,
through one Session), and gives values, not text. See docs/api.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .errors import NsdebugError


def open(path, executable=None, *, sysroot=None, lib_path=(), use_index=True):  # noqa: A001
    """Open a core (plain ELF or an arthur .lz4). Raises NsdebugError on a bad file."""
    return Core(path, executable, sysroot=sysroot, lib_path=lib_path, use_index=use_index)


class Core:
    """One core file of a CPython process."""

    def __init__(self, path, executable=None, *, sysroot=None, lib_path=(), use_index=True):
        from .commands.session import Session
        from .corefile import open_core
        self.process = open_core(path, executable, sysroot, list(lib_path))
        self.session = Session(self.process, use_index=use_index)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for name in ("heap", "threads"):
            self.__dict__.pop(name, None)
        self.session = None
        try:
            self.process.close()
        except BufferError:
            pass    # arrays still viewing the mapped core; it is unmapped when they go

    @property
    def warnings(self):
        """What could not be read as it should (missing files, damaged structures)."""
        return list(self.process.warnings) + list(self.session.runtime.warnings)

    @property
    def pid(self):
        return self.process.pid

    @property
    def python_version(self):
        return str(self.session.runtime.version)

    @cached_property
    def threads(self):
        """Python threads, in the order of the core's threads."""
        rt = self.session.runtime
        ordered = sorted(rt.threads, key=lambda t: (t.core_index is None, t.core_index or 0))
        return [Thread(self, t) for t in ordered]

    @property
    def crashed_thread(self):
        return next((t for t in self.threads if t.crashed), None)

    def object(self, address):
        """The object at `address` (NsdebugError if no sane object is there)."""
        self.session.runtime.objects.info(address)       # checks it is one
        return Object(self, address)

    @cached_property
    def heap(self):
        return Heap(self)

    def snapshot(self, path, *, redact=False, force=False):
        """Write the heap as a Chrome DevTools .heapsnapshot (private file, 0600).
        Returns (nodes, edges)."""
        from arthur.safefile import PrivateOutput

        from .heap.snapshot import write_snapshot
        g = self.heap.graph
        with PrivateOutput(path, force, binary=False) as out:
            return write_snapshot(g, self.session.runtime.objects, out.f, None,
                                  self.session.vector_memory, redact=redact)


class Thread:
    def __init__(self, core, py_thread):
        self._core = core
        self._t = py_thread
        self.tid = py_thread.native_tid
        self.ident = py_thread.thread_id
        self.name = py_thread.name
        self.holds_gil = py_thread.holds_gil
        self.crashed = py_thread.crashed

    def __repr__(self):
        return f"<Thread {self.tid} {self.name!r}>"

    @cached_property
    def frames(self):
        """Python frames, oldest call first (the innermost is last)."""
        rt = self._core.session.runtime
        return [Frame(self._core, f) for f in reversed(rt.frames(self._t))]


class Frame:
    def __init__(self, core, frame):
        self._core = core
        self._f = frame
        self.function = frame.function
        self.filename = frame.filename
        self.line = frame.line

    def __repr__(self):
        return f"<Frame {self.function} at {self.filename}:{self.line}>"

    @cached_property
    def locals(self):
        """{name: Object} of the arguments and locals that are bound."""
        if self._f.code is None:
            return {}
        rt = self._core.session.runtime
        return {loc.name: Object(self._core, loc.address)
                for loc in rt.frame_walker.locals_of(self._f) if loc.address}


class Object:
    """A PyObject in the core. Reading it never runs Python code of the target."""

    def __init__(self, core, address):
        self._core = core
        self.address = address

    def __repr__(self):
        return f"<Object {self.type} at {self.address:#x}>"

    def __eq__(self, other):
        return isinstance(other, Object) and other.address == self.address

    def __hash__(self):
        return hash(self.address)

    @cached_property
    def _info(self):
        return self._core.session.runtime.objects.info(self.address)

    @property
    def type(self):
        """The qualified type name, e.g. 'dict' or 'myapp.models.User'."""
        return self._info.qualname

    @property
    def size(self):
        """What sys.getsizeof(obj) returned in the process."""
        from .cpython.sizes import SizeOf
        return SizeOf(self._core.session.runtime.objects).getsizeof(self.address, self._info)

    def preview(self, max_depth=2, max_items=10, max_string=80):
        """A bounded repr()-like text of the value."""
        from .cpython.objects import Preview
        return self._core.session.runtime.objects.preview(
            self.address, Preview(max_depth, max_items, max_string))

    def referents(self):
        """[(edge name, Object)]: what this object refers to, as gc.get_referents sees
        it, each with the attribute, key or index it is held under."""
        from .heap.referents import Referents
        rt = self._core.session.runtime
        out = []
        for _kind, name, target in Referents(rt.objects).edges(self.address, self._info):
            if target and name != "ob_type":
                out.append((str(name), Object(self._core, target)))
        return out


@dataclass
class TypeStats:
    type: str
    count: int
    size: int           # own sizes summed
    retained: int       # what all the instances keep alive together
    tracked: int = 0    # instances the GC tracks
    unreachable: int = 0


class Heap:
    """Every object of the heap as a graph: by type, paths from roots, retained sizes.
    The first use walks the heap (or maps the core's heap index)."""

    def __init__(self, core):
        self._core = core

    @cached_property
    def graph(self):
        return self._core.session.heap

    def __len__(self):
        g = self.graph
        return g.n - g.n_synth

    def histogram(self, top=None, sort="size"):
        """[TypeStats], largest first by `sort` ("count", "size" or "retained")."""
        return type_histogram(self.graph, sort)[:top]

    def instances(self, type_name):
        """Every object of the type (qualified or bare name)."""
        g = self.graph
        return [Object(self._core, int(g.addr[i])) for i in instance_indices(g, type_name)]

    def _index(self, obj):
        address = obj.address if isinstance(obj, Object) else int(obj)
        i = self.graph.index_of(address)
        if i is None:
            raise NsdebugError(f"{address:#x} is not an object of the heap")
        return i

    def path(self, obj):
        """The shortest chain of references from a root, as Python text
        ("sys.modules['app'].cache['k'][3]"), or None when no root reaches it."""
        from .heap.paths import path_text
        g = self.graph
        edges = g.path_edges(self._index(obj))
        return None if edges is None else path_text(g, edges)

    def retained(self, obj):
        """Bytes that would be freed with the object: its own and all it alone keeps."""
        g = self.graph
        return int(g.retained()[self._index(obj)])

    def reachable(self, obj):
        return bool(self.graph.reachable(self._index(obj)))


def type_histogram(g, sort="size"):
    """[TypeStats] of a heap graph, sorted by `sort`: the `objects` command's table."""
    import numpy as np
    objs = slice(g.n_synth, g.n)
    tix = g.type_ix[objs].astype(np.int64)
    tix = np.where(tix < 0, len(g.types), tix)
    ntypes = len(g.types) + 1
    count = np.bincount(tix, minlength=ntypes)
    size = np.bincount(tix, weights=g.size[objs].astype(np.float64), minlength=ntypes)
    # A type's retained size: what all its instances keep alive together.
    ret = np.zeros(ntypes, dtype=np.uint64)
    ret[:-1] = g.group_retained(g.type_ix, len(g.types))
    tracked = np.bincount(tix, weights=((g.flags[objs] & 2) > 0), minlength=ntypes)
    unreach = np.bincount(tix, weights=((g.flags[objs] & 1) == 0), minlength=ntypes)
    names = g.type_names()
    key = {"count": count, "size": size, "retained": ret}[sort]
    order = np.argsort(-key, kind="stable")
    return [TypeStats(names[t], int(count[t]), int(size[t]), int(ret[t]), int(tracked[t]),
                      int(unreach[t])) for t in order if count[t]]


def instance_indices(g, type_name):
    """Node indices of the objects of a type, by qualified name, else by bare name."""
    import numpy as np
    names = g.type_names()
    wanted = [i for i, n in enumerate(names[:-1]) if n == type_name] or \
        [i for i, n in enumerate(names[:-1]) if n.rsplit(".", 1)[-1] == type_name]
    idx = np.nonzero(np.isin(g.type_ix, wanted))[0]
    return idx[idx >= g.n_synth]
