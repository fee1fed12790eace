"""Lines of the source files a core's frames name, read from this machine.

linecache does this for tracebacks, but importing it pulls in tokenize and `re`, a
tenth of a `bt`'s time; a source file needs only its encoding (PEP 263: a UTF-8 BOM,
or a coding cookie on one of the first two lines, else UTF-8) to be split in lines."""

from __future__ import annotations

import os

_CACHE: dict = {}          # path -> (size, mtime, [lines]) of files read so far
MAX_SOURCE = 64 << 20      # a larger "source file" is not one


def getline(path, lineno):
    """Line `lineno` (1-based) of `path` with its newline, "" when there is none."""
    lines = _lines(path)
    return lines[lineno - 1] if 1 <= lineno <= len(lines) else ""


def _lines(path):
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return []
    hit = _CACHE.get(path)
    if hit is not None and hit[:2] == (st.st_size, st.st_mtime_ns):
        return hit[2]
    if st.st_size > MAX_SOURCE:
        return []
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    text = data.decode(_encoding(data), errors="replace")
    # As a file read in text mode splits: universal newlines, each line ending in "\n".
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [x + "\n" for x in lines[:-1]] + ([lines[-1] + "\n"] if lines[-1] else [])
    _CACHE[path] = (st.st_size, st.st_mtime_ns, lines)
    return lines


def _encoding(data):
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    for line in data.split(b"\n", 2)[:2]:
        name = _cookie(line)
        if name:
            try:
                return __import__("codecs").lookup(name).name
            except LookupError:
                return "utf-8"
        if not line.lstrip().startswith(b"#") and line.strip():
            break                     # the cookie may follow only a comment line
    return "utf-8"


def _cookie(line):
    """The encoding a `# -*- coding: NAME -*-` comment line names, else None."""
    text = line.decode("latin-1").strip()
    if not text.startswith("#"):
        return None
    for mark in ("coding:", "coding="):
        at = text.find(mark)
        if at >= 0:
            rest = text[at + len(mark):].lstrip(" \t")
            name = rest[:len(rest) - len(rest.lstrip(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."))]
            return name or None
    return None
