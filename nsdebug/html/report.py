"""The report page's data: the summary, the memory picture (retained memory by owner,
type and object; the resident breakdown), suspects with their dominator subtrees,
threads with merged stacks and a flame graph, asyncio tasks, the type table, and a view
of every object the page lists. Large heaps are cut to bounds the page states."""

from __future__ import annotations

import os

from ..errors import NsdebugError
from ..record import as_data
from . import page

OBJECTS = 1500          # objects in the treemap (the largest first), and as many below
SUBTREE = (8, 2)        # a suspect's dominator subtree: children per node, depth
TYPES = 3000            # rows of the type table
VIEWS = 4000            # object views (every object the page lists, up to this)
FLAME_DEPTH = 150       # frames per thread in the flame graph, the innermost


def report_page(target, rep, bounds, budget=OBJECTS):
    """HTML of the report `rep` (report.gather) of a Target; values previewed within
    `bounds` (a Preview: redact=True hides what is held under secret-looking names)."""
    data = {"summary": _summary(rep), "bounds": [], "errors": list(rep.get("errors", ())),
            "environment": [[e["name"], e["value"]] for e in rep.get("environment", ())],
            "modules": [[m["name"], m["version"] or "", m["file"] or ""]
                        for m in rep.get("modules") or ()]}
    listed = []
    data["threads"], data["flame"], data["deadlocks"] = _threads(target, rep, bounds,
                                                                 listed, data["errors"])
    if rep.get("heap") is not None:
        _heap(target, rep, data, listed, budget, bounds)
    views = _views(target, listed, bounds, data)
    return page("report", f"nsdebug report: {os.path.basename(rep['info'].core)}", data,
                views)


def _summary(rep):
    info = rep["info"]
    rows = [("core", info.core), ("made by", info.made_by), ("pid", info.pid),
            ("command", info.command_line), ("executable", info.executable),
            ("threads", info.threads)]
    if info.python:
        rows.append(("Python", info.python.get("version") or info.python.get("error")))
    if info.signal is not None:
        s = info.signal
        text = f"{s.name} ({s.number}), {s.code_name}"
        if s.fault_address is not None:
            text += f", fault address {s.fault_address:#x}"
        rows.append(("signal", text))
    if info.crash:
        rows.append(("crash", info.crash))
    return {"rows": [[k, "" if v is None else str(v)] for k, v in rows],
            "warnings": list(info.warnings)}


def _threads(target, rep, bounds, listed, errors):
    """(threads with merged stacks, the flame graph of all of them, deadlocks)."""
    from ..model import stacks
    crashed = target.process.crashed_thread
    sel = stacks.Selection(crashed.index if crashed is not None else 0)
    # What each thread waits for, from the locks the report has looked at already.
    waits = stacks.wait_phrases(target, rep["locks"]) if rep.get("locks") else None
    try:
        bt = stacks.backtrace(target, True, True, native="python", bounds=bounds, sel=sel,
                              waits=waits)
    except NsdebugError as e:
        errors.append(f"threads: {e}")
        return [], None, []
    out = []
    flame = {"name": "all threads", "value": 0, "children": []}
    for t in bt.threads:
        rows = []
        for r in (t.native if t.native is not None else t.frames):
            if isinstance(r, stacks.NativeRow):
                where = f"{os.path.basename(r.file)}:{r.line}" if r.file else ""
                rows.append({"kind": "native", "function": r.function or f"{r.pc:#x}",
                             "module": os.path.basename(r.module or "?"), "where": where,
                             "inlined": r.inlined})
            else:
                local_rows = []
                for v in r.locals or []:
                    local_rows.append({"name": v.name, "type": v.type, "value": v.value,
                                       "address": v.address})
                    listed.append(v.address)
                rows.append({"kind": "python", "function": r.function,
                             "where": f"{os.path.basename(r.file)}:{r.line}",
                             "file": r.file, "source": r.source, "locals": local_rows})
        title = f"Thread {t.tid}" + (f" \"{t.name}\"" if t.name else "")
        out.append({"title": title, "tid": t.tid, "state": t.state, "crashed": t.crashed,
                    "holds_gil": t.holds_gil, "merged": t.merged, "rows": rows})
        _add_flame(flame, title, rows)
    deadlocks = []
    if rep.get("locks") is not None:
        deadlocks = [d.text for d in rep["locks"].deadlocks]
    return out, flame, deadlocks


