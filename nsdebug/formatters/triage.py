"""Text of `nsdebug triage`: the crash groups with an example stack each, the growth
across instances, and what failed."""

from __future__ import annotations

import time

from .base import formatter

STACK_LINES = 8


def _when(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "?"


@formatter("nsdebug.fleet.TriageResult")
def format_triage(r):
    crashes = sum(g.count for g in r.groups)
    yield (f"{r.cores} cores: {crashes} crashes in {len(r.groups)} groups, "
           f"{r.captures} captures without a crash, {len(r.failed)} failed "
           f"({r.analyzed} read, {r.cached} from the cache)")
    if r.groups:
        yield ""
        yield "crash groups, commonest first:"
    for i, g in enumerate(r.groups, 1):
        yield ""
        yield f"#{i}  {g.count} x  {g.signature}"
        yield f"    seen {_when(g.first_seen)} .. {_when(g.last_seen)};  " \
              f"Python {', '.join(g.versions)};  {', '.join(g.executables)}"
        if g.crash:
            yield f"    {g.crash}"
        yield f"    e.g. {g.example}"
        for line in g.stack[:STACK_LINES]:
            yield f"      {line}"
        if len(g.stack) > STACK_LINES:
            yield f"      ... {len(g.stack) - STACK_LINES} more frames"
    if r.growth:
        yield ""
        yield "growing across instances, strongest first:"
        for g in r.growth:
            rho = "" if g.rho_uptime is None else f"  (rank correlation with uptime " \
                f"{g.rho_uptime:.2f}, with RSS {g.rho_rss if g.rho_rss is not None else 0:.2f})"
            yield f"  {g.text}{rho}"
    if r.failed:
        yield ""
        yield "failed:"
        for f in r.failed:
            yield f"  {f['core']}: {f['error']}"
    if r.dropped:
        yield ""
        yield f"{len(r.dropped)} crashes whose core the spool did not keep " \
              f"(see their records)"
