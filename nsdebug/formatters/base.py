"""What every formatter module uses: the registry of result type -> lines, the registry
of results the shell shows as tables, and the padded text table.

Result types are named by their dotted path ("nsdebug.heap.waste.WasteResult"), not
imported: rendering the text of a `bt` must not import the heap's modules (numpy)
only to register how heap results read. tests/unit/test_render.py checks that
every name is a record class that exists.
"""

from __future__ import annotations

FORMATTERS = {}      # result type's dotted name -> f(result) yielding text lines
TABLES = {}          # result type's dotted name -> f(result): (title or None, headers, rows)


def type_key(result_type):
    """The registry key of a result type: its dotted name."""
    return f"{result_type.__module__}.{result_type.__qualname__}"


def formatter(name):
    """Register f(result) -> lines as the text of the result type named `name`."""
    def deco(func):
        FORMATTERS[name] = func
        return func
    return deco


def tabular(name):
    """Register f(result) -> (title or None, headers, rows) as the table the shell draws
    for the result type named `name` (its text formatter draws the same with table())."""
    def deco(func):
        TABLES[name] = func
        return func
    return deco


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
