"""Commands over the heap: objects, instances, refs, path, retained, strings, largest."""

from __future__ import annotations

from ..errors import CommandError, NsdebugError
from ..record import Factory, record
from .python_cmds import bounds
from .registry import Arg, command


@record
class TypeRow:
    type: str
    count: int
    size: int
    retained: int
    tracked: int
    unreachable: int


@record
class ObjectsResult:
    total_objects: int
    total_size: int
    reachable_size: int
    unreachable_objects: int
    sort: str
    rows: list
    invalid: int = 0
    damaged: list = Factory(list)        # [(address, type, why)] the first few
    warnings: list = Factory(list)
    heap_source: str = "walk"            # "walk", or "index" when mapped from the index


@record
class InstanceRow:
    address: int
    size: int
    retained: int
    reachable: bool
    preview: str


@record
class InstancesResult:
    type: str
    count: int
    rows: list


@record
class RefRow:
    address: int | None
    type: str
    how: str
    owner: str | None                 # for a __dict__: the object that owns it
    owner_address: int | None = None


@record
class RefsResult:
    address: int
    type: str
    referrers: list


@record
class PathResult:
    address: int
    type: str
    path: str | None
    hops: list
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


def heap(session):
    g = session.heap
    return g


def _index(session, text):
    from .python_cmds import resolve_object
    addr, _ = resolve_object(session, text)
    g = heap(session)
    i = g.index_of(addr)
    if i is None:
        raise CommandError(f"{addr:#x} is not an object of the heap (see 'objects')")
    return g, i, addr


def _row(session, g, i):
    o = session.runtime.objects
    addr = int(g.addr[i])
    return InstanceRow(addr, int(g.size[i]), int(g.retained()[i]), g.reachable(i),
                       o.preview(addr, bounds(session)))


@command("objects", "the heap by type: count, own size, retained size",
         Arg(("--top", "-n"), {"type": int, "default": 25, "help": "rows (default 25)"}),
         Arg(("--sort", "-s"), {"choices": ["count", "size", "retained"], "default": "size"}),
         aliases=("heap",), category="heap")
def objects(session, ns):
    from ..api import type_histogram
    g = heap(session)
    stats = type_histogram(g, ns.sort)
    rows = [TypeRow(s.type, s.count, s.size, s.retained, s.tracked, s.unreachable)
            for s in stats[:ns.top]]
    invalid_name = g.type_names()[-1]
    invalid = next((s.count for s in stats if s.type == invalid_name), 0)
    damaged = [(a, g.type_name(g.index_of(a)) if g.index_of(a) is not None else "?", why)
               for a, why in list(g.problems.items())[:20]]
    objs = slice(g.n_synth, g.n)
    reach = (g.flags[objs] & 1) > 0
    return ObjectsResult(g.n - g.n_synth, int(g.size.sum()), int(g.size[objs][reach].sum()),
                         int((~reach).sum()), ns.sort, rows, invalid, damaged,
                         list(g.warnings), "index" if g.from_index else "walk")


@command("instances", "objects of one type, with a preview",
         Arg(("type",), {"help": "type name, e.g. dict or mymod.Widget"}, complete="type"),
         Arg(("--limit", "-n"), {"type": int, "default": 20}),
         category="heap")
def instances(session, ns):
    from ..api import instance_indices
    g = heap(session)
    idx = instance_indices(g, ns.type)
    if not len(idx):
        raise CommandError(f"no objects of type {ns.type!r} (see 'objects')")
    rows = [_row(session, g, int(i)) for i in idx[:ns.limit]]
    return InstancesResult(g.type_name(int(idx[0])), len(idx), rows)


def _owner(session, g, src):
    """For a dict that is some object's __dict__: (that object's address, its preview)."""
    for s2, kind, name in g.referrers(src):
        if name == "__dict__" and s2 >= g.n_synth:
            addr = int(g.addr[s2])
            return addr, session.runtime.objects.preview(addr, bounds(session))
    return None, None


@command("refs", "who refers to an object, and by which name",
         Arg(("address",), {"help": "address or name"}, complete="address"),
         category="heap")
