"""Text for the heap commands."""

import os

from ..units import human_size
from .base import formatter, table, tabular


@tabular("nsdebug.heap.stats.ObjectsResult")
def objects_table(r):
    return (f"{r.total_objects:,} objects, {human_size(r.total_size)}; "
            f"{r.unreachable_objects:,} unreachable (held only by C code, or garbage)",
            ["count", "size", "retained", "unreach.", "type"],
            [[t.count, human_size(t.size), human_size(t.retained), t.unreachable or "",
              t.type] for t in r.rows])


@formatter("nsdebug.heap.stats.ObjectsResult")
def format_objects(r):
    title, headers, rows = objects_table(r)
    yield title
    yield from table(headers, rows, "rrrrl")
    if r.invalid or r.damaged:
        yield f"{r.invalid} invalid objects; damaged objects (first {len(r.damaged)}):"
        for addr, typ, why in r.damaged:
            yield f"  {addr:#x} {typ}: {why}"
    for w in r.warnings:
        yield f"warning: {w}"


INSTANCE_HEADERS = ["address", "size", "retained", "", "preview"]


def _instance_cells(rows):
    return [[f"{x.address:#x}", x.size, x.retained, "" if x.reachable else "unreachable",
             x.preview] for x in rows]


def _instance_rows(rows):
    return table(INSTANCE_HEADERS, _instance_cells(rows), "lrrll")


@tabular("nsdebug.commands.heap.InstancesResult")
def instances_table(r):
    return (f"{r.count:,} objects of type {r.type}" +
            (f" (first {len(r.rows)})" if len(r.rows) < r.count else ""),
            INSTANCE_HEADERS, _instance_cells(r.rows))


@formatter("nsdebug.commands.heap.InstancesResult")
def format_instances(r):
    title, headers, rows = instances_table(r)
    yield title
    yield from table(headers, rows, "lrrll")


@formatter("nsdebug.commands.heap.RefsResult")
def format_refs(r):
    yield f"{len(r.referrers)} references to {r.type} at {r.address:#x}:"
    for x in r.referrers:
        if x.address is None:
            yield f"  {x.type} {x.how}"
        elif x.owner:
            yield f"  {x.owner}{x.how}   (via its __dict__ at {x.address:#x})"
        else:
            yield f"  {x.type} at {x.address:#x} {x.how}"


@formatter("nsdebug.commands.heap.PathResult")
def format_path(r):
    if r.path is None:
        yield f"{r.type} at {r.address:#x} is not connected to any root"
        return
    prefix = "" if r.reachable else "(unreachable) "
    yield prefix + r.path


@formatter("nsdebug.commands.heap.RetainedResult")
def format_retained(r):
    yield (f"{r.type} at {r.address:#x}: own {human_size(r.size)}, "
           f"retained {human_size(r.retained)} ({r.retained:,} bytes)")
    if r.dominated:
        yield "largest objects it keeps alive alone:"
        yield from _instance_rows(r.dominated)


@formatter("nsdebug.commands.heap.StringsResult")
def format_strings(r):
    yield f"{len(r.matches)} strings containing {r.pattern!r}" + \
        (" (more not shown)" if r.truncated else "")
    yield from _instance_rows(r.matches)


@formatter("nsdebug.commands.heap.LargestResult")
def format_largest(r):
    yield "by own size:"
    yield from _instance_rows(r.by_size)
    yield ""
    yield "by retained size:"
    yield from _instance_rows(r.by_retained)


@formatter("nsdebug.commands.heap.SnapshotResult")
def format_snapshot(r):
    yield (f"wrote {r.path}: {r.nodes:,} nodes, {r.edges:,} edges, {human_size(r.bytes)} "
           f"in {r.seconds:.1f} s; open it in Chrome DevTools > Memory > Load")


@formatter("nsdebug.heap.tasks.TasksResult")
def format_tasks(r):
    loops = f" in {len(r.loops)} event loop{'s' if len(r.loops) != 1 else ''}" if r.loops \
        else ""
    yield f"{len(r.tasks)} task{'s' if len(r.tasks) != 1 else ''}{loops}"
    # A gather's tasks are shown under the task that awaits the gather.
    by_addr = {t.address: t for t in r.tasks}
    nested = {c for t in r.tasks for c in t.children if c in by_addr and c != t.address}
    for t in r.tasks:
        if t.address not in nested:
            yield from _task_lines(t, by_addr, "", set())


def _task_lines(t, by_addr, indent, seen):
    seen.add(t.address)
    head = f"Task {t.name!r} {t.state}"
    if t.waits_on:
        head += f", waits on {t.waits_on}"
    if t.result:
        head += f", result {t.result}"
    yield f"{indent}{head}  ({t.type} at {t.address:#x})"
    for depth, f in enumerate(t.chain):
        yield f"{indent}  {'  ' * depth}{f.qualname or f.function} " \
              f"({_short_file(f.file)}:{f.line})"
        for name, _addr, _type, value in f.locals or []:
            yield f"{indent}  {'  ' * depth}    {name} = {value}"
    if t.children:
        yield f"{indent}  gathers:"
    for c in t.children:
        child = by_addr.get(c)
        if child is not None and c not in seen:
            yield from _task_lines(child, by_addr, indent + "    ", seen)
        elif child is None:
            yield f"{indent}    a future at {c:#x} (finished, or not a task)"


