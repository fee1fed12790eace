"""Which CPython a core holds, found without running anything."""

from __future__ import annotations

from ..errors import FaultError, NsdebugError, PythonNotFoundError
from ..record import record

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
    """(major, minor, micro) from "3.X.Y (..." in the module's writable data, where
    Py_GetVersion builds sys.version at start-up, or in its read-only data. The writable
    data first: a fifth of the size, and where the string is (.rodata holds "3.X.Y" with
    no " (" after it): its 660 KB in libpython3.10 cost 2 ms of a 23 ms `bt --all` on
    3.8-3.10, which have no Py_Version."""
    regions = [(s.start, s.end) for s in process.data_regions(module)]
    sec = module.section_range(".rodata")
    if sec is not None:
        regions.append(sec)
    for start, end in regions:
        try:
            data = process.memory.read(start, min(end - start, MAX_SCAN))
        except (NsdebugError, ValueError):
            continue
        found = find_version(data)
        if found:
            return found
    return None


def find_version(data):
    """(3, minor, micro) of the first "3.X.Y (" in data, sys.version's head: X and Y
    of one or two digits, then optionally a pre-release or "+" tag (one of a, b, r, c,
    + and word characters after it), then " (". Else None. Searched
    with bytes.find, not `re`, whose import costs a tenth of a `bt`."""
    pos = data.find(b"3.")
    while pos >= 0:
        hit = _version_at(data, pos)
        if hit:
            return hit
        pos = data.find(b"3.", pos + 1)
    return None


def _version_at(data, pos):
    i = pos + 2
    minor, i = _digits(data, i)
    if minor is None or data[i:i + 1] != b".":
        return None
    micro, i = _digits(data, i + 1)
    if micro is None:
        return None
    if data[i:i + 1] in (b"a", b"b", b"r", b"c", b"+"):
        i += 1
        while i < len(data) and (chr(data[i]).isalnum() or data[i] == 0x5F):
            i += 1
    if data[i:i + 2] != b" (":
        return None
    return 3, minor, micro


def _digits(data, i):
    """(value of the 1 or 2 ASCII digits at i, position after them); (None, i) when
    there are none or more than two."""
    j = i
    while j < len(data) and 0x30 <= data[j] <= 0x39 and j - i < 3:
        j += 1
    if not 1 <= j - i <= 2:
        return None, i
    return int(bytes(data[i:j])), j
