"""Fleet triage (`nsdebug triage`, `nsdebug.triage()`): many cores at once, grouped by
crash and by leak. (Not named `triage`: the API function of that name would be
shadowed by the package once imported.)

    triage(["/var/spool/arthur"], jobs=4) -> TriageResult

find_cores (scan.py) lists the cores and their spool records; each core's summary
(summary.py) comes from the cache (cache.py) or from analyze() on an engine (engine.py:
a local pool or a Dask cluster, the work in a child process with its limits); the
summaries are grouped by crash signature (signature.py, groups.py) and searched for
growth across instances (growth.py)."""

from __future__ import annotations

import os

from ..record import Factory, record


@record
class Entry:
    """One analysed core: its summary and what the spool's record adds."""
    path: str
    summary: dict
    record: dict | None
    time: float | None          # when it was taken
    started_at: float | None    # when its process started
    rss: int | None

    @property
    def uptime(self):
        if self.time is None or self.started_at is None:
            return None
        return self.time - self.started_at


@record
class TriageResult:
    cores: int
    groups: list                 # [groups.CrashGroup]
    growth: list                 # [growth.Growth]
    failed: list                 # [{"core", "error", "kind"}]
    captures: int                # cores with no crash (captures of live processes)
    analyzed: int                # cores read this run (the others came from the cache)
    cached: int
    dropped: list = Factory(list)    # spool records of crashes whose core was not kept


def entry(path, summary, rec):
    """An Entry: times and RSS from the spool's record, else from the capture's note,
    else the file's modification time."""
    rec = rec or {}
    when = rec.get("time") or summary.get("captured_at")
    if when is None:
        try:
            when = os.stat(path).st_mtime
        except OSError:
            when = None
    return Entry(path, summary, rec or None, when,
                 rec.get("started_at") or summary.get("started_at"),
                 rec.get("rss") or summary.get("rss"))


def triage(paths, *, jobs=None, dask=None, heap=None, timeout=600.0, memory_limit=0,
           cache_dir=None, rules=None, progress=None):
    """TriageResult of the cores under `paths`. `heap`: walk every heap (None: only for
    the captures arthur watch made), `cache_dir` None: no cache; `progress(done,
    total)` is called as cores finish."""
    from . import engine
    from .cache import SummaryCache, core_key
    from .groups import crash_groups
    from .growth import growth
    from .scan import find_cores
    candidates, dropped = find_cores(paths)
    cache = SummaryCache(cache_dir) if cache_dir else None
    results, todo, keys, cached = {}, [], {}, 0
    for c in candidates:
        try:
            keys[c.path] = core_key(c.path)
        except OSError as e:
            results[c.path] = {"error": f"cannot read: {e.strerror or e}" if e.strerror
                               else str(e), "kind": "error"}
            continue
        want_heap = heap if heap is not None else (True if _watched(c.record) else None)
        kept = cache.get(keys[c.path], want_heap) if cache else None
        if kept is not None:
            results[c.path] = kept
            cached += 1
        else:
            todo.append((c.path, want_heap))
    done = len(results)
    if progress:
        progress(done, len(candidates))
    options = {"timeout": timeout, "memory_limit": memory_limit}
    for want_heap in sorted({h for _, h in todo}, key=str):
        batch = [p for p, h in todo if h == want_heap]
        run = engine.run_dask(batch, dask, heap=want_heap, **options) if dask else \
            engine.run_local(batch, jobs or engine.default_jobs(), heap=want_heap, **options)
        for path, result in run:
            results[path] = result
            if cache and ("summary" in result or result.get("kind") == "error"):
                cache.put(keys[path], result)       # not a timeout: it may pass next time
            done += 1
            if progress:
                progress(done, len(candidates))
    entries, failed = [], []
    for c in candidates:
        r = results[c.path]
        if "summary" in r:
            entries.append(entry(c.path, r["summary"], c.record))
        else:
            failed.append({"core": c.path, "error": r.get("error"), "kind": r.get("kind")})
    groups = crash_groups(entries, rules)
    crashed = sum(g.count for g in groups)
    return TriageResult(len(candidates), groups, growth(entries), failed,
                        len(entries) - crashed, len(todo), cached,
                        dropped)


def _watched(rec):
    return bool(rec) and rec.get("mode") == "watch"
