"""Commands over the heap: objects, instances, refs, path, retained, strings, largest,
snapshot, tasks, diff, suspects, waste. Each is the arguments of a heap/ function (the
heap's modules, which import numpy, are loaded when a heap command runs)."""

from __future__ import annotations

from ..errors import CommandError
from ..record import record
from .registry import Arg, command


@record
class InstancesResult:
    type: str
    count: int
    rows: list                           # [heap.stats.InstanceRow]


@record
class RefsResult:
    address: int
    type: str
    referrers: list                      # [heap.paths.RefRow]


@record
class PathResult:
    address: int
    type: str
    path: str | None
    hops: list                           # [heap.paths.PathHop]
    reachable: bool


@record
class RetainedResult:
    address: int
    type: str
    size: int
    retained: int
    dominated: list       # [InstanceRow]


@record
class StringsResult:
    pattern: str
    matches: list         # [InstanceRow]
    truncated: bool


@record
class LargestResult:
    by_size: list
    by_retained: list


def _index(session, text):
    addr, _ = session.resolve_object(text)
    g = session.target.heap
    i = g.index_of(addr)
    if i is None:
        raise CommandError(f"{addr:#x} is not an object of the heap (see 'objects')")
    return g, i, addr


def _rows(session, g, indices):
    from ..heap import stats
    return stats.object_rows(g, session.target.runtime.objects, indices, session.bounds)


@command("objects", "the heap by type: count, own size, retained size",
         Arg(("--top", "-n"), {"type": int, "default": 25, "help": "rows (default 25)"}),
         Arg(("--sort", "-s"), {"choices": ["count", "size", "retained"], "default": "size"}),
         aliases=("heap",), category="heap")
def objects(session, ns):
    from ..heap import stats
    return stats.by_type(session.target.heap, ns.sort, ns.top)


@command("instances", "objects of one type, with a preview",
         Arg(("type",), {"help": "type name, e.g. dict or mymod.Widget"}, complete="type"),
         Arg(("--limit", "-n"), {"type": int, "default": 20}),
         category="heap")
def instances(session, ns):
    from ..heap import stats
    g = session.target.heap
    idx = stats.instance_indices(g, ns.type)
    if not len(idx):
        raise CommandError(f"no objects of type {ns.type!r} (see 'objects')")
    return InstancesResult(g.type_name(int(idx[0])), len(idx),
                           _rows(session, g, idx[:ns.limit]))


@command("refs", "who refers to an object, and by which name",
         Arg(("address",), {"help": "address or name"}, complete="address"),
         category="heap")
def refs(session, ns):
    from ..heap import paths
    g, i, addr = _index(session, ns.address)
    o = session.target.runtime.objects
    rows = paths.referrers(g, i, lambda a: o.preview(a, session.bounds))
    return RefsResult(addr, g.type_name(i), rows)


@command("path", "the shortest chain of references from a root, as Python",
         Arg(("address",), {"help": "address or name"}, complete="address"),
         category="heap")
def path(session, ns):
    from ..heap import paths
    g, i, addr = _index(session, ns.address)
    edges = g.path_edges(i)
    if edges is None:
        return PathResult(addr, g.type_name(i), None, [], False)
    return PathResult(addr, g.type_name(i), paths.path_text(g, edges),
                      paths.path_hops(g, edges), g.reachable(i))


@command("retained", "retained size of an object and the biggest objects it dominates",
         Arg(("address",), {"help": "address or name"}, complete="address"),
         Arg(("--top", "-n"), {"type": int, "default": 10}),
         category="heap")
def retained(session, ns):
    g, i, addr = _index(session, ns.address)
    return RetainedResult(addr, g.type_name(i), int(g.size[i]), int(g.retained()[i]),
                          _rows(session, g, g.dominated_by(i, ns.top)))


@command("strings", "str and bytes objects that contain a text",
         Arg(("pattern",), {"help": "text to look for"}),
         Arg(("--limit", "-n"), {"type": int, "default": 20}),
         category="heap")
def strings(session, ns):
    from ..heap import stats
    g = session.target.heap
    found, more = stats.containing(g, session.target.runtime.objects, ns.pattern, ns.limit)
    return StringsResult(ns.pattern, _rows(session, g, found), more)


@command("largest", "the largest objects by own size and by retained size",
         Arg(("--top", "-n"), {"type": int, "default": 10}),
         category="heap")
def largest(session, ns):
    from ..heap import stats
    g = session.target.heap
    by_size, by_ret = stats.largest(g, ns.top)
    return LargestResult(_rows(session, g, by_size), _rows(session, g, by_ret))


@record
class SnapshotResult:
    path: str
    nodes: int
    edges: int
    bytes: int
    seconds: float


