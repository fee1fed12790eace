"""Growth across instances: of the captures of one service (the same executable and
command line), the types whose count or retained size grows with uptime and with RSS,
within each instance over time and across instances, with where the new objects are
held in most instances.

An instance is one process (pid and start time). A type grows in an instance when its
count (or retained size) at the instance's last capture exceeds the first by more than
1% (and 10 objects or 1 KiB), and no capture in between fell more than 5% below the
largest before it: a bounded cache fills and stays, churn goes up and down, a leak
only climbs. Across instances, the rank correlation of the count with uptime and with
RSS over every capture says whether older, bigger processes hold more of it."""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..record import record

MIN_RHO = 0.8


@record
class Growth:
    type: str
    executable: str
    command_line: str
    instances: int              # instances of the service captured
    growing_in: int             # instances in which it grew
    compared: int               # instances captured at least twice
    count_per_capture: float    # mean rise in count between two captures, where it grew
    retained_per_capture: float
    rho_uptime: float | None    # rank correlation over every capture, None without data
    rho_rss: float | None
    count_last: int             # the count at the newest capture
    path: str | None            # where the new objects are held in most instances
    path_in: int                # in how many instances there
    text: str


def growth(entries):
    """[Growth], strongest first, of the entries (fleet.Entry) with a heap summary."""
    services = {}
    for e in entries:
        heap = e.summary.get("heap")
        if heap:
            key = (e.summary.get("executable") or "?", e.summary.get("command_line") or "")
            services.setdefault(key, []).append(e)
    out = []
    for (exe, cmd), caps in services.items():
        out.extend(_service(exe, cmd, caps))
    out.sort(key=_rank)
    return out


def _rank(g):
    """In how many instances it grows; then a count that grows before a retained size
    that does (the holders of a leak grow in retained size only); then a class of the
    program before a builtin type whose instances it makes; then by how much."""
    return (-g.growing_in / max(g.compared, 1), g.count_per_capture <= 0,
            "." not in g.type, -(g.rho_uptime or 0), -g.count_per_capture,
            -g.retained_per_capture, g.type)


def _instances(caps):
    """The captures by instance: one process is its container, pid and start time (in a
    container fleet every instance may be pid 1). A capture whose start time is not
    known (a gcore core) joins the one instance of its pid that has one, if only one."""
    instances, unknown = {}, []
    for e in caps:
        rec = e.record or {}
        where = (rec.get("container_id") or "", e.summary.get("pid"))
        if e.started_at is None:
            unknown.append((where, e))
        else:
            instances.setdefault(where + (round(e.started_at),), []).append(e)
    for where, e in unknown:
        known = [k for k in instances if k[:2] == where]
        key = known[0] if len(known) == 1 else where + (None,)
        instances.setdefault(key, []).append(e)
    return instances


def _service(exe, cmd, caps):
    instances = _instances(caps)
    for caps_of in instances.values():
        caps_of.sort(key=lambda e: (e.time or 0, e.path))
    types = set()
    for e in caps:
        types.update(t["type"] for t in e.summary["heap"]["types"])
    counts = {e.path: {t["type"]: t for t in e.summary["heap"]["types"]} for e in caps}
    out = []
    for name in sorted(types):
        g = _type_growth(name, exe, cmd, instances, counts, caps)
        if g is not None:
            out.append(g)
    return out


def _type_growth(name, exe, cmd, instances, counts, caps):
    grew, compared, rises, ret_rises, paths = 0, 0, [], [], Counter()
    for caps_of in instances.values():
        rows = [counts[e.path].get(name) for e in caps_of]
        if len(rows) < 2 or rows[0] is None or rows[-1] is None or None in rows:
            continue
        compared += 1
        n = [r["count"] for r in rows]
        b = [r["retained"] for r in rows]
        if _climbs(n, 10) or _climbs(b, 1024):
            grew += 1
            rises.append((n[-1] - n[0]) / (len(n) - 1))
            ret_rises.append((b[-1] - b[0]) / (len(b) - 1))
            held = caps_of[-1].summary["heap"].get("holders", {}).get(name)
            if held and held.get("path"):
                paths[held["path"]] += 1
    xs = [(e.uptime, e.rss, counts[e.path][name]["count"]) for e in caps
          if name in counts[e.path]]
    rho_up = _rho([x[0] for x in xs], [x[2] for x in xs])
    rho_rss = _rho([x[1] for x in xs], [x[2] for x in xs])
    across = not compared and rho_up is not None and rho_up >= MIN_RHO and \
        rho_rss is not None and rho_rss >= MIN_RHO
    if not (grew and grew * 2 >= compared) and not across:
        return None
    path, path_in = paths.most_common(1)[0] if paths else (None, 0)
    per = float(np.mean(rises)) if rises else 0.0
    ret_per = float(np.mean(ret_rises)) if ret_rises else 0.0
    last = max(caps, key=lambda e: e.time or 0)
    count_last = counts[last.path].get(name, {}).get("count", 0)
    rise = f"{per:+,.0f}" if per > 0 else f"retained {ret_per / 1024:+,.0f} KiB"
    text = f"{name}: {rise} per capture in {grew} of {compared} instances" \
        if compared else f"{name}: grows with uptime across {len(instances)} instances"
    if path:
        text += f", held at {path}"
        if path_in < grew:
            text += f" (in {path_in})"
    return Growth(name, exe, cmd, len(instances), grew, compared, per, ret_per, rho_up,
                  rho_rss, count_last, path, path_in, text)


def _climbs(values, floor):
    """Whether a series only climbs: up by more than 1% (and `floor`) from first to
    last, never more than 5% below the highest before."""
    if values[-1] - values[0] <= max(0.01 * values[0], floor):
        return False
    top = values[0]
    for v in values[1:]:
        if v < top * 0.95:
            return False
        top = max(top, v)
    return True


def _rho(x, y):
    """Spearman's rank correlation, None with fewer than 3 points or no spread."""
    pairs = [(a, b) for a, b in zip(x, y) if a is not None and b is not None]
    if len(pairs) < 3:
        return None
    a = np.argsort(np.argsort([p[0] for p in pairs])).astype(float)
    b = np.argsort(np.argsort([p[1] for p in pairs])).astype(float)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])
