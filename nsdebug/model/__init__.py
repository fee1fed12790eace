"""The library's floor: one opened core (Target) and everything a script, the shell,
batch mode, diff and report can ask of it.

    from nsdebug.model import open_target
    t = open_target("core.1234")
    t.process            # corefile.Process: threads, mappings, memory, symbols
    t.runtime            # cpython.Runtime: version, layout, threads, frames, objects
    t.native             # native.stacks.NativeStacks: C stacks, unwound per thread
    t.heap               # heap.HeapGraph: walked, or mapped from the heap index

Everything is read on first use. The capabilities are functions over a Target, one
module per family, each returning documented records: model.info (process, signal,
crash summary), model.stacks (threads, Python and native frames merged), and in
heap/ the histogram (stats.py), paths and referrers (paths.py), suspects, waste,
diff and tasks. nsdebug.api wraps them for scripts; the commands wrap them for the
shell; neither adds logic of its own.
"""

from __future__ import annotations

import os

from ..errors import LayoutMissing, NsdebugError
from ..once import cached_property


def open_target(path, executable=None, *, sysroot=None, lib_path=(), debug_dirs=(),
                runtime_method=None, use_index=True):
    """Open a core (plain ELF or an arthur .lz4) as a Target. `sysroot` and `lib_path`
    say where the core's mapped files are looked up, `debug_dirs` where separate debug
    files are, `runtime_method` forces one way of finding _PyRuntime, and `use_index`
    False neither reads nor writes caches (the heap index, inflated debug sections).
    Raises NsdebugError on a file that is no readable core."""
    from ..corefile import open_core
    process = open_core(path, executable, sysroot, list(lib_path or ()))
    return Target(process, debug_dirs=debug_dirs, runtime_method=runtime_method,
                  use_index=use_index)


def open_live_target(pid, *, debug_dirs=(), runtime_method=None, log=lambda msg: None):
    """A running process as a Target, read from a frozen fork of it: paused only for the
    fork, nothing written to disk (no heap index either); close() releases the fork."""
    from ..corefile import open_live
    process = open_live(pid, log)
    return Target(process, debug_dirs=debug_dirs, runtime_method=runtime_method,
                  use_index=False)


