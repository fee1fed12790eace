"""Plain data -> text lines or JSON. The only place that turns results into words."""

from __future__ import annotations

from .escape import printable
from .formatters import formatter_of
from .record import as_data


def to_plain(obj):
    """A result as JSON-ready data (records become dicts, bytes become hex, text
    printable)."""
    return as_data(obj, printable)


def to_json(result):
    import json
    return json.dumps(to_plain(result), separators=(",", ":"), ensure_ascii=False)


def to_lines(result):
    """Text lines for a result; falls back to indented JSON for unknown types."""
    if result is None:
        return []
    if isinstance(result, str):
        return [printable(x) for x in result.splitlines()]
    fmt = formatter_of(type(result))
    if fmt is None:
        import json
        return json.dumps(to_plain(result), indent=2, ensure_ascii=False).splitlines()
    return [printable(x) for x in fmt(result)]
