"""Names for code addresses: the module's own symbol tables, then a separate debug file
(by build-id under /usr/lib/debug/.build-id and --debug-dir, or by .gnu_debuglink), then
MiniDebugInfo (.gnu_debugdata: an xz-compressed ELF holding a .symtab)."""

from __future__ import annotations

import os
import struct

from ..corefile.symbols import ElfFile
from ..errors import NsdebugError

DEFAULT_DEBUG_DIRS = ("/usr/lib/debug",)


class BytesSource:
    """A byte source over bytes in memory (the decompressed MiniDebugInfo)."""

    def __init__(self, data, path):
        self.data, self.size, self.path = data, len(data), path

    def read(self, offset, size):
        if offset < 0 or size < 0:
            return b""
        return self.data[offset:offset + size]

    def close(self):
        pass


class DebugFiles:
    """For each module: the debug file that matches it (ElfFile), looked up once."""

    def __init__(self, debug_dirs=()):
        self.dirs = list(debug_dirs) + [d for d in DEFAULT_DEBUG_DIRS if d not in debug_dirs]
        self._found = {}

    def for_module(self, module):
        key = module.path
        if key not in self._found:
            self._found[key] = self._find(module)
        return self._found[key]

    def _find(self, module):
        f = module.file
        bid = module.core_build_id or (f.build_id if f is not None else None)
        candidates = []
        if bid and len(bid) > 2:
            for d in self.dirs:
                candidates.append(os.path.join(d, ".build-id", bid[:2], bid[2:] + ".debug"))
        link = _debuglink(f) if f is not None else None
        if link:
            where = os.path.dirname(module.disk_path or module.path)
            candidates += [os.path.join(where, link), os.path.join(where, ".debug", link)]
            candidates += [os.path.join(d, where.lstrip("/"), link) for d in self.dirs]
            candidates += [os.path.join(d, link) for d in self.dirs]
        for path in candidates:
            if path == module.disk_path or not os.path.isfile(path):
                continue
            try:
                dbg = ElfFile(path)
            except NsdebugError:
                continue
            if bid and dbg.build_id and dbg.build_id != bid:
                continue
            return dbg
        return None


def _section_data(f, name):
    """The bytes of section `name` of ELF file `f`, or None."""
    try:
        sec = f.section(name)
    except NsdebugError:
        return None
    if sec is None or not sec.sh_size:
        return None
    return f.source.read(sec.sh_offset, sec.sh_size)


def _debuglink(f):
    data = _section_data(f, ".gnu_debuglink")
    name = data.split(b"\0", 1)[0] if data else None
    return name.decode("utf-8", "surrogateescape") if name else None


def minidebuginfo(f):
    """The ElfFile inside .gnu_debugdata, or None."""
    data = _section_data(f, ".gnu_debugdata")
    if data is None:
        return None
    import lzma
    try:
        raw = lzma.decompress(data)
    except (lzma.LZMAError, EOFError):
        return None
    try:
        return ElfFile(f.path + "[.gnu_debugdata]", BytesSource(raw, f.path))
    except NsdebugError:
        return None


class Symbolizer:
    """addr -> (function name or None, offset, module) for a process's code."""

    def __init__(self, process, debug_dirs=()):
        self.process = process
        self.debug = DebugFiles(debug_dirs)
        self._extra = {}

    def _tables(self, module):
        """The ElfFiles whose symbols name this module's code, best first."""
        if module.path not in self._extra:
            tables = []
            dbg = self.debug.for_module(module)
            if dbg is not None:
                tables.append(dbg)
            if module.file is not None:
                tables.append(module.file)
                mini = minidebuginfo(module.file)
                if mini is not None:
                    tables.append(mini)
            self._extra[module.path] = tables
        return self._extra[module.path]

    def debug_file(self, module):
        return self.debug.for_module(module)

    def symbolize(self, addr):
        m = self.process.module_at(addr)
        if m is None:
            return None, 0, None
        for f in self._tables(m):
            try:
                hit = f.symbolize(addr - m.bias)
            except (NsdebugError, struct.error):
                hit = None
            # Only a symbol that covers the address names it: in a stripped binary the
            # nearest exported symbol before a static function is not its name.
            # (ElfFile.symbolize checks a sized symbol's extent; one without a size
            # is taken only close to its start.)
            if hit is not None and (hit[2] or hit[1] < 0x1000):
                return hit[0], hit[1], m
        return None, addr - m.start, m
