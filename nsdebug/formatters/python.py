"""Text for the Python commands: tracebacks, frames, values, objects."""

from .base import formatter, table, tabular


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
    # What the C stack shows it doing (the GIL is in the marks already).
    doing = [p for p in (getattr(t, "state", None) or "").split("; ")
             if p and p != "holding the GIL"]
    if doing:
        head += " (" + "; ".join(doing) + ")"
    return head


def native_line(f, indent="  "):
    mark = "*" if f.selected else " "
    where = f"{f.function}+{f.offset:#x}" if f.function else \
        f"{f.module}+{f.offset:#x}" if f.module else f"{f.pc:#x}"
    guess = "  (a guess: no unwind information)" if f.how in ("frame pointer", "scan") \
        else "  <signal handler called>" if getattr(f, "signal", False) else ""
    lib = f" ({f.module})" if f.module and f.function else ""
    if getattr(f, "inlined", False):
        where = f"{f.function} (inlined)"
    src = f" at {f.file}:{f.line}" if getattr(f, "file", None) else ""
    return f"{indent}{mark}c{f.index:<2} {f.pc:#014x} in {where}{lib}{src}{guess}"


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
    if f.stack is not None:
        yield from stack_lines(f.stack, indent + "      ")


def stack_lines(rows, indent):
    """A frame's value stack, bottom first, each slot marked as stack_rows() says."""
    if not rows:
        yield f"{indent}value stack: empty"
        return
    yield f"{indent}value stack (bottom first):"
    for loc in rows:
        mark = "" if loc.kind == "stack" else f"  ({loc.kind.split('(', 1)[1]}"
        yield f"{indent}  {loc.name} {loc.type} = {loc.value}{mark}"


@formatter("nsdebug.model.stacks.BacktraceResult")
def format_bt(r):
    for n, t in enumerate(r.threads):
        if n:
            yield ""
        yield thread_heading(t)
        if t.native is not None:
            yield from native_listing(t)
            continue
        if not t.frames:
            yield "  (no Python frames)"
            continue
        yield "Traceback (most recent call last):"
        for f in t.frames:
            yield from frame_lines(f)
    for tid in r.native_only:
        yield ""
        yield f"Thread {tid}: no Python thread state (a native thread)"


def native_listing(t):
    if not t.native and not t.frames:
        yield "  (no frames: the registers point at no known code)"
        return
    yield "Traceback, C and Python (most recent call last):"
    if not t.merged and t.frames:
        yield "  (the C and Python stacks could not be merged: the C frames come first, "
        yield "   then the Python frames)"
    for row in t.native:
        if getattr(row, "kind", None) == "native":
            yield native_line(row)
        else:
            yield from frame_lines(row)
    if not t.merged:
        for f in t.frames:
            yield from frame_lines(f)


@formatter("nsdebug.commands.python.NativeSelectResult")
def format_native_select(r):
    yield native_line(r.frame, "")


@formatter("nsdebug.commands.python.RegistersResult")
def format_registers(r):
    where = f"native frame c{r.frame}" if r.frame else "the thread (as the core has them)"
    yield f"registers of {where}:"
    for name, value in r.registers:
        shown = f"{value:#018x}" if value is not None else "<not saved: unknown here>"
        yield f"  {name:<9} {shown}"


@formatter("nsdebug.commands.python.SelectResult")
def format_select(r):
    if r.frame is None:
        yield r.message
        return
    yield from frame_lines(r.frame, "")


@tabular("nsdebug.commands.python.LocalsResult")
def locals_table(r):
    f = r.frame
    return (f"frame #{f.index}: {f.function} ({f.file}:{f.line})",
            ["name", "kind", "type", "value"],
            [[loc.name, loc.kind, loc.type, loc.value] for loc in r.locals])


@formatter("nsdebug.commands.python.LocalsResult")
def format_locals(r):
    title, headers, rows = locals_table(r)
    yield title
    if not r.locals:
        yield "  (no locals)"
    else:
        for line in table(headers, rows):
            yield "  " + line
    if r.stack is not None:
        yield from stack_lines(r.stack, "  ")


@formatter("nsdebug.model.stacks.ListResult")
def format_list(r):
    if r.error:
        yield r.error
        return
    for i, text in enumerate(r.lines):
        n = r.first + i
        mark = "->" if n == r.line else "  "
        yield f"{n:>5} {mark} {text}"


@formatter("nsdebug.commands.python.ValueResult")
def format_value(r):
    yield f"{r.value}"
    yield f"  ({r.type} at {r.address:#x}, {r.where})"


@formatter("nsdebug.cpython.inspect.InspectResult")
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
    t = r.task
    if t is not None:
        yield f"  asyncio task {t.name!r}: {t.state}" + \
            (f", waits on {t.waits_on}" if t.waits_on else "") + \
            (f", result {t.result}" if t.result else "")
        yield f"  coroutine: {t.coroutine:#x}"
        for depth, f in enumerate(t.chain):
            yield f"    {'  ' * depth}awaits in {f.qualname or f.function} " \
                  f"({f.file}:{f.line})"
        for c in t.children:
            yield f"    gathers {c:#x}"