class Target:
    """An opened core: the process image, and the CPython runtime, native stacks, heap
    graph and bulk reader made from it on first use."""

    def __init__(self, process, *, debug_dirs=(), runtime_method=None, use_index=True):
        self.process = process
        self.debug_dirs = list(debug_dirs or ())
        self.runtime_method = runtime_method
        self.use_index = use_index
        self.notes = []             # what could not be done as it should (heap index...)
        self.closed = False

    def _open(self):
        if self.closed:
            raise NsdebugError(f"{self.process.path} was closed")

    # -- the models, each made on first use ---------------------------------------------------
    @cached_property
    def runtime(self):
        """The CPython runtime (cpython.Runtime); PythonNotFoundError without one."""
        self._open()
        from ..cpython import attach
        return attach(self.process, self.runtime_method)

    @cached_property
    def heap(self):
        """The heap graph (heap.HeapGraph): mapped from the core's heap index when there is
        a valid one, else walked (a progress bar on a terminal) and its index written."""
        from ..freemem import one_arena
        from ..heap import build_heap, index
        from ..progress import progress_reporter
        one_arena()             # before the walk's first thread (a capture's copy's)
        rt = self.runtime
        if not rt.layout.complete:
            raise LayoutMissing(f"the heap of this core cannot be read: {rt.layout.missing}")
        identity = None
        if self.use_index:
            try:
                identity = index.core_identity(self.process.path, rt.layout.source)
            except OSError as e:
                self.notes.append(f"heap index not used: {e.strerror or e}")
        if identity is not None:
            from ..heap.graph import HeapGraph
            from ..heap.referents import Referents
            found, reasons = index.load(self.process.path, identity)
            self.notes.extend(f"ignoring heap index {r}; walking again" for r in reasons)
            if found is not None:
                return HeapGraph.from_index(*found, Referents(rt.objects))
        from ..heap.spill import Spill
        # (kept by the graph, which makes its later arrays with it too)
        spill = Spill(index.scratch_dir(self.process.path))
        writers = []

        def assembled(g):
            # The index's first arrays go to the file while the walk finishes.
            if identity is not None:
                writers.append(index.start(g, self.process.path, identity, spill))

        try:
            with progress_reporter("walking the heap", "objects") as report:
                g = build_heap(rt, report, spill, assembled)
        except BaseException:
            for w in writers:
                if w is not None:
                    w.discard()
            raise
        if identity is not None:
            try:
                index.save(g, self.process.path, identity, writers[0] if writers else None)
            except OSError as e:
                self.notes.append(f"heap index not written ({e}); the next command walks "
                                  f"the heap again")
        note = spill.note()                 # (the index's dominator pass spills too)
        if note:
            self.notes.append(note)
        return g

    @cached_property
    def native(self):
        """Native stacks of the core's threads (native.stacks.NativeStacks), unwound on
        first use per thread."""
        self._open()
        from ..native.stacks import NativeStacks
        return NativeStacks(self.process, self.debug_dirs, use_cache=self.use_index)

    @cached_property
    def vector_memory(self):
        """The core mapped for reads at many addresses at once (corefile.vector)."""
        self._open()
        from ..corefile.vector import VectorMemory
        from ..freemem import one_arena
        one_arena()             # before a capture's copy starts its threads
        return VectorMemory(self.process)

    def scattered_reads(self):
        """The core for reads near addresses the heap index holds (a snapshot's values,
        the waste of `suspects`): a capture's a window at a time (corefile.windows), with
        no copy of it all, unless a copy is mapped already or the core is small enough
        that copying it whole is the faster (windows.WHOLE_UP_TO); else vector_memory."""
        made = self.__dict__.get("vector_memory")
        if made is None or not made.mapped:
            self._open()
            from ..corefile import windows
            reads = windows.WindowedMemory.of(self.process)
            if reads is not None and self.process.source.size > windows.WHOLE_UP_TO:
                return reads
        return self.vector_memory

    def has(self, model):
        """Whether a model ("runtime", "heap", "native") was made already."""
        return model in self.__dict__

    @property
    def warnings(self):
        """What could not be read as it should, so far: the process's, the runtime's
        (once attached) and the target's own."""
        rt = self.__dict__.get("runtime")
        return list(self.process.warnings) + (list(rt.warnings) if rt else []) + \
            list(self.notes)

    # -- other cores ------------------------------------------------------------------------------
    def open_like(self, path):
        """Another core of the same program, opened with the same options."""
        from ..corefile import open_core
        r = self.process.resolver
        other = open_core(path, None, r.sysroot, r.lib_path)
        if os.path.realpath(other.path) == os.path.realpath(self.process.path):
            other.close()
            raise NsdebugError(f"{path} is the core already open")
        return Target(other, debug_dirs=self.debug_dirs, runtime_method=self.runtime_method,
                      use_index=self.use_index)

    # -- output files -----------------------------------------------------------------------------
    def write_snapshot(self, path, *, force=False, redact=False, progress=None):
        """Write the heap as a Chrome DevTools .heapsnapshot, a private file (0600) made
        whole or not at all. Returns (nodes, edges); NsdebugError when the file cannot
        be written."""
        from ..heap.snapshot import write_snapshot
        from ..outfile import private_output
        g = self.heap
        objects = self.runtime.objects
        with private_output(path, force) as out:
            return write_snapshot(g, objects, out.f, progress, self.scattered_reads,
                                  redact=redact)

    def close(self):
        """Release the file; the models made from it go, and using them again is an
        NsdebugError."""
        self.closed = True
        for name in ("heap", "vector_memory", "native", "runtime"):
            self.__dict__.pop(name, None)
        try:
            self.process.close()
        except BufferError:
            pass    # arrays still viewing the mapped core; it is unmapped when they go


__all__ = ["Target", "open_target"]
