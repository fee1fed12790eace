"""Text from a core made safe to print: valid UTF-8, no terminal control sequences.

Bytes read from a core are decoded with "surrogateescape" where they may not be UTF-8
(paths, names, C strings), and a Python str in the core may hold lone surrogates. Both
would make standard output invalid UTF-8 (or fail to encode), and control characters
from a hostile core could drive the terminal. So every string is passed through
`printable` on its way out: an undecodable byte becomes `\\xNN`, a lone surrogate
`\\udNNN`, a control character other than newline and tab `\\xNN`.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(m):
    c = ord(m.group())
    if 0xDC80 <= c <= 0xDCFF:            # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{c - 0xDC00:02x}"
    if c >= 0xD800:
        return f"\\u{c:04x}"
    return f"\\x{c:02x}"


def is_printable(s: str) -> bool:
    return _UNSAFE.search(s) is None


def printable(s: str) -> str:
    if _UNSAFE.search(s) is None:
        return s
    return _UNSAFE.sub(_escape, s)


def printable_all(texts):
    """[printable(s) for s in texts], for many at once: the unsafe characters are looked
    for in the texts joined, and only the texts that hold one are rewritten."""
    from bisect import bisect_right
    from itertools import accumulate
    joined = "".join(texts)
    if _UNSAFE.search(joined) is None:
        return texts
    ends = list(accumulate(len(s) for s in texts))
    out = list(texts)
    for k in {bisect_right(ends, m.start()) for m in _UNSAFE.finditer(joined)}:
        out[k] = printable(out[k])
    return out
