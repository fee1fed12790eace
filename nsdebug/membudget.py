"""How much memory this process may use, and what it holds that the kernel cannot drop.

What "may use" means: the smallest of the memory cgroup limits over this process's
cgroup and its ancestors (cgroup v1 or v2), less the anonymous memory others have charged
there, the system's available memory (MemAvailable, plus this process's own anonymous
memory), and its data segment limit (RLIMIT_DATA). The heap walk spills against it
(heap/spill.py); a capture's decompressed copy is made in memory only where it takes a
small share of it (corefile/vector.py).

A copy made in memory (anonymous memory, which with no swap the kernel can neither
write out nor drop) is pinned here while it lives: it is the core, not the walk's, so
this process's anonymous memory and data segment are told less it (anon_and_data_bytes),
and every bound on them is less it too: the walk has what is left.
"""

from __future__ import annotations

import os
import weakref

IN_MEMORY_SHARE = 1 / 3     # a copy in memory takes at most this share of the budget
_pinned = 0                 # bytes of the copies held in memory, while they live


def _kib_fields(path, *keys):
    """The values of "Key:   N kB" lines of a /proc file, in bytes, in the order of
    `keys`, read in one pass; None for each one unknown."""
    found = dict.fromkeys(keys)
    try:
        with open(path, "rb") as f:
            for line in f:
                key = line.split(b":", 1)[0] + b":"
                if key in found:
                    found[key] = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return tuple(found[k] for k in keys)


def _kib_field(path, key):
    """The value of a "Key:   N kB" line of a /proc file, in bytes; None where unknown."""
    return _kib_fields(path, key)[0]


def anon_bytes(status="/proc/self/status"):
    """This process's resident anonymous memory (RssAnon) less the copies pinned, or 0
    where unknown."""
    return anon_and_data_bytes(status)[0]


def anon_and_data_bytes(status="/proc/self/status"):
    """(anon_bytes(), this process's data segment as the data segment limit counts it:
    VmData, private writable mappings, resident or not, less the copies pinned), from
    one read; 0 for each unknown."""
    anon, data = _kib_fields(status, b"RssAnon:", b"VmData:")
    return max((anon or 0) - _pinned, 0), max((data or 0) - _pinned, 0)


def available_bytes(meminfo="/proc/meminfo"):
    """The memory the system can give without swapping (MemAvailable), or None."""
    return _kib_field(meminfo, b"MemAvailable:")


def _stat_field(path, names):
    """The first of `names` in a cgroup's memory.stat, in bytes."""
    try:
        with open(path) as f:
            rows = dict(line.split()[:2] for line in f if line.strip())
    except (OSError, ValueError):
        return None
    for name in names:
        if name in rows:
            return int(rows[name])
    return None


def cgroup_headroom(found=None, cgroup_file=None):
    """(limit, anonymous memory charged to that cgroup) of the tightest memory cgroup
    limit over this process, or None without one (`found`, `cgroup_file`: as
    arthur.cgroups.controller_dir takes them)."""
    from arthur.cgroups import controller_dir, memory_limit
    where = controller_dir("self", "memory", found, cgroup_file)
    limit = memory_limit(where)
    if limit is None:
        return None
    anon = _stat_field(os.path.join(limit[1], "memory.stat"),
                       ("total_rss", "rss") if where[0] == 1 else ("anon",))
    return limit[0], anon or 0


def anon_budget():
    """How much anonymous memory this process may hold, in bytes (None: no known bound)."""
    return budget_and_limit()[0]


def budget_and_limit():
    """(anon_budget(), whether a limit bounds it: a memory cgroup's or the data
    segment's, tighter than the machine's available memory)."""
    own = anon_bytes()
    limits = []
    cg = cgroup_headroom()
    if cg is not None:
        limit, charged = cg
        others = max(charged - own - _pinned, 0)
        limits.append(max(limit - others - _pinned, 0))
    data = data_limit()
    if data is not None:
        limits.append(max(data - _pinned, 0))
    avail = available_bytes()
    bounds = limits + ([avail + own] if avail is not None else [])
    if not bounds:
        return None, False
    budget = min(bounds)
    return budget, bool(limits) and min(limits) == budget


def data_limit():
    """This process's data segment limit (RLIMIT_DATA: its heap and private mappings,
    a copy in memory among them), or None. `nsdebug triage` sets one per core's
    analysis (the machine's memory over its jobs): the walk spills under it rather than
    fail, and a copy in memory takes only a share of it."""
    import resource
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_DATA)
    except (OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


def pin(nbytes, owner):
    """`nbytes` of anonymous memory held by a copy of a core until `owner` is
    collected: not the walk's (anon_and_data_bytes), and off every bound (anon_budget)."""
    global _pinned
    _pinned += nbytes
    weakref.finalize(owner, _unpin, nbytes)


def _unpin(nbytes):
    global _pinned
    _pinned -= nbytes


def pinned_bytes():
    """The copies held in memory now, in bytes."""
    return _pinned


def fits_in_memory(nbytes):
    """Whether a copy of `nbytes` may be held in memory nothing can page out: at most
    IN_MEMORY_SHARE of what this process may use, so that the heap walk over it keeps
    the rest (a core is about 115 bytes an object, a walk peaks under 80). With no
    bound known, it may not."""
    budget = anon_budget()
    return budget is not None and nbytes <= IN_MEMORY_SHARE * budget


def dirty_room():
    """Bytes the page cache may still take dirty before the kernel starts writing them
    back as they come (vm.dirty_background_bytes, else its ratio of the available
    memory), less what is dirty now; None where unknown."""
    def setting(name):
        try:
            with open(f"/proc/sys/vm/{name}") as f:
                return int(f.read())
        except (OSError, ValueError):
            return None
    limit = setting("dirty_background_bytes")
    if not limit:
        ratio, avail = setting("dirty_background_ratio"), available_bytes()
        if ratio is None or avail is None:
            return None
        limit = avail * ratio // 100
    return limit - (_kib_field("/proc/meminfo", b"Dirty:") or 0)


def copy_in_memory(nbytes):
    """Whether a copy of `nbytes` (a capture's decompressed core) is better made in
    memory than in a temporary file. A file's pages are cheaper while the kernel keeps
    them as dirty cache (large folios: 128 MiB written, touched and given back in 22-28
    ms here, against 36-40 ms in anonymous memory), but near its background dirty limit
    they go to disk as they come and the writer waits (1.6 GB with 2.2 GB of room:
    0.26-0.97 s, against 0.46-0.49 s; benchmarks/core_copy.py): twice the copy is
    counted, for the heap index the walk then writes. Memory only where it fits
    (fits_in_memory)."""
    room = dirty_room()
    if room is not None and 2 * nbytes <= room:
        return False
    return fits_in_memory(nbytes)
