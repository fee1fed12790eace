"""Native stacks of a core's threads: unwound, named, and placed in the source (file,
line, inlined calls) on first use. Knows nothing of Python: the merge with Python
frames and what a thread was doing are model/stacks.py's."""

from __future__ import annotations

from functools import cached_property

from .symbolize import Symbolizer


class NativeStacks:
    """Unwinds each core thread once, on first use."""

    def __init__(self, process, debug_dirs=(), use_cache=True):
        self.process = process
        self.symbolizer = Symbolizer(process, debug_dirs)
        self.use_cache = use_cache
        self._frames = {}

    @cached_property
    def unwinder(self):
        """The CFI unwinder: loaded when a native stack is asked for (naming a pc, as
        `threads` does, needs only the symbolizer)."""
        from .unwind import Unwinder
        return Unwinder(self.process, self.symbolizer)

    @cached_property
    def source(self):
        """The DWARF reader (file, line, inlined calls): loaded when a listing asks."""
        from .dwarf import SourceInfo
        from .dwarfcache import InflatedSections
        return SourceInfo(InflatedSections() if self.use_cache else None)

    def locate(self, frame, caller):
        """[(function, file, line, inlined)] innermost first for a native frame (the
        address of its call for a caller); [] where no DWARF describes the code."""
        m = self.process.module_at(frame.pc)
        if m is None:
            return []
        vaddr = frame.pc - (1 if caller else 0) - m.bias
        for f in (self.symbolizer.debug_file(m), m.file):
            found = self.source.locate(f, vaddr)
            if found:
                return found
        return []

    def frames(self, core_index):
        """Native frames of core thread `core_index`, innermost first."""
        if core_index not in self._frames:
            thread = self.process.threads[core_index]
            self._frames[core_index] = self.unwinder.unwind(thread)
        return self._frames[core_index]
