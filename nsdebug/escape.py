"""Text from a core made safe to print: valid UTF-8, no terminal control sequences.

Bytes read from a core are decoded with "surrogateescape" where they may not be UTF-8
(paths, names, C strings), and a Python str in the core may hold lone surrogates. Both
would make standard output invalid UTF-8 (or fail to encode), and control characters
from a hostile core could drive the terminal. So every string is passed through
`printable` on its way out: an undecodable byte becomes `\\xNN`, a lone surrogate
`\\udNNN`, a control character other than newline and tab `\\xNN`.
"""

from __future__ import annotations

from .once import once

UNSAFE_CLASS = "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]"


@once
def _unsafe():
    # Compiled on first need: most text is printable (str.isprintable is False for
    # every character of the class), and `re` costs a tenth of a `bt`.
    import re
    return re.compile(UNSAFE_CLASS)


def _escape(m):
    c = ord(m.group())
    if 0xDC80 <= c <= 0xDCFF:            # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{c - 0xDC00:02x}"
    if c >= 0xD800:
        return f"\\u{c:04x}"
    return f"\\x{c:02x}"


def is_printable(s: str) -> bool:
    return s.isprintable() or _unsafe().search(s) is None


def printable(s: str) -> str:
    if s.isprintable() or _unsafe().search(s) is None:
        return s
    return _unsafe().sub(_escape, s)


def printable_all(texts):
    """[printable(s) for s in texts], for many at once: the unsafe characters are looked
    for in the texts joined, and only the texts that hold one are rewritten."""
    from bisect import bisect_right
    from itertools import accumulate
    joined = "".join(texts)
    if joined.isprintable() or _unsafe().search(joined) is None:
        return texts
    ends = list(accumulate(len(s) for s in texts))
    out = list(texts)
    for k in {bisect_right(ends, m.start()) for m in _unsafe().finditer(joined)}:
        out[k] = printable(out[k])
    return out
