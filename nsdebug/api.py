"""nsdebug as a library: a core's threads, stacks, objects and heap, as values.

    import nsdebug

    with nsdebug.open("core.1234") as core:
        for thread in core.threads:
            for frame in thread.frames:             # oldest call first, as `bt` shows
                print(frame.function, frame.line, frame.locals)
        for row in core.heap.histogram(top=5):
            print(row.type, row.count, row.size)

A Core wraps one target.Target, the library object the shell's commands and `report`
stand on too: each method here is one call into the library, and returns its
documented records (see docs/api.md). Nothing here computes on its own.
"""

from __future__ import annotations

from functools import cached_property

from .errors import NsdebugError


def open(path, executable=None, *, sysroot=None, lib_path=(), debug_dirs=(),  # noqa: A001
         use_index=True):
    """Open a core (plain ELF or an arthur .lz4). Raises NsdebugError on a bad file."""
    return Core(path, executable, sysroot=sysroot, lib_path=lib_path, debug_dirs=debug_dirs,
                use_index=use_index)


def triage(paths, **options):
    """fleet.TriageResult of the cores under `paths`: crash groups and growth across
    instances (see nsdebug.fleet.triage for the options)."""
    from .fleet import triage as run
    return run(paths, **options)


class Core:
    """One core file of a CPython process."""

    def __init__(self, path, executable=None, *, sysroot=None, lib_path=(), debug_dirs=(),
                 use_index=True):
        from .model import Target, open_target
        if isinstance(path, Target):
            self.target = path
        else:
            self.target = open_target(path, executable, sysroot=sysroot, lib_path=lib_path,
                                      debug_dirs=debug_dirs, use_index=use_index)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for name in ("heap", "threads"):
            self.__dict__.pop(name, None)
        self.target.close()

    @property
    def process(self):
        """The core as a process image (corefile.Process)."""
        return self.target.process

    @property
    def warnings(self):
        """What could not be read as it should (missing files, damaged structures)."""
        return self.target.warnings

    @property
    def pid(self):
        return self.target.process.pid

    @property
    def python_version(self):
        return str(self.target.runtime.version)

    def info(self):
        """model.info.InfoResult: process, signal, how the core was made, the Python
        version and the crash summary."""
        from .model.info import process_info
        return process_info(self.target)

    @property
    def crash(self):
        """The one-line crash summary ("SIGSEGV at 0x8 in memset (libc.so.6) in thread
        12; Python: parse (app.py:41)"), or None for a core of a process that did not
        crash."""
        from .model.info import crash_summary
        return crash_summary(self.target)

    @cached_property
    def threads(self):
        """Python threads, in the order of the core's threads."""
        rt = self.target.runtime
        ordered = sorted(rt.threads, key=lambda t: (t.core_index is None, t.core_index or 0))
        return [Thread(self, t) for t in ordered]

    @property
    def crashed_thread(self):
        return next((t for t in self.threads if t.crashed), None)

    def stacks(self, native=None, locals=False, max_depth=2, max_items=10,  # noqa: A002
               max_string=80):
        """model.stacks.BacktraceResult of every thread, as `bt --all` shows it:
        `native` None (Python frames), "python" (C frames merged in, the interpreter's
        plumbing hidden) or "all"; `locals` with each frame's locals, previewed within
        the bounds."""
        from .cpython.objects import Preview
        from .model.stacks import backtrace
        return backtrace(self.target, True, locals, native,
                         Preview(max_depth, max_items, max_string))

    def thread_rows(self):
        """model.stacks.ThreadsResult: every core thread's tid, pc and symbol, sp,
        signal and what it was doing (`threads`)."""
        from .model.stacks import thread_rows
        return thread_rows(self.target)

    def locks(self):
        """model.locks.LocksResult: the lock each thread is blocked on, the locks it
        holds, and the deadlocks (`locks`)."""
        from .model.locks import locks
        return locks(self.target)

    def object(self, address):
        """The object at `address` (NsdebugError if no sane object is there)."""
        self.target.runtime.objects.info(address)       # checks it is one
        return Object(self, address)

    @cached_property
    def heap(self):
        return Heap(self)

    def tasks(self, locals=False, every=False):  # noqa: A002
        """heap.tasks.TasksResult: the asyncio tasks of every event loop in the heap,
        pending ones (`every`: all), with their await chains."""
        from .heap.tasks import tasks
        return tasks(self.target, locals, every)

    def diff(self, older, top=25, sort="size"):
        """heap.diff.DiffResult: what grew since `older` (a path of an earlier core of
        the same process): per type, and where the new objects hang."""
        from .heap.diff import diff_cores
        return diff_cores(self.target, older, top, sort)

    def snapshot(self, path, *, redact=False, force=False):
        """Write the heap as a Chrome DevTools .heapsnapshot (private file, 0600).
        Returns (nodes, edges)."""
        return self.target.write_snapshot(path, force=force, redact=redact)


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
        rt = self._core.target.runtime
        return [Frame(self._core, f) for f in reversed(rt.frames(self._t))]

    def stack(self, native="python"):
        """model.stacks.ThreadStack: the thread's frames with its C frames merged in
        (`native` as in Core.stacks), and `state`, what it was doing."""
        from .model.stacks import thread_stack
        return thread_stack(self._core.target, self._t, native=native)


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
        rt = self._core.target.runtime
        return {loc.name: Object(self._core, loc.address)
                for loc in rt.frame_walker.locals_of(self._f) if loc.address}

    def lookup(self, name):
        """The Object a name means in this frame (a local, a global, a builtin), or
        None."""
        rt = self._core.target.runtime
        hit = rt.frame_walker.lookup_name(self._f, name, rt.main_interpreter.builtins)
        return None if hit is None else Object(self._core, hit[0])


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
        return self._core.target.runtime.objects.info(self.address)

    @property
    def type(self):
        """The qualified type name, e.g. 'dict' or 'myapp.models.User'."""
        return self._info.qualname

    @property
    def size(self):
        """What sys.getsizeof(obj) returned in the process."""
        from .cpython.sizes import SizeOf
        return SizeOf(self._core.target.runtime.objects).getsizeof(self.address, self._info)

    def preview(self, max_depth=2, max_items=10, max_string=80):
        """A bounded repr()-like text of the value."""
        from .cpython.objects import Preview
        return self._core.target.runtime.objects.preview(
            self.address, Preview(max_depth, max_items, max_string))

    def inspect(self, limit=100, max_depth=1):
        """cpython.inspect.InspectResult: type, refcount, size and the attributes, items
        or struct fields, as `inspect` shows them."""
        from .cpython.inspect import inspect_object
        from .cpython.objects import Preview
        return inspect_object(self._core.target.runtime, self.address, Preview(max_depth),
                              limit)

    def referents(self):
        """[(edge name, Object)]: what this object refers to, as gc.get_referents sees
        it, each with the attribute, key or index it is held under."""
        from .heap.referents import Referents
        rt = self._core.target.runtime
        out = []
        for _kind, name, target in Referents(rt.objects).edges(self.address, self._info):
            if target and name != "ob_type":
                out.append((str(name), Object(self._core, target)))
        return out


