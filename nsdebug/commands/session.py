"""Session: the open core and what the user selected; commands read and change it."""

from __future__ import annotations

import re
from functools import cached_property

from ..errors import CommandError, NsdebugError
from ..record import Factory, record


@record
class Options:
    """Bounds for value previews and walks, settable from the command line."""
    max_depth: int = 2
    max_items: int = 10
    max_string: int = 80
    max_frames: int = 4096
    redact: bool = False       # previews hide values under secret-looking keys (report)


@record
class Session:
    process: object
    options: Options = Factory(Options)
    thread_index: int = 0
    frame_index: int = 0       # 0 = innermost Python frame of the selected thread
    interrupted: object = None  # callable returning True when the user pressed Ctrl-C
    runtime_method: str | None = None   # force one way of finding _PyRuntime
    use_index: bool = True               # read and write caches: the heap index and
                                         # inflated debug sections (--no-cache)
    warnings_shown: int = 0
    notes: list = Factory(list)          # the session's own warnings (heap index...)
    notes_shown: int = 0
    debug_dirs: list = Factory(list)     # where separate debug files are looked up
    native_index: int | None = None      # the selected native frame (frame cN)

    def new_warnings(self):
        """Warnings not yet shown, of the runtime model and of the session (the CLI and
        shell print them once); the process's are shown at open."""
        out = self.notes[self.notes_shown:]
        self.notes_shown = len(self.notes)
        rt = self.__dict__.get("runtime")
        if rt is not None:
            out += rt.warnings[self.warnings_shown:]
            self.warnings_shown = len(rt.warnings)
        return out

    def __post_init__(self):
        crashed = self.process.crashed_thread
        if crashed is not None:
            self.thread_index = crashed.index

    @property
    def thread(self):
        return self.process.threads[self.thread_index]

    @cached_property
    def runtime(self):
        """The CPython runtime model, attached on first use."""
        from ..cpython import attach
        return attach(self.process, self.runtime_method)

    @cached_property
    def heap(self):
        """The heap graph: mapped from the core's heap index when there is a valid one,
        else walked (a progress bar on a terminal) and its index written."""
        from ..heap import build_heap, index
        from ..progress import progress_reporter
        rt = self.runtime
        if not rt.layout.complete:
            raise CommandError(f"the heap of this core cannot be read: {rt.layout.missing}")
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
        with progress_reporter("walking the heap", "objects") as report:
            g = build_heap(rt, report)
        if identity is not None:
            try:
                index.save(g, self.process.path, identity)
            except OSError as e:
                self.notes.append(f"heap index not written ({e}); the next command walks "
                                  f"the heap again")
        return g

    def open_other(self, path):
        """A session on another core of the same program, looked up the same way."""
        import os

        from ..corefile import open_core
        r = self.process.resolver
        other = open_core(path, None, r.sysroot, r.lib_path)
        if os.path.realpath(other.path) == os.path.realpath(self.process.path):
            raise CommandError(f"{path} is the core already open")
        return Session(other, self.options, runtime_method=self.runtime_method,
                       debug_dirs=self.debug_dirs,
                       use_index=self.use_index)

    @cached_property
    def native(self):
        """Native stacks of the core's threads, unwound on first use per thread."""
        from ..native.stacks import NativeStacks
        return NativeStacks(self.process, self.debug_dirs, use_cache=self.use_index)

    @property
    def native_frame(self):
        """The selected native frame (frame cN), or None for the thread's own registers."""
        if self.native_index is None:
            return None
        frames = self.native.frames(self.thread_index)
        return frames[self.native_index] if self.native_index < len(frames) else None

    def frame_registers(self):
        """Registers by name in the selected native frame (None where the unwinder could
        not recover them), else the thread's as the core recorded them."""
        f = self.native_frame
        if f is None or self.native_index == 0:
            return dict(self.thread.regs)
        from ..native.unwind import DWARF_REGS
        return {name: f.regs.get(i) for i, name in enumerate(DWARF_REGS)}

    @cached_property
    def vector_memory(self):
        """The core mapped for reads at many addresses at once (heap walks, snapshots)."""
        from ..corefile.vector import VectorMemory
        return VectorMemory(self.process)

    def select_thread(self, tid):
        for t in self.process.threads:
            if t.tid == tid or (tid < len(self.process.threads) and t.index == tid and
                                not any(x.tid == tid for x in self.process.threads)):
                self.thread_index = t.index
                self.frame_index = 0
                self.native_index = None
                return t
        raise CommandError(f"no thread {tid} (see 'threads')")

    # Addresses as users type them: 0x7f.., 1234, symbol, symbol+0x10, $rip, @id.
    _ADDR = re.compile(r"^\s*(?P<base>[^+\-\s]+)\s*(?:(?P<op>[+\-])\s*(?P<off>\S+))?\s*$")

    def parse_address(self, text):
        m = self._ADDR.match(text)
        if not m:
            raise CommandError(f"not an address: {text!r}")
        base = self._address_term(m.group("base"))
        if m.group("op"):
            off = self._number(m.group("off"))
            if off is None:
                raise CommandError(f"not an offset: {m.group('off')!r}")
            base = base + off if m.group("op") == "+" else base - off
        if not 0 <= base < 1 << 64:
            raise CommandError(f"address out of range: {text!r}")
        return base

    @staticmethod
    def _number(text):
        try:
            return int(text, 0)
        except ValueError:
            try:
                return int(text, 16) if re.fullmatch(r"[0-9a-fA-F]+", text) else None
            except ValueError:
                return None

    def _address_term(self, term):
        if term.startswith("@"):
            # A node id from a .heapsnapshot: resolved through the heap graph.
            n = self._number(term[1:])
            if n is None:
                raise CommandError(f"not a snapshot id: {term!r}")
            i = self.heap.index_of_snapshot_id(n)
            if i is None or i < self.heap.n_synth:
                raise CommandError(f"no object has snapshot id {n}")
            return int(self.heap.addr[i])
        if term.startswith("$"):
            reg = term[1:].lower()
            reg = {"pc": "rip", "sp": "rsp", "fp": "rbp"}.get(reg, reg)
            regs = self.frame_registers()
            if reg not in regs:
                raise CommandError(f"no register {term}")
            if regs[reg] is None:
                raise CommandError(f"{term} is not known in the selected native frame")
            return regs[reg]
        n = self._number(term)
        if n is not None:
            return n
        try:
            return self.process.symbol_address(term)
        except NsdebugError:
            raise CommandError(f"not an address or known symbol: {term!r}") from None
