"""Text for the heap commands."""

from ..commands import heap_cmds as hc
from ..render import formatter, human_size, table


@formatter(hc.ObjectsResult)
def format_objects(r):
    yield (f"{r.total_objects:,} objects, {human_size(r.total_size)}; "
           f"{r.unreachable_objects:,} unreachable (held only by C code, or garbage)")
    rows = [[t.count, human_size(t.size), human_size(t.retained), t.unreachable or "", t.type]
            for t in r.rows]
    yield from table(["count", "size", "retained", "unreach.", "type"], rows, "rrrrl")
    if r.invalid or r.damaged:
        yield f"{r.invalid} invalid objects; damaged objects (first {len(r.damaged)}):"
        for addr, typ, why in r.damaged:
            yield f"  {addr:#x} {typ}: {why}"
    for w in r.warnings:
        yield f"warning: {w}"


def _instance_rows(rows):
    return table(["address", "size", "retained", "", "preview"],
                 [[f"{x.address:#x}", x.size, x.retained,
                   "" if x.reachable else "unreachable", x.preview] for x in rows], "lrrll")


@formatter(hc.InstancesResult)
def format_instances(r):
    yield f"{r.count:,} objects of type {r.type}" + \
        (f" (first {len(r.rows)})" if len(r.rows) < r.count else "")
    yield from _instance_rows(r.rows)


@formatter(hc.RefsResult)
def format_refs(r):
    yield f"{len(r.referrers)} references to {r.type} at {r.address:#x}:"
    for x in r.referrers:
        if x.address is None:
            yield f"  {x.type} {x.how}"
        elif x.owner:
            yield f"  {x.owner}{x.how}   (via its __dict__ at {x.address:#x})"
        else:
            yield f"  {x.type} at {x.address:#x} {x.how}"


@formatter(hc.PathResult)
def format_path(r):
    if r.path is None:
        yield f"{r.type} at {r.address:#x} is not connected to any root"
        return
    prefix = "" if r.reachable else "(unreachable) "
    yield prefix + r.path


@formatter(hc.RetainedResult)
def format_retained(r):
    yield (f"{r.type} at {r.address:#x}: own {human_size(r.size)}, "
           f"retained {human_size(r.retained)} ({r.retained:,} bytes)")
    if r.dominated:
        yield "largest objects it keeps alive alone:"
        yield from _instance_rows(r.dominated)


@formatter(hc.StringsResult)
def format_strings(r):
    yield f"{len(r.matches)} strings containing {r.pattern!r}" + \
        (" (more not shown)" if r.truncated else "")
    yield from _instance_rows(r.matches)


@formatter(hc.LargestResult)
def format_largest(r):
    yield "by own size:"
    yield from _instance_rows(r.by_size)
    yield ""
    yield "by retained size:"
    yield from _instance_rows(r.by_retained)


@formatter(hc.SnapshotResult)
def format_snapshot(r):
    yield (f"wrote {r.path}: {r.nodes:,} nodes, {r.edges:,} edges, {human_size(r.bytes)} "
           f"in {r.seconds:.1f} s; open it in Chrome DevTools > Memory > Load")


@formatter(hc.TasksResult)
def format_tasks(r):
    from ..heap.tasks import short_file
    loops = f" in {len(r.loops)} event loop{'s' if len(r.loops) != 1 else ''}" if r.loops \
        else ""
    yield f"{len(r.tasks)} task{'s' if len(r.tasks) != 1 else ''}{loops}"
    for t in r.tasks:
        head = f"Task {t.name!r} {t.state}"
        if t.waits_on:
            head += f", waits on {t.waits_on}"
        if t.result:
            head += f", result {t.result}"
        yield f"{head}  ({t.type} at {t.address:#x})"
        for depth, f in enumerate(t.chain):
            yield f"  {'  ' * depth}{f.qualname or f.function} ({short_file(f.file)}:{f.line})"
            for name, _addr, _type, value in f.locals or []:
                yield f"  {'  ' * depth}    {name} = {value}"