def refs(session, ns):
    from ..heap.referents import ELEMENT, HIDDEN, PROPERTY
    g, i, addr = _index(session, ns.address)
    rows = []
    for src, kind, name in g.referrers(i):
        if src < g.n_synth:
            rows.append(RefRow(None, g.synth_names[src],
                               f"local {name!r}" if g.synth_kinds[src] == "frame" else
                               f"[{name!r}]" if kind == PROPERTY else str(name), None))
            continue
        stype = g.type_name(src)
        is_dict = g.types[int(g.type_ix[src])].kind == "dict" if g.type_ix[src] >= 0 else False
        how = (f"[{name}]" if kind == ELEMENT else
               f"[{name!r}]" if kind == PROPERTY and is_dict else
               "<key>" if kind == HIDDEN else f".{name}")
        owner_addr, owner = _owner(session, g, src) if is_dict else (None, None)
        if owner:
            how = "." + name
        rows.append(RefRow(int(g.addr[src]), stype, how, owner, owner_addr))
    return RefsResult(addr, g.type_name(i), rows)


@command("path", "the shortest chain of references from a root, as Python",
         Arg(("address",), {"help": "address or name"}, complete="address"),
         category="heap")
def path(session, ns):
    from ..heap.paths import path_text
    g, i, addr = _index(session, ns.address)
    edges = g.path_edges(i)
    if edges is None:
        return PathResult(addr, g.type_name(i), None, [], False)
    hops = []
    for e in edges:
        t = int(g.e_to[e])
        hops.append({"type": g.type_name(t),
                     "address": int(g.addr[t]) if t >= g.n_synth else None,
                     "edge": str(g.edge_label(int(g.e_kind[e]), int(g.e_name[e])))})
    return PathResult(addr, g.type_name(i), path_text(g, edges), hops, g.reachable(i))


@command("retained", "retained size of an object and the biggest objects it dominates",
         Arg(("address",), {"help": "address or name"}, complete="address"),
         Arg(("--top", "-n"), {"type": int, "default": 10}),
         category="heap")
def retained(session, ns):
    g, i, addr = _index(session, ns.address)
    ret = g.retained()
    rows = [_row(session, g, k) for k in g.dominated_by(i, ns.top)]
    return RetainedResult(addr, g.type_name(i), int(g.size[i]), int(ret[i]), rows)


@command("strings", "str and bytes objects that contain a text",
         Arg(("pattern",), {"help": "text to look for"}),
         Arg(("--limit", "-n"), {"type": int, "default": 20}),
         category="heap")
def strings(session, ns):
    import numpy as np
    g = heap(session)
    o = session.runtime.objects
    kinds = [i for i, t in enumerate(g.types) if t.kind in ("str", "bytes")]
    idx = np.nonzero(np.isin(g.type_ix, kinds))[0]
    pat_s, pat_b = ns.pattern, ns.pattern.encode("utf-8", "surrogateescape")
    out = []
    for i in idx:
        i = int(i)
        addr = int(g.addr[i])
        try:
            k = g.types[int(g.type_ix[i])].kind
            hit = pat_s in o.read_str(addr) if k == "str" else pat_b in o.read_bytes(addr)
        except NsdebugError:
            continue
        if hit:
            out.append(_row(session, g, i))
            if len(out) > ns.limit:
                break
    return StringsResult(ns.pattern, out[:ns.limit], len(out) > ns.limit)


@command("largest", "the largest objects by own size and by retained size",
         Arg(("--top", "-n"), {"type": int, "default": 10}),
         category="heap")
def largest(session, ns):
    import numpy as np
    g = heap(session)
    objs = np.arange(g.n_synth, g.n)
    ret = g.retained()
    by_size = objs[np.argsort(-g.size[objs].astype(np.int64), kind="stable")[:ns.top]]
    by_ret = objs[np.argsort(-ret[objs].astype(np.int64), kind="stable")[:ns.top]]
    return LargestResult([_row(session, g, int(i)) for i in by_size],
                         [_row(session, g, int(i)) for i in by_ret])


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
    import os
    import time

    from ..heap.snapshot import write_snapshot
    from ..progress import progress_reporter
    from arthur.safefile import OutputError, PrivateOutput
    g = heap(session)
    start = time.perf_counter()
    try:
        with PrivateOutput(ns.file, ns.force, binary=False) as out, \
                progress_reporter("writing the snapshot", "rows") as report:
            nodes, edges = write_snapshot(g, session.runtime.objects, out.f, report,
                                          session.vector_memory, redact=ns.redact)
    except OutputError as e:
        raise CommandError(e.strerror) from None
    except OSError as e:
        raise CommandError(f"cannot write {ns.file}: {e.strerror or e}") from None
    return SnapshotResult(ns.file, nodes, edges, os.path.getsize(ns.file),
                          time.perf_counter() - start)