class Heap:
    """Every object of the heap as a graph: by type, paths from roots, retained sizes,
    leak suspects. The first use walks the heap (or maps the core's heap index)."""

    def __init__(self, core):
        self._core = core

    @property
    def graph(self):
        """The heap.graph.HeapGraph itself."""
        return self._core.target.heap

    def __len__(self):
        g = self.graph
        return g.n - g.n_synth

    def histogram(self, top=None, sort="size"):
        """[heap.stats.TypeStats], largest first by `sort` ("count", "size" or
        "retained")."""
        from .heap.stats import type_histogram
        return type_histogram(self.graph, sort)[:top]

    def by_type(self, sort="size", top=25):
        """heap.stats.ObjectsResult: the totals and the histogram, as `objects` shows."""
        from .heap.stats import by_type
        return by_type(self.graph, sort, top)

    def instances(self, type_name):
        """Every object of the type (qualified or bare name)."""
        from .heap.stats import instance_indices
        g = self.graph
        return [Object(self._core, int(g.addr[i])) for i in instance_indices(g, type_name)]

    def _index(self, obj):
        address = obj.address if isinstance(obj, Object) else int(obj)
        i = self.graph.index_of(address)
        if i is None:
            raise NsdebugError(f"{address:#x} is not an object of the heap")
        return i

    def _objects(self, indices):
        g = self.graph
        return [Object(self._core, int(g.addr[i])) for i in indices]

    def path(self, obj):
        """The shortest chain of references from a root, as Python text
        ("sys.modules['app'].cache['k'][3]"), or None when no root reaches it."""
        from .heap.paths import path_text
        g = self.graph
        edges = g.path_edges(self._index(obj))
        return None if edges is None else path_text(g, edges)

    def referrers(self, obj):
        """[heap.paths.RefRow]: who refers to the object, and how, as `refs` shows."""
        from .heap.paths import referrers
        objects = self._core.target.runtime.objects
        return referrers(self.graph, self._index(obj), objects.preview)

    def retained(self, obj):
        """Bytes that would be freed with the object: its own and all it alone keeps."""
        return int(self.graph.retained()[self._index(obj)])

    def dominated(self, obj, top=10):
        """[Object]: the largest objects the object alone keeps alive (it dominates)."""
        return self._objects(self.graph.dominated_by(self._index(obj), top))

    def reachable(self, obj):
        return bool(self.graph.reachable(self._index(obj)))

    def largest(self, top=10):
        """([Object] by own size, [Object] by retained size), the largest first."""
        from .heap.stats import largest
        by_size, by_retained = largest(self.graph, top)
        return self._objects(by_size), self._objects(by_retained)

    def strings(self, pattern, limit=20):
        """[Object]: str and bytes objects whose value contains `pattern`."""
        from .heap.stats import containing
        found, _more = containing(self.graph, self._core.target.runtime.objects, pattern,
                                  limit)
        return self._objects(found)

    def memory(self):
        """heap.memory.MemoryResult: every mapped byte of the core by category, with the
        bytes of each that were resident."""
        from .heap.memory import memory
        return memory(self._core.target)

    def suspects(self, top=5, min_share=0.05, waste=False):
        """heap.suspects.SuspectsResult: what keeps the most memory alive alone, each with
        its path and where it piles up; with `waste`, duplicates and empty containers."""
        from .heap.suspects import suspects
        return suspects(self._core.target, top, min_share, waste)

    def waste(self, top=20):
        """heap.waste.WasteResult: duplicate str and bytes values, and empty or mostly
        empty containers, with the memory they keep for nothing."""
        from .heap.waste import find_waste
        t = self._core.target
        return find_waste(t.heap, t.scattered_reads(), t.runtime.objects, top)
