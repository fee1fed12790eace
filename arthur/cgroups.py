"""The cgroup a process is in, v1 or v2: where a controller's files for it are, the
CPUs its quota leaves, and the tightest memory limit over it (watch.py's threshold,
nsdebug's heap walk's budget)."""

from __future__ import annotations

import os


def mounts():
    """{'v2': mount point of cgroup2, controller name: mount point of that v1 controller
    (one per mount, e.g. 'cpu' and 'cpuacct' for a "cpu,cpuacct" mount)}."""
    out = {}
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields, kind = left.split(), right.split()
                if not kind:
                    continue
                if kind[0] == "cgroup2":
                    out.setdefault("v2", fields[4])
                elif kind[0] == "cgroup":
                    for name in kind[-1].split(","):
                        out.setdefault(name, fields[4])
    except OSError:
        pass
    return out


NO_LIMIT_V1 = 1 << 60    # v1 writes "no limit" as the largest page-aligned number


def controller_dir(pid, controller, found=None, cgroup_file=None):
    """(version, the hierarchy's mount point, the directory of `pid`'s cgroup in it) for
    a controller ("memory", "cpu"): its v1 hierarchy when it has one, else v2; None when
    the process is in none (or /proc says nothing). `found`: mounts(); `cgroup_file`:
    another file than /proc/PID/cgroup to read."""
    found = found if found is not None else mounts()
    try:
        with open(cgroup_file or f"/proc/{pid}/cgroup") as f:
            lines = [ln.split(":", 2) for ln in f.read().splitlines() if ln.count(":") >= 2]
    except OSError:
        return None
    v1 = next((path for _n, names, path in lines if controller in names.split(",")), None)
    v2 = next((path for n, names, path in lines if n == "0" and names == ""), None)
    if v1 is not None and controller in found:
        return 1, found[controller], os.path.join(found[controller], v1.lstrip("/"))
    if v2 is not None and "v2" in found:
        return 2, found["v2"], os.path.join(found["v2"], v2.lstrip("/"))
    return None


def read_int(path):
    """The number a cgroup file holds; None for "max", an unreadable file or no number."""
    try:
        with open(path) as f:
            text = f.read().strip()
        return None if text == "max" else int(text)
    except (OSError, ValueError):
        return None


def memory_limit(where):
    """(limit in bytes, the directory whose limit it is) of the smallest memory limit over
    a cgroup and those above it, `where` being controller_dir()'s answer for "memory";
    None without a limit."""
    if where is None:
        return None
    version, base, d = where
    name = "memory.limit_in_bytes" if version == 1 else "memory.max"
    best = None
    while True:
        value = read_int(os.path.join(d, name))
        if value is not None and value < NO_LIMIT_V1 and (best is None or value < best[0]):
            best = (value, d)
        if os.path.normpath(d) == os.path.normpath(base) or d == os.path.dirname(d):
            break
        d = os.path.dirname(d)
    return best


def spare_cpus(pid="self"):
    """The CPUs `pid` may run on: its affinity, no more than the smallest CPU quota of
    its cgroup and those above it (v2 cpu.max, v1 cpu.cfs_quota_us over
    cpu.cfs_period_us, rounded up); at least 1."""
    try:
        n = len(os.sched_getaffinity(0 if pid == "self" else pid))
    except OSError:
        n = os.cpu_count() or 1
    where = controller_dir(pid, "cpu")
    if where is not None:
        version, base, d = where
        while True:
            quota = _quota(version, d)
            if quota:
                n = min(n, quota)
            if os.path.normpath(d) == os.path.normpath(base):
                break
            d = os.path.dirname(d)
    return max(1, n)


def _quota(version, d):
    """CPUs the quota in directory d allows (rounded up), None for no quota."""
    try:
        if version == 2:
            with open(os.path.join(d, "cpu.max")) as f:
                quota, period = f.read().split()
            return None if quota == "max" else -(-int(quota) // int(period))
        with open(os.path.join(d, "cpu.cfs_quota_us")) as f:
            quota = int(f.read())
        with open(os.path.join(d, "cpu.cfs_period_us")) as f:
            period = int(f.read())
        return -(-quota // period) if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None
