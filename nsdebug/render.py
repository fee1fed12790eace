"""Plain data -> text lines or JSON. The only place that turns results into words."""

from __future__ import annotations

import json

from .escape import printable
from .record import fields_of, is_record
from .units import human_size  # noqa: F401 - the formatters' import of it

FORMATTERS = {}


def formatter(result_type):
    def deco(func):
        FORMATTERS[result_type] = func
        return func
    return deco


def to_plain(obj):
    """A result as JSON-ready data (records become dicts, bytes become hex, text
    printable)."""
    if isinstance(obj, str):
        return printable(obj)
    if is_record(obj):
        return {name: to_plain(getattr(obj, name)) for name in fields_of(obj)}
    if isinstance(obj, dict):
        return {printable(str(k)): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return obj.hex()
    return obj


def to_json(result):
    return json.dumps(to_plain(result), separators=(",", ":"), ensure_ascii=False)


def to_lines(result):
    """Text lines for a result; falls back to indented JSON for unknown types."""
    if result is None:
        return []
    if isinstance(result, str):
        return [printable(x) for x in result.splitlines()]
    fmt = FORMATTERS.get(type(result))
    if fmt is None:
        return json.dumps(to_plain(result), indent=2, ensure_ascii=False).splitlines()
    return [printable(x) for x in fmt(result)]


def hexaddr(a):
    return "-" if a is None else f"{a:#x}"


def table(headers, rows, align=None):
    """Columns padded to fit; `align` is a string of 'l'/'r' per column."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    align = align or "l" * len(headers)

    def line(cells):
        out = []
        for i, c in enumerate(cells):
            last = i == len(cells) - 1
            if align[i] == "r":
                out.append(c.rjust(widths[i]))
            else:
                out.append(c if last else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    yield line(headers)
    for r in rows:
        yield line(r)




def _load_formatters():
    # Each formatter module registers itself on import.
    from .formatters import heap, native, python  # noqa: F401


_load_formatters()
