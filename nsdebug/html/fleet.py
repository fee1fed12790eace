"""The fleet page's data: crash groups with their counts over time and stacks, growth
across instances, and the cores that failed."""

from __future__ import annotations

from ..record import as_data
from . import page


def time_bins(times, bins=24):
    """(bin starts, the width in seconds) covering `times` in at most `bins` steps of a
    round width (a minute, an hour, a day...)."""
    if not times:
        return [], 0
    lo, hi = min(times), max(times)
    span = max(hi - lo, 1)
    for width in (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400):
        if span / width <= bins:
            break
    start = lo - lo % width
    count = int((hi - start) // width) + 1
    return [start + i * width for i in range(count)], width


def fleet_page(result):
    """HTML of a fleet.TriageResult."""
    groups = [as_data(g) for g in result.groups]
    all_times = [t for g in result.groups for t in (g.times or []) if t is not None]
    starts, width = time_bins(all_times)
    for g, d in zip(result.groups, groups):
        counts = [0] * len(starts)
        for t in g.times or []:
            if t is not None and width:
                counts[min(int((t - starts[0]) // width), len(starts) - 1)] += 1
        d["over_time"] = counts
    data = {"cores": result.cores, "captures": result.captures, "groups": groups,
            "bins": starts, "bin_width": width,
            "growth": [as_data(g) for g in result.growth[:200]],
            "failed": result.failed, "dropped": len(result.dropped),
            "bounds": ["growth: the 200 strongest types"] if len(result.growth) > 200 else []}
    return page("fleet", "nsdebug triage", data)
