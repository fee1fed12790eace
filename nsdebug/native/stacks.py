"""Native stacks of a core's threads: unwound, named, and placed in the source (file,
line, inlined calls) on first use. Knows nothing of Python: the merge with Python
frames and what a thread was doing are model/stacks.py's."""

from __future__ import annotations

import os
import zlib

from ..once import cached_property
from .symbolize import Symbolizer


def _stamp(elf_file):
    """(path, size, mtime, inode) of a file on disk; () for none; None for a file that
    is not on disk (a capture's extract), whose places are not kept."""
    if elf_file is None:
        return ()
    if not hasattr(elf_file.source, "view"):
        return None
    try:
        st = os.stat(elf_file.path)
    except OSError:
        return None
    return (elf_file.path, st.st_size, st.st_mtime_ns, st.st_ino)


class NativeStacks:
    """Unwinds each core thread once, on first use."""

    def __init__(self, process, debug_dirs=(), use_cache=True):
        self.process = process
        self.symbolizer = Symbolizer(process, debug_dirs)
        self.use_cache = use_cache
        self._frames = {}
        self._keys = {}                  # (module path, kind) -> its table's name

    @cached_property
    def unwinder(self):
        """The CFI unwinder: loaded when a native stack is asked for (naming a pc, as
        `threads` does, needs only the symbolizer)."""
        from .unwind import Unwinder
        return Unwinder(self.process, self.symbolizer, self._row_memo)

    @cached_property
    def source(self):
        """The DWARF reader (file, line, inlined calls): loaded when a listing asks."""
        from .dwarf import SourceInfo
        from .dwarfcache import InflatedSections
        return SourceInfo(InflatedSections() if self.use_cache else None)

    @cached_property
    def places(self):
        """Places found in earlier runs (placecache.py); None with the caches off."""
        if not self.use_cache:
            return None
        from .placecache import PlaceCache
        return PlaceCache()

    def locate(self, frame, caller):
        """[(function, file, line, inlined)] innermost first for a native frame (the
        address of its call for a caller); [] where no DWARF describes the code."""
        m = self.process.module_at(frame.pc)
        if m is None:
            return []
        vaddr = frame.pc - (1 if caller else 0) - m.bias
        debug = self.symbolizer.debug_file(m)
        key = self._place_key(m, debug)
        if key is not None:
            kept = self.places.get(key, vaddr)
            if kept is not None:
                return kept
        found = []
        for f in (debug, m.file):
            found = self.source.locate(f, vaddr)
            if found:
                break
        if key is not None:
            self.places.put(key, vaddr, found)
        return found

    def _row_memo(self, module):
        """(get(pc), put(pc, row)) over the call-frame rows kept for a module (read
        from its file and debug file), None when they cannot be kept."""
        if self.places is None:
            return None
        key = self._place_key(module, self.symbolizer.debug_file(module), "rows")
        if key is None:
            return None
        places = self.places
        return (lambda pc: places.get(key, pc)), (lambda pc, row: places.put(key, pc, row))

    def _place_key(self, module, debug, kind="places"):
        """The place table of a module as read with this debug file, None when either
        cannot be named by a build-id (or the caches are off)."""
        if self.places is None:
            return None
        if (module.path, kind) not in self._keys:
            self._keys[(module.path, kind)] = self._new_key(module, debug, kind)
        return self._keys[(module.path, kind)]

    def _new_key(self, module, debug, kind):
        file_id = module.core_build_id or (module.file.build_id if module.file else None)
        if not file_id:
            return None
        # The files read are named by their build-id and by where and what they are on
        # this disk: a damaged or stripped copy carrying the same build-id gives other
        # places, and must not meet the table of the healthy file.
        stamps = [_stamp(f) for f in (module.file, debug)]
        if None in stamps:
            return None
        return self.places.key(file_id, f"{zlib.crc32(repr(stamps).encode()):08x}", kind)

    def save(self):
        """Keep the places found this run for the next (nothing with the caches off)."""
        if self.use_cache and "places" in self.__dict__:
            self.places.save()

    def frames(self, core_index):
        """Native frames of core thread `core_index`, innermost first."""
        if core_index not in self._frames:
            thread = self.process.threads[core_index]
            self._frames[core_index] = self.unwinder.unwind(thread)
        return self._frames[core_index]
