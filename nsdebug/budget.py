"""How much memory this process may still take, for any layer: its anonymous memory
(RssAnon), the system's available memory (MemAvailable), the tightest memory cgroup
limit over it (v1 or v2) less what is charged there, and the data limit a fleet worker
is given (RLIMIT_DATA). The heap walk's spill asks how much anonymous memory it may
hold; a capture's copy asks whether it may stay in memory rather than go to disk."""

from __future__ import annotations

import os
import resource


def _kib_field(path, key):
    """The value of a "Key:   N kB" line of a /proc file, in bytes; None where unknown."""
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def anon_bytes(status="/proc/self/status"):
    """This process's resident anonymous memory (RssAnon), or 0 where unknown."""
    return _kib_field(status, b"RssAnon:") or 0


def available_bytes(meminfo="/proc/meminfo"):
    """The memory the system can give without swapping (MemAvailable), or None."""
    return _kib_field(meminfo, b"MemAvailable:")


def _stat_fields(path, names):
    """The sum of the first of each group of `names` a cgroup's memory.stat has, in
    bytes (None where the file cannot be read)."""
    try:
        with open(path) as f:
            rows = dict(line.split()[:2] for line in f if line.strip())
    except (OSError, ValueError):
        return None
    return sum(int(next((rows[n] for n in group if n in rows), 0)) for group in names)


# memory.stat's names, v1 then v2, for memory no reclaim frees without swap.
ANON_V1, ANON_V2 = ("total_rss", "rss"), ("anon",)
SHMEM_V1, SHMEM_V2 = ("total_shmem", "shmem"), ("shmem",)


def cgroup_headroom(found=None, cgroup_file=None, shmem=False):
    """(limit, the anonymous memory charged to that cgroup, and its shared memory too
    when `shmem`) of the tightest memory cgroup limit over this process, or None
    without one (`found`, `cgroup_file`: as arthur.cgroups.controller_dir takes them)."""
    from arthur.cgroups import controller_dir, memory_limit
    where = controller_dir("self", "memory", found, cgroup_file)
    limit = memory_limit(where)
    if limit is None:
        return None
    v1 = where[0] == 1
    kinds = [ANON_V1 if v1 else ANON_V2] + ([SHMEM_V1 if v1 else SHMEM_V2] if shmem else [])
    charged = _stat_fields(os.path.join(limit[1], "memory.stat"), kinds)
    return limit[0], charged or 0


def anon_budget():
    """How much anonymous memory this process may hold, in bytes (None: no known bound)."""
    own = anon_bytes()
    bounds = []
    cg = cgroup_headroom()
    if cg is not None:
        limit, charged = cg
        others = max(charged - own, 0)
        bounds.append(max(limit - others, 0))
    avail = available_bytes()
    if avail is not None:
        bounds.append(avail + own)
    return min(bounds) if bounds else None


def pinnable_bytes():
    """How much more memory this process could take that no reclaim frees (shared
    memory, without swap), in bytes; None where nothing says. The least of the
    system's available memory, the tightest cgroup limit less the anonymous and shared
    memory charged under it, and a data limit (RLIMIT_DATA: not what shared memory is
    counted against, but the share of the machine a fleet worker is given) less this
    process's anonymous memory."""
    bounds = []
    avail = available_bytes()
    if avail is not None:
        bounds.append(avail)
    cg = cgroup_headroom(shmem=True)
    if cg is not None:
        bounds.append(max(cg[0] - cg[1], 0))
    try:
        data = resource.getrlimit(resource.RLIMIT_DATA)[0]
    except (OSError, ValueError):
        data = resource.RLIM_INFINITY
    if data != resource.RLIM_INFINITY:
        bounds.append(max(data - anon_bytes(), 0))
    return min(bounds) if bounds else None
