"""Which CPython a core holds, found without running anything."""

from __future__ import annotations

from ..errors import FaultError, NsdebugError, PythonNotFoundError
from ..record import record

# sys.version's head: "3.X.Y" with an optional pre-release or "+" tag, then " (".
VERSION_STR = rb"(3\.\d{1,2}\.\d{1,2})(?:[abrc+]\w*)? \("
MAX_SCAN = 8 << 20


def name_version(name):
    """(major, minor, free-threaded) a file name gives, or None: libpythonX.Y[t]...
    and pythonX.Y[t] (ending there or before a character that is neither a word
    character nor a dot). The ABI tag's "t" marks a free-threaded build (PEP 703)."""
    if name.startswith("libpython"):
        rest, exe = name[9:], False
    elif name.startswith("python"):
        rest, exe = name[6:], True
    else:
        return None
    major, dot, rest = rest.partition(".")
    minor = rest[:len(rest) - len(rest.lstrip("0123456789"))]
    if not (dot and major.isdigit() and major.isascii() and minor):
        return None
    rest = rest[len(minor):]
    threaded = rest.startswith("t")
    rest = rest[1:] if threaded else rest
    if exe and rest and (rest[0].isalnum() or rest[0] in "_."):
        return None
    return int(major), int(minor), threaded


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
        if m.name.startswith("libpython") and name_version(m.name):
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
    name_match = name_version(module.name)
    free_threaded = bool(name_match and name_match[2])
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
        if micro and (not name_match or micro[:2] == name_match[:2]):
            found = PythonVersion(*micro, "version string in memory")
    if found is None and name_match:
        found = PythonVersion(name_match[0], name_match[1], None, "file name")
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
    import re
    pattern = re.compile(VERSION_STR)
    for start, end in regions:
        try:
            data = process.memory.read(start, min(end - start, MAX_SCAN))
        except (NsdebugError, ValueError):
            continue
        m = pattern.search(data)
        if m:
            parts = m.group(1).decode().split(".")
            return int(parts[0]), int(parts[1]), int(parts[2])
    return None
