"""One core's summary for triage, as plain JSON-ready data: what the process was, the
crash and the crashed thread's merged stack, every thread's state, and with the heap its
type histogram, suspects, memory breakdown and where the commonest types are held.

The summary holds facts of the core only: signatures are made from its stack when the
cores are grouped (so new rules need no new reading), and the spool's records are
joined in by the caller. It is what the cache keeps and what a worker sends back."""

from __future__ import annotations

import os

from ..errors import NsdebugError
from ..record import as_data

FORMAT = 3                  # bumped when a summary's content changes: the cache's key
TYPES_KEPT = 200            # types kept per sort (count, retained) in the histogram
HOLDERS = 20                # the commonest types whose holder is found
OVERFLOW_REACH = 1 << 20    # a fault this near a thread's sp, in no memory: an overflow


def summarize(path, heap=None):
    """The summary of the core at `path`. `heap`: walk the heap (None: only for a
    capture `arthur watch` made). Raises NsdebugError for a file that is no core."""
    from ..model import open_target
    target = open_target(path, use_index=False)
    try:
        return _summary(target, path, heap)
    finally:
        target.close()


def _summary(target, path, heap):
    from ..model.info import process_info
    info = process_info(target)
    p = target.process
    meta = p.arthur or {}
    if heap is None:
        heap = bool(meta.get("reason"))     # arthur watch says why it captured
    out = {"format": FORMAT, "core": os.path.abspath(path), "size": info.core_size,
           "made_by": info.made_by, "mode": meta.get("mode"), "pid": info.pid,
           "executable": info.executable, "command_line": info.command_line,
           "threads_count": info.threads, "captured_at": meta.get("captured_at"),
           "started_at": meta.get("started_at"), "rss": meta.get("rss"),
           "signal": as_data(info.signal), "crash": info.crash,
           "python": (info.python or {}).get("version"),
           "python_error": (info.python or {}).get("error"),
           "overflow": False, "stack": [], "threads": [], "deadlocks": [],
           "heap": None, "warnings": list(info.warnings), "errors": []}
    if out["python"] is None:
        raise NsdebugError(f"not a CPython process: {out['python_error'] or 'no Python'}")
    crashed = p.crashed_thread
    if crashed is not None and info.signal is not None:
        out["overflow"] = _overflow(target, crashed, info.signal)
        _section(out, "stack", lambda: _crashed_stack(target, crashed.index))
    _section(out, "threads", lambda: _threads(target, out))
    if heap:
        _section(out, "heap", lambda: _heap(target))
    return out


def _section(out, key, fn):
    try:
        out[key] = fn()
    except NsdebugError as e:
        out["errors"].append(f"{key}: {e}")


def _overflow(target, thread, sig):
    """Whether a fault is a stack overflow: an address near the thread's stack pointer
    that no memory backs (the guard page below the stack)."""
    if sig.name not in ("SIGSEGV", "SIGBUS") or sig.fault_address is None:
        return False
    if abs(sig.fault_address - thread.sp) > OVERFLOW_REACH:
        return False
    try:
        target.process.memory.read(sig.fault_address, 1)
    except NsdebugError:
        return True
    return False


def _crashed_stack(target, core_index):
    """The crashed thread's frames, innermost first: native and Python merged (inlined
    calls marked), each with its place; the interpreter's call machinery between Python
    frames left out, as `bt --native` does (the signature would skip it anyway)."""
    from ..model import stacks
    py = target.runtime.thread_for_core(core_index)
    if py is None:
        st = stacks.native_stack(target, core_index, "python")
    else:
        st = stacks.thread_stack(target, py, native="python")
    rows = list(reversed(st.native or []))
    if py is not None and not st.merged:
        # Not merged (no symbols for the eval loop): the C frames down to the first
        # activation of the loop, then the Python frames.
        cut = next((i for i, r in enumerate(rows) if getattr(r, "kind", "") == "native"
                    and stacks.is_eval(r.function)), len(rows))
        rows = rows[:cut] + list(reversed(st.frames)) + rows[cut:]
    target.native.save()
    out = []
    for r in rows:
        if isinstance(r, stacks.NativeRow):
            out.append({"kind": "native", "function": r.function, "module": r.module,
                        "pc": r.pc, "offset": r.offset, "file": r.file, "line": r.line,
                        "inlined": r.inlined})
        else:
            out.append({"kind": "python", "function": r.function, "file": r.file,
                        "line": r.line})
    return out


def _threads(target, summary):
    """Each thread's state and where it is; the deadlocks go in `summary`, from the same
    look at the locks that says what each thread waits for."""
    from ..model import stacks
    from ..model.locks import locks
    waits = {}
    try:
        found = locks(target)
        summary["deadlocks"] = [d.text for d in found.deadlocks]
        waits = stacks.wait_phrases(target, found)
    except NsdebugError as e:
        summary["errors"].append(f"deadlocks: {e}")
    bt = stacks.backtrace(target, every=True, waits=waits)
    out = []
    for t in bt.threads:
        top = t.frames[-1] if t.frames else None
        out.append({"tid": t.tid, "name": t.name, "state": t.state, "holds_gil": t.holds_gil,
                    "crashed": t.crashed,
                    "where": f"{top.function} ({os.path.basename(top.file)}:{top.line})"
                    if top else None})
    out.extend({"tid": tid, "name": None, "state": None, "holds_gil": False,
                "crashed": False, "where": None} for tid in bt.native_only)
    return out


def _heap(target):
    from ..heap import holders, stats, suspects
    from ..heap.memory import memory
    g = target.heap
    by_count = stats.type_histogram(g, "count")
    kept = {s.type: s for s in by_count[:TYPES_KEPT]}
    by_retained = sorted(by_count, key=lambda s: -s.retained)[:TYPES_KEPT]
    kept.update((s.type, s) for s in by_retained)
    totals = stats.totals(g)
    out = {"objects": totals.total_objects, "size": totals.total_size,
           "types": [as_data(s) for s in sorted(kept.values(), key=lambda s: -s.count)],
           "suspects": [], "memory": None, "holders": {}}
    try:
        out["suspects"] = [as_data(s) for s in suspects.suspects(target).suspects]
    except NsdebugError as e:
        out["suspects_error"] = str(e)
    try:
        out["memory"] = as_data(memory(target))
    except NsdebugError as e:
        out["memory_error"] = str(e)
    for s in by_count[:HOLDERS]:
        out["holders"][s.type] = as_data(holders.holder(g, s.type))
    return out
