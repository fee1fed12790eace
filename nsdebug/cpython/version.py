"""Which CPython a core holds, found without running anything."""

from __future__ import annotations

import re

from ..errors import FaultError, NsdebugError, PythonNotFoundError
from ..record import record

_LIB_RE = re.compile(r"^libpython(\d+)\.(\d+)")
_EXE_RE = re.compile(r"^python(\d+)\.(\d+)")
_VERSION_STR_RE = re.compile(rb"(3\.\d{1,2}\.\d{1,2})(?:[abrc+]\w*)? \(")


@record
class PythonVersion:
    major: int
    minor: int
    micro: int | None
    how: str

    @property
    def key(self):
        return self.major, self.minor

    def __str__(self):
        micro = "" if self.micro is None else f".{self.micro}"
        return f"{self.major}.{self.minor}{micro}"


def python_module(process):
    """The module holding the interpreter: libpython if mapped, else the executable."""
    lib = None
    for m in process.modules:
        if _LIB_RE.match(m.name):
            lib = m
            break
    if lib is not None:
        return lib
    exe = process.executable
    if exe is not None:
        return exe
    raise PythonNotFoundError("no libpython and no executable mapped in this core")


def from_hexversion(value, how):
    major, minor, micro = value >> 24 & 0xFF, value >> 16 & 0xFF, value >> 8 & 0xFF
    if major != 3 or not 0 <= minor < 40:
        return None
    return PythonVersion(major, minor, micro, how)


def detect_version(process, module, runtime_addr=None):
    """PythonVersion, trying: _Py_DebugOffsets, Py_Version, file name, strings in memory."""
    mem = process.memory
    if runtime_addr is not None:
        try:
            head = mem.read(runtime_addr, 16)
            if head[:8] == b"xdebugpy":
                v = from_hexversion(int.from_bytes(head[8:16], "little"), "_Py_DebugOffsets")
                if v:
                    return v
        except FaultError:
            pass
    if module.file is not None:
        hit = module.file.lookup("Py_Version", exported=True)
        if hit is not None:
            try:
                v = from_hexversion(mem.u32(hit[0] + module.bias), "Py_Version symbol")
                if v:
                    return v
            except FaultError:
                pass
    name_match = _LIB_RE.match(module.name) or _EXE_RE.match(module.name)
    micro = _micro_from_memory(process, module)
    if name_match:
        major, minor = int(name_match.group(1)), int(name_match.group(2))
        if micro and micro[:2] == (major, minor):
            return PythonVersion(major, minor, micro[2], "file name and version string")
        return PythonVersion(major, minor, None, "file name")
    if micro:
        return PythonVersion(*micro, "version string in memory")
    raise PythonNotFoundError(f"cannot tell the CPython version of {module.path}")


def _micro_from_memory(process, module):
    """(major, minor, micro) from the version string in the module's read-only data."""
    try:
        sec = module.section_range(".rodata")
        if sec is None:
            return None
        start, end = sec
        data = process.memory.read(start, min(end - start, 8 << 20))
    except (NsdebugError, ValueError):
        return None
    m = _VERSION_STR_RE.search(data)
    if not m:
        return None
    parts = m.group(1).decode().split(".")
    return int(parts[0]), int(parts[1]), int(parts[2])