def _signed(n, size=False):
    if size:
        return ("+" if n > 0 else "-" if n < 0 else "") + human_size(abs(n))
    return f"{n:+,}"


@formatter("nsdebug.heap.diff.DiffResult")
def format_diff(r):
    d = r.diff
    yield f"{r.old} -> {r.new}"
    yield (f"{d.objects_before:,} -> {d.objects_after:,} objects "
           f"({_signed(d.objects_after - d.objects_before)}), "
           f"{human_size(d.size_before)} -> {human_size(d.size_after)} "
           f"({_signed(d.size_after - d.size_before, True)}); "
           f"{d.new_objects:,} new, {d.gone_objects:,} gone")
    for w in r.warnings:
        yield f"warning: {w}"
    if not d.types:
        yield "no type changed"
        return
    yield ""
    yield f"types by change of {d.sort}:"
    rows = [[t.count_before, t.count_after, _signed(t.count_change),
             _signed(t.size_change, True), _signed(t.retained_change, True), t.type]
            for t in d.types]
    yield from table(["before", "after", "count", "size", "retained", "type"], rows, "rrrrrl")
    if d.locations:
        yield ""
        yield "where the new objects hang (new minus gone, by path from a root):"
        for loc in d.locations:
            noun = "object" if abs(loc.count) == 1 else "objects"
            yield f"  {_signed(loc.count)} {noun}, {_signed(loc.size, True)}: {loc.path}"
            parts = [f"{_signed(c)} {t} ({_signed(s, True)})" for t, c, s in loc.types[:8]]
            more = len(loc.types) - 8
            yield "      " + ", ".join(parts) + (f", {more} more types" if more > 0 else "")


@formatter("nsdebug.heap.suspects.SuspectsResult")
def format_suspects(r):
    if not r.suspects:
        yield f"no object keeps 5% or more of the heap ({human_size(r.total_size)}) alone"
    for k, s in enumerate(r.suspects, 1):
        yield f"suspect {k}: {s.summary}"
        yield f"  {s.type} at {s.address:#x}, retained {human_size(s.retained)}"
        if s.top_address != s.address:
            yield f"  below {s.top_type} at {s.top_address:#x}"
        for t, n, size in s.groups:
            yield f"    {n:,} {t}: {human_size(size)}"
    if r.duplicates is not None:
        yield ""
        yield from format_waste(r)


@formatter("nsdebug.heap.memory.MemoryResult")
def format_memory(r):
    known = "" if all(row.resident is not None for row in r.rows) else \
        " (of the rows where it is known)"
    yield f"{human_size(r.resident)} resident{known}, {human_size(r.total)} mapped in the core"
    yield f"  resident: {r.resident_how}" + (
        f"; the process's VmRSS before the capture: {human_size(r.rss)}" if r.rss else "")
    width = max(len(row.category) for row in r.rows)
    yield f"  {'':<{width}}  {'resident':>10}  {'share':>6}  {'mapped':>10}"
    for row in r.rows:
        if row.resident is None:
            res, share = "not known", ""
        else:
            res = human_size(row.resident)
            share = f"{100 * row.resident / r.resident:5.1f}%" if r.resident else ""
        yield f"  {row.category:<{width}}  {res:>10}  {share:>6}  {human_size(row.bytes):>10}"
        yield f"  {'':<{width}}    {row.how}"
        for name, n in row.detail[:8]:
            if n:
                yield f"  {'':<{width}}      {human_size(n):>10}  {name}"
    yield f"anonymous memory resident: {human_size(r.anonymous_resident)} " \
          "(compare the process's RssAnon)"
    for row in r.anonymous:
        yield f"  {row.region:<{width}}  {human_size(row.resident):>10}  of " \
              f"{human_size(row.mapped)} mapped"
    if r.largest_unattributed:
        yield "largest native blocks no object claims:"
        for addr, n, what in r.largest_unattributed[:10]:
            yield f"  {addr:#x}  {human_size(n):>10}" + (f"  {what}" if what else "")
    for w in r.warnings:
        yield f"warning: {w}"


@formatter("nsdebug.heap.waste.WasteResult")
def format_waste(r):
    yield f"duplicate str and bytes values: {human_size(r.duplicate_bytes)} in extra copies"
    rows = [[d.count, human_size(d.size), human_size(d.wasted), d.type, d.preview]
            for d in r.duplicates]
    yield from table(["copies", "each", "wasted", "type", "value"], rows, "rrrll")
    yield "empty and mostly empty containers:"
    rows = [[s.empty, human_size(s.empty_bytes), s.sparse, human_size(s.unused_bytes), s.type]
            for s in r.sparse]
    yield from table(["empty", "their size", "sparse", "unused room", "type"], rows, "rrrrl")


def _short_file(path):
    return os.path.basename(path) if path else path