def _add_flame(root, title, rows):
    """One thread's stack (oldest first) as a path from the root of the flame graph:
    one sample per thread, so the widths count threads."""
    root["value"] += 1
    node = {"name": title, "value": 1, "children": []}
    root["children"].append(node)
    if len(rows) > FLAME_DEPTH:
        # A runaway recursion: its innermost frames, the older ones as one box.
        cut = len(rows) - FLAME_DEPTH
        child = {"name": f"... {cut:,} older frames", "value": 1, "children": []}
        node["children"].append(child)
        node, rows = child, rows[cut:]
    for r in rows:
        name = f"{r['function']} ({r['where']})" if r["where"] else r["function"]
        if r["kind"] == "native":
            name += f" [{r['module']}]"
        child = {"name": name, "value": 1, "children": []}
        node["children"].append(child)
        node = child


def _heap(target, rep, data, listed, budget, bounds):
    from ..heap.ownertree import listed_addresses, owner_tree, subtree
    from ..heap.stats import type_histogram
    g = target.heap
    tree = owner_tree(g, budget)
    data["treemap"] = [_node(n) for n in tree]
    in_tree = listed_addresses(tree)
    listed.extend(in_tree)
    total = g.n - g.n_synth
    data["heap_total"] = {"objects": total, "size": int(g.size.sum())}
    shown = len(in_tree)
    if shown < total:
        data["bounds"].append(f"treemap: the {min(budget, total):,} objects that retain "
                              f"most, and their largest dominated children ({shown:,} "
                              f"of {total:,} objects); the rest summed per type")
    hist = type_histogram(g, "retained")
    data["types"] = [as_data(t) for t in hist[:TYPES]]
    if len(hist) > TYPES:
        data["bounds"].append(f"type table: the {TYPES:,} types that retain most, of "
                              f"{len(hist):,}")
    if rep.get("memory") is not None:
        data["memory"] = as_data(rep["memory"])
    data["suspects"] = []
    if rep.get("suspects") is not None:
        for s in rep["suspects"].suspects:
            i = g.index_of(s.address)
            sub = subtree(g, i, *SUBTREE) if i is not None else None
            if sub is not None:
                listed.extend(listed_addresses([sub]))
            listed.append(s.address)
            data["suspects"].append({"summary": s.summary, "path": s.path, "type": s.type,
                                     "address": s.address, "retained": s.retained,
                                     "share": s.share, "subtree": _node(sub) if sub else None})
    if rep.get("tasks") is not None:
        data["tasks"] = [_task(t) for t in rep["tasks"].tasks]
        listed.extend(t.address for t in rep["tasks"].tasks)


def _node(n):
    d = {"name": n.name, "kind": n.kind, "value": n.retained, "count": n.count}
    if n.address is not None:
        d["address"] = f"{n.address:#x}"
    if n.type:
        d["type"] = n.type
    if n.path:
        d["path"] = n.path
    if n.children:
        d["children"] = [_node(c) for c in n.children]
    return d


def _task(t):
    return {"name": t.name, "state": t.state, "address": t.address,
            "waits_on": t.waits_on,
            "chain": [f"{f.qualname or f.function} ({os.path.basename(f.file)}:{f.line})"
                      for f in t.chain],
            "children": [_task(c) if hasattr(c, "chain") else {"name": str(c)}
                         for c in t.children]}


def _views(target, listed, bounds, data):
    """{hex address: ObjectView as data} of every object the page lists."""
    from ..heap.objectview import object_view
    out = {}
    try:
        target.heap
    except NsdebugError:
        return out
    for a in listed:
        if a is None or f"{a:#x}" in out:
            continue
        if len(out) >= VIEWS:
            data["bounds"].append(f"object views: the first {VIEWS:,} objects listed")
            break
        try:
            v = object_view(target, a, bounds)
        except NsdebugError:
            continue                 # not an object of the heap (a local's int, ...)
        d = as_data(v)
        d["address"] = f"{a:#x}"
        d["referents"] = [[h, f"{x:#x}" if x else None, t] for h, x, t in v.referents]
        d["referrers"] = [[h, f"{x:#x}" if x else None, t] for h, x, t in v.referrers]
        out[d["address"]] = d
    return out