@command("snapshot", "export the heap as a Chrome DevTools .heapsnapshot file",
         Arg(("file",), {"help": "output file, e.g. app.heapsnapshot"}),
         Arg(("--force",), {"action": "store_true", "help": "overwrite an existing file"}),
         Arg(("--redact",), {"action": "store_true",
                             "help": "replace the str and bytes values held under names that "
                                     "look secret (token, password, key...)"}),
         category="heap")
def snapshot(session, ns):
    """Stream the whole heap to FILE; load it in DevTools' Memory panel."""
    return snapshot_file(session.target, ns.file, ns.force, ns.redact)


def snapshot_file(target, path, force=False, redact=False):
    """SnapshotResult of writing the target's heap to `path` (progress on a terminal)."""
    import os
    import time

    from ..progress import progress_reporter
    target.heap             # walked (with its own progress bar) before the file opens
    start = time.perf_counter()
    with progress_reporter("writing the snapshot", "rows") as report:
        nodes, edges = target.write_snapshot(path, force=force, redact=redact,
                                             progress=report)
    return SnapshotResult(path, nodes, edges, os.path.getsize(path),
                          time.perf_counter() - start)


@command("tasks", "every asyncio task in the heap: name, state, await chain, what it waits on",
         Arg(("--locals", "-l"), {"action": "store_true",
                                  "help": "each awaiting coroutine's locals"}),
         Arg(("--all", "-a"), {"action": "store_true",
                               "help": "finished and cancelled tasks too"}),
         category="heap")
def tasks(session, ns):
    """Tasks of every event loop found in the heap, as `python -m asyncio pstree` shows a
    live process's: the coroutine's await chain, innermost last, and what it waits on."""
    from ..heap.tasks import tasks as find
    return find(session.target, ns.locals, ns.all, session.bounds)


@command("diff", "what grew since another core of the same process: per type, and where",
         Arg(("other",), {"help": "the earlier core (the open one is the later)"}),
         Arg(("--top", "-n"), {"type": int, "default": 25, "help": "rows (default 25)"}),
         Arg(("--sort", "-s"), {"choices": ["count", "size", "retained"], "default": "size",
                                "help": "order types by the change of this (default size)"}),
         Arg(("--newer",), {"action": "store_true",
                            "help": "OTHER is the later core, the open one the earlier"}),
         category="heap")
def diff(session, ns):
    """Compare the heap with the heap of OTHER, an earlier core of the same process (any
    mix of kernel, gcore and arthur cores): per type, count, size and retained size
    before and after; and for what grew, where the new objects hang, as the path from a
    root with indices and keys folded to [*]. An object is the same in both when its
    address and type are."""
    from ..heap.diff import diff_cores
    return diff_cores(session.target, ns.other, max(ns.top, 0), ns.sort, ns.newer)


@command("suspects", "leak suspects: what keeps the most memory alive, and where it piles up",
         Arg(("--top", "-n"), {"type": int, "default": 5, "help": "suspects (default 5)"}),
         Arg(("--min-share",), {"type": float, "default": 5.0, "metavar": "PERCENT",
                                "help": "smallest share of the heap shown (default 5%%)"}),
         Arg(("--waste", "-w"), {"action": "store_true",
                                 "help": "also duplicate strings and empty containers"}),
         category="heap")
def suspects(session, ns):
    """The objects that keep the most memory alive alone, each with its share of the
    heap and its path from a root, followed down the dominator tree to the accumulation
    point: the container whose many children of one type make up what it retains."""
    from ..heap.suspects import suspects as find
    return find(session.target, ns.top, ns.min_share / 100, ns.waste)


@command("memory", "the process's memory by category: objects, buffers, native blocks, "
         "malloc, stacks, files", category="heap")
def memory(session, ns):
    """Every mapped byte of the core in one category (Python objects in pymalloc and in
    malloc, buffers objects own, native blocks attributed or not, malloc's free memory,
    thread stacks, files, other anonymous memory), summing to the total, each with the
    bytes of it that were resident: exact on an arthur capture (its record of the page
    table), else the pages the core holds that are not all zero (files' not known); the
    largest native blocks no object claims."""
    from ..heap.memory import memory as breakdown
    return breakdown(session.target)


@command("waste", "memory spent for nothing: duplicate strings and bytes, empty containers",
         Arg(("--top", "-n"), {"type": int, "default": 20, "help": "values shown (default 20)"}),
         category="heap")
def waste(session, ns):
    """str and bytes values held many times over (the bytes all copies but one waste), and
    dicts, lists and sets that are empty, or under a quarter full with room for 16 or
    more, with the memory they keep for nothing."""
    from ..heap.waste import find_waste
    t = session.target
    return find_waste(t.heap, t.scattered_reads(), t.runtime.objects, max(ns.top, 0))
