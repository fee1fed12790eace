"""Which CPython a core holds, found without running anything."""

from __future__ import annotations

import re

from ..errors import FaultError, NsdebugError, PythonNotFoundError
from ..record import record

# The ABI tag's "t" marks a free-threaded build (PEP 703): libpython3.14t.so, python3.14t.
_LIB_RE = re.compile(r"^libpython(\d+)\.(\d+)(t?)")
_EXE_RE = re.compile(r"^python(\d+)\.(\d+)(t?)(?:$|[^\w.])")
_VERSION_STR_RE = re.compile(rb"(3\.\d{1,2}\.\d{1,2})(?:[abrc+]\w*)? \(")
MAX_SCAN = 8 << 20


@record
class PythonVersion:
    major: int
    minor: int
    micro: int | None
    how: str
    free_threaded: bool = False

    @property
    def key(self):
        return self.major, self.minor

    @property
    def full(self):
        return (self.major, self.minor, self.micro) if self.micro is not None else None

    def __str__(self):
        micro = "" if self.micro is None else f".{self.micro}"
        return f"{self.major}.{self.minor}{micro}" + ("t" if self.free_threaded else "")


def python_module(process):
    """The module holding the interpreter: libpython if mapped, else the executable."""
    for m in process.modules:
        if _LIB_RE.match(m.name):
            return m
    exe = process.executable
    if exe is not None:
        return exe
    raise PythonNotFoundError("no libpython and no executable mapped in this core")


def from_hexversion(value, how):
    major, minor, micro = value >> 24 & 0xFF, value >> 16 & 0xFF, value >> 8 & 0xFF
    if major != 3 or not 0 <= minor < 40:
        return None
    return PythonVersion(major, minor, micro, how)


def detect_version(process, module):
    """PythonVersion from what the binary and memory say, strongest first: Py_Version
    (3.11+), the version string (sys.version, in read-only data or, built at start-up,
    in the module's .bss), the file name. The process's own _Py_DebugOffsets, once
    _PyRuntime is found, is checked against this (runtime.py)."""
    name_match = _LIB_RE.match(module.name) or _EXE_RE.match(module.name)
    free_threaded = bool(name_match and name_match.group(3))
    found = None
    if module.file is not None:
        hit = module.file.lookup("Py_Version", exported=True)
        if hit is not None:
            try:
                found = from_hexversion(process.memory.u32(hit[0] + module.bias),
                                        "Py_Version symbol")
            except FaultError:
                pass
    if found is None:
        micro = _version_string(process, module)
        if micro and (not name_match or micro[:2] == (int(name_match.group(1)),
                                                      int(name_match.group(2)))):
            found = PythonVersion(*micro, "version string in memory")
    if found is None and name_match:
        found = PythonVersion(int(name_match.group(1)), int(name_match.group(2)), None,
                              "file name")
    if found is None:
        raise PythonNotFoundError(f"cannot tell the CPython version of {module.path}")
    found.free_threaded = free_threaded
    return found


def _version_string(process, module):
    """(major, minor, micro) from "3.X.Y (..." in the module's read-only data, or in its
    writable data, where Py_GetVersion builds sys.version at start-up."""
    regions = []
    sec = module.section_range(".rodata")
    if sec is not None:
        regions.append(sec)
    regions += [(s.start, s.end) for s in process.data_regions(module)]
    for start, end in regions:
        try:
            data = process.memory.read(start, min(end - start, MAX_SCAN))
        except (NsdebugError, ValueError):
            continue
        m = _VERSION_STR_RE.search(data)
        if m:
            parts = m.group(1).decode().split(".")
            return int(parts[0]), int(parts[1]), int(parts[2])
    return None