@record
class TasksResult:
    tasks: list                 # [TaskInfo]
    loops: list                 # addresses of the event loops the tasks belong to


@command("tasks", "every asyncio task in the heap: name, state, await chain, what it waits on",
         Arg(("--locals", "-l"), {"action": "store_true",
                                  "help": "each awaiting coroutine's locals"}),
         Arg(("--all", "-a"), {"action": "store_true",
                               "help": "finished and cancelled tasks too"}),
         category="heap")
def tasks(session, ns):
    """Tasks of every event loop found in the heap, as `python -m asyncio pstree` shows a
    live process's: the coroutine's await chain, innermost last, and what it waits on."""
    from ..heap.tasks import find_tasks
    g = heap(session)
    found = find_tasks(g, session.runtime, ns.locals, bounds(session))
    shown = [t for t in found if ns.all or t.state == "pending"]
    loops = sorted({t.loop for t in found if t.loop})
    return TasksResult(shown, loops)


@record
class DiffResult:
    old: str
    new: str
    diff: object                # heap.diff.HeapDiff
    warnings: list = Factory(list)


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
    from ..heap.diff import compare
    other = session.open_other(ns.other)
    old, new = (session, other) if ns.newer else (other, session)
    warnings = _same_process(old.process, new.process)
    result = compare(old.heap, new.heap, max(ns.top, 0), ns.sort)
    return DiffResult(old.process.path, new.process.path, result, warnings)


def _same_process(a, b):
    import os
    ea, eb = a.executable_path, b.executable_path
    if ea and eb and os.path.basename(ea) != os.path.basename(eb):
        raise CommandError(f"the cores are of different programs ({ea} and {eb})")
    if a.pid and b.pid and a.pid != b.pid:
        return [f"the cores are of different processes (pid {a.pid} and {b.pid}): objects at "
                f"one address are not the same object, so new and gone are by chance"]
    return []


@record
class SuspectsResult:
    total_size: int
    suspects: list              # [heap.suspects.Suspect], biggest first
    duplicates: list | None = None    # [heap.waste.Duplicate] with --waste
    duplicate_bytes: int = 0
    sparse: list | None = None        # [heap.waste.Sparse] with --waste


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
    from ..heap.suspects import find_suspects
    g = heap(session)
    found, total = find_suspects(g, max(ns.top, 0), ns.min_share / 100)
    res = SuspectsResult(total, found)
    if ns.waste:
        _add_waste(session, g, res)
    return res


@record
class WasteResult:
    duplicates: list            # [heap.waste.Duplicate], most bytes wasted first
    duplicate_bytes: int        # all the copies beyond the first, together
    sparse: list                # [heap.waste.Sparse] per container type


@command("waste", "memory spent for nothing: duplicate strings and bytes, empty containers",
         Arg(("--top", "-n"), {"type": int, "default": 20, "help": "values shown (default 20)"}),
         category="heap")
def waste(session, ns):
    """str and bytes values held many times over (the bytes all copies but one waste), and
    dicts, lists and sets that are empty, or under a quarter full with room for 16 or
    more, with the memory they keep for nothing."""
    g = heap(session)
    res = WasteResult([], 0, [])
    _add_waste(session, g, res, max(ns.top, 0))
    return res


def _add_waste(session, g, res, top=10):
    from ..heap.waste import duplicates, sparse_containers
    res.duplicates, res.duplicate_bytes = duplicates(g, session.vector_memory,
                                                     session.runtime.objects, top)
    res.sparse = sparse_containers(g, session.vector_memory, session.runtime.objects)
