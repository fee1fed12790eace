"""Text for the Python commands: tracebacks, frames, values, objects."""

from ..commands import python_cmds as pc
from ..render import formatter, table


def thread_heading(t):
    head = f"Thread {t.tid if t.tid is not None else '?'}"
    if t.name:
        head += f' "{t.name}"'
    if t.interpreter:
        head += f" (interpreter {t.interpreter})"
    marks = []
    if t.holds_gil:
        marks.append("holds the GIL")
    if t.crashed:
        marks.append("CRASHED")
    if t.selected:
        marks.append("selected")
    if marks:
        head += " [" + ", ".join(marks) + "]"
    return head


def frame_lines(f, indent="  "):
    mark = "*" if f.selected else " "
    if f.error and f.line < 0 and f.function == "<unknown>":
        yield f"{indent}{mark}#{f.index:<2} <invalid frame {f.address:#x}: {f.error}>"
        return
    extra = []
    if f.owner == "generator":
        extra.append("generator")
    if f.entry:
        extra.append("called from C")
    suffix = f"  ({', '.join(extra)})" if extra else ""
    yield f'{indent}{mark}#{f.index:<2} File "{f.file}", line {f.line}, in {f.function}{suffix}'
    if f.source:
        yield f"{indent}      {f.source}"
    if f.locals:
        for loc in f.locals:
            yield f"{indent}        {loc.name} = {loc.value}"


@formatter(pc.BacktraceResult)
def format_bt(r):
    for n, t in enumerate(r.threads):
        if n:
            yield ""
        yield thread_heading(t)
        if not t.frames:
            yield "  (no Python frames)"
            continue
        yield "Traceback (most recent call last):"
        for f in t.frames:
            yield from frame_lines(f)
    for tid in r.native_only:
        yield ""
        yield f"Thread {tid}: no Python thread state (a native thread)"


@formatter(pc.SelectResult)
def format_select(r):
    if r.frame is None:
        yield r.message
        return
    yield from frame_lines(r.frame, "")


@formatter(pc.LocalsResult)
def format_locals(r):
    f = r.frame
    yield f"frame #{f.index}: {f.function} ({f.file}:{f.line})"
    if not r.locals:
        yield "  (no locals)"
    rows = [[loc.name, loc.kind, loc.type, loc.value] for loc in r.locals]
    for line in table(["name", "kind", "type", "value"], rows):
        yield "  " + line


@formatter(pc.ListResult)
def format_list(r):
    if r.error:
        yield r.error
        return
    for i, text in enumerate(r.lines):
        n = r.first + i
        mark = "->" if n == r.line else "  "
        yield f"{n:>5} {mark} {text}"


@formatter(pc.ValueResult)
def format_value(r):
    yield f"{r.value}"
    yield f"  ({r.type} at {r.address:#x}, {r.where})"


@formatter(pc.InspectResult)
def format_inspect(r):
    yield f"{r.address:#x}: {r.preview}"
    yield f"  type:     {r.type} (at {r.type_address:#x})"
    yield f"  refcount: {r.refcount}"
    if r.size is not None:
        yield f"  size:     {r.size} bytes"
    if r.error:
        yield f"  error:    {r.error}"
    if r.fields:
        width = min(max(len(str(n)) for n, _ in r.fields), 30)
        for name, value in r.fields:
            yield f"  {str(name):<{width}} = {value}"
