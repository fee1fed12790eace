"""`arthur watch`: capture processes when their memory crosses a threshold, or on a clock.

Each process is polled (/proc/PID/status, its memory cgroup's usage and limit, v1 or
v2); a capture is the fork capture of `arthur capture`, written into a spool with the
same JSON record as a crash's. A threshold captures once when first crossed, then again
only after a further 25% growth, so a leak gives a few captures far enough apart to
diff, not one a tick. `--every` keeps a clock per process. A process that exits is
dropped; `--match` adds the processes whose command line matches, as they appear.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from . import procfs
from .errors import ArthurError
from .cgroups import controller_dir, memory_limit, read_int
from .cgroups import mounts as cgroup_mounts
from .facts import process_facts, python_version_from_maps, record_base
from .interrupts import check as check_interrupt

GROWTH = 1.25                   # a threshold captures again after this much growth


def cgroup_memory(pid, mounts=None):
    """(bytes used, limit in bytes, version) of the memory cgroup of `pid`, the limit the
    smallest on the way up to the root; None where there is no limit or no cgroup."""
    where = controller_dir(pid, "memory", mounts)
    if where is None:
        return None
    version, _base, here = where
    used = read_int(os.path.join(
        here, "memory.usage_in_bytes" if version == 1 else "memory.current"))
    limit = memory_limit(where)
    if used is None or limit is None:
        return None
    return used, limit[0], version


def capture_to_spool(spool, pid, reason, keep):
    """One capture of `pid` into the spool, with its record, keeping the `keep` newest of
    the process. Returns (the capture's Result, the process's capture before it or
    None): the pair `nsdebug diff` compares."""
    import time

    from .capture import capture
    from .spool import share_with
    facts = process_facts(pid)
    maps = procfs.mappings(pid)
    uid, gid = procfs.uid_gid(pid)
    now = time.time()
    stem = spool.stem(facts.get("executable") or facts.get("comm"), pid, now)
    r = capture(pid, os.path.join(spool.path, stem + ".lz4"), log=lambda m: None,
                reason=reason)
    owner = uid if os.geteuid() == 0 else None
    if owner is not None:
        share_with(r.path, owner)
    record = record_base(pid, uid, gid, now, "watch", facts)
    record.update({"reason": reason, "python": python_version_from_maps(maps),
                   "core": stem + ".lz4", "pause_ms": round(r.pause_ms, 3),
                   "raw_size": r.raw_size, "file_size": r.file_size,
                   "warnings": r.warnings})
    spool.write_record(stem, record, owner)
    spool.prune(keep=keep, pid=pid, protect={stem})
    mine = [e for e in spool.entries() if e.record.get("pid") == pid and e.capture]
    older = os.path.join(spool.path, mine[-2].capture) if len(mine) >= 2 else None
    return r, older


@dataclass
class Watched:
    pid: int
    comm: str
    rss_mark: int | None = None         # next RSS that captures (bytes)
    cgroup_mark: float | None = None    # next cgroup use that captures (bytes)
    next_clock: float | None = None     # monotonic time of the next --every capture
    captures: int = 0


class Watcher:
    """The poll loop; `capture_one(pid, reason)` does the capture and its record."""

    def __init__(self, capture_one, rss=None, cgroup_percent=None, every=None,
                 match=None, log=lambda m: None):
        if rss is None and cgroup_percent is None and every is None:
            raise ArthurError("watch needs --rss, --cgroup-percent or --every")
        self.capture_one = capture_one
        self.rss, self.cgroup_percent, self.every = rss, cgroup_percent, every
        self.match = re.compile(match) if match else None
        self.log = log
        self.watched: dict[int, Watched] = {}
        self.mounts = cgroup_mounts()

    def add(self, pid):
        if pid in self.watched or pid == os.getpid():
            return
        if not procfs.exists(pid):
            raise ArthurError(f"no process {pid}")
        comm = procfs.stat(pid)["comm"]
        w = Watched(pid, comm, self.rss)
        if self.every is not None:
            w.next_clock = time.monotonic() + self.every
        self.watched[pid] = w
        self.log(f"arthur: watching pid {pid} ({comm})")

    def _discover(self):
        me = os.getpid()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in self.watched or int(name) == me:
                continue
            pid = int(name)
            try:
                args = procfs.cmdline(pid).replace(b"\0", b" ").decode("utf-8", "replace")
                st = procfs.status(pid)
            except ArthurError:
                continue
            # Not a kernel thread, not a process being traced (a capture's frozen child
            # has its parent's command line), not arthur itself.
            if not args or st.get("TracerPid", "0") != "0" or st.get("State", "")[:1] in "tZ":
                continue
            if "arthur" in args.split(" ")[0:3] or " -m arthur " in f" {args} ":
                continue
            if self.match.search(args):
                try:
                    self.add(pid)
                except ArthurError:
                    pass

    def tick(self):
        """One poll of every watched process; returns the captures made."""
        if self.match is not None:
            self._discover()
        made = []
        for pid, w in list(self.watched.items()):
            reason = self._due(w)
            if reason is False:
                self.log(f"arthur: pid {pid} ({w.comm}) exited; no longer watched")
                del self.watched[pid]
                continue
            if reason:
                check_interrupt()
                try:
                    made.append(self.capture_one(pid, reason))
                    w.captures += 1
                except ArthurError as e:
                    if not procfs.exists(pid):
                        self.log(f"arthur: pid {pid} ({w.comm}) exited during a capture")
                        del self.watched[pid]
                    else:
                        self.log(f"arthur: capture of pid {pid} failed: {e}")
        return made

    def _due(self, w):
        """Why `w` is to be captured now (a string), None if not, False if it is gone."""
        try:
            st = procfs.status(w.pid)
        except ArthurError:
            return False
        if st.get("State", "")[:1] in "ZX":
            return False
        reasons = []
        if self.rss is not None:
            rss = procfs.rss_bytes(w.pid, st)
            if rss >= w.rss_mark:
                reasons.append(f"rss {rss / 2**20:.0f} MiB >= {w.rss_mark / 2**20:.0f} MiB")
                w.rss_mark = int(rss * GROWTH)
        if self.cgroup_percent is not None:
            mem = cgroup_memory(w.pid, self.mounts)
            if mem is not None:
                used, limit, version = mem
                mark = w.cgroup_mark if w.cgroup_mark is not None else \
                    limit * self.cgroup_percent / 100
                if used >= mark:
                    reasons.append(f"cgroup v{version} memory {used / 2**20:.0f} MiB = "
                                   f"{100 * used / limit:.0f}% of {limit / 2**20:.0f} MiB")
                    w.cgroup_mark = used * GROWTH
        if self.every is not None and time.monotonic() >= w.next_clock:
            reasons.append(f"every {self.every:g} s")
            w.next_clock = time.monotonic() + self.every
        return "; ".join(reasons) or None

    def run(self, interval=0.2, duration=None):
        """Poll until every process is gone (and no --match), or `duration` passed."""
        end = time.monotonic() + duration if duration else None
        while True:
            check_interrupt()
            self.tick()
            if not self.watched and self.match is None:
                return
            if end is not None and time.monotonic() >= end:
                return
            time.sleep(interval)
