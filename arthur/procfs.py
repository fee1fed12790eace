"""What /proc says about a process: threads, mappings, status, auxv, command line."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import NotPermitted, TargetGone


@dataclass
class Mapping:
    start: int
    end: int
    perms: str          # "rwxp"
    offset: int
    inode: int
    path: str           # "" for anonymous, "[stack]", "/usr/lib/..."

    @property
    def readable(self):
        return self.perms[0] == "r"

    @property
    def writable(self):
        return self.perms[1] == "w"

    @property
    def is_file(self):
        return self.path.startswith("/") and self.inode != 0

    @property
    def size(self):
        return self.end - self.start


def _read(pid, name, binary=False):
    path = f"/proc/{pid}/{name}"
    try:
        with open(path, "rb" if binary else "r") as f:
            return f.read()
    except FileNotFoundError:
        raise TargetGone(f"process {pid} does not exist") from None
    except ProcessLookupError:
        raise TargetGone(f"process {pid} exited") from None
    except PermissionError:
        raise NotPermitted(f"not permitted to read {path} (run as the process's user or "
                           f"root)") from None


def exists(pid):
    return os.path.exists(f"/proc/{pid}")


def thread_ids(pid):
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        raise TargetGone(f"process {pid} does not exist") from None


def mappings(pid):
    out = []
    for line in _read(pid, "maps").splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        lo, hi = parts[0].split("-")
        path = parts[5] if len(parts) > 5 else ""
        out.append(Mapping(int(lo, 16), int(hi, 16), parts[1], int(parts[2], 16),
                           int(parts[4]), path))
    return out


def stat(pid):
    """Fields of /proc/pid/stat after the command name: state, ppid, pgrp, session, ..."""
    raw = _read(pid, "stat")
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2:].split()
    return {"comm": comm, "state": rest[0], "ppid": int(rest[1]), "pgrp": int(rest[2]),
            "session": int(rest[3]), "nice": int(rest[16]), "flags": int(rest[6]),
            "exit_signal": int(rest[35]) if len(rest) > 35 else None,
            "starttime": int(rest[19]) if len(rest) > 19 else None}


def started_at(pid):
    """When the process started, in seconds since the epoch (its start in clock ticks
    after boot, plus the boot time), or None when /proc cannot say."""
    try:
        ticks = stat(pid)["starttime"]
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (TargetGone, OSError, StopIteration, ValueError):
        return None
    if ticks is None:
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


PF_EXITING = 0x4


def thread_exiting(pid, tid):
    """Whether thread `tid` of `pid` is gone or on its way out (a zombie, dead, or
    flagged PF_EXITING): the kernel refuses to trace such a thread with EPERM, which
    says nothing about permissions then."""
    try:
        st = stat(f"{pid}/task/{tid}")
    except (TargetGone, OSError):
        return True
    return st["state"] in "XZx" or bool(st["flags"] & PF_EXITING)


def children(pid):
    """Pids whose parent is `pid` (every process's stat is read: /proc/PID/task/*/children
    is not in every kernel)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(d))
    return sorted(out)


def is_zombie_child(child, parent):
    """`child` is a zombie (or about to be one) whose parent is `parent`."""
    try:
        st = stat(child)
    except (TargetGone, NotPermitted):
        return False
    return st["ppid"] == parent and st["state"] in "ZX"


def leftover_children(pid):
    """Zombies that a killed arthur run left under `pid`: children that died with no
    exit signal (clone flags 0, as arthur forks) and carry the target's own name."""
    try:
        name = stat(pid)["comm"]
    except (TargetGone, NotPermitted):
        return []
    out = []
    for c in children(pid):
        try:
            st = stat(c)
        except (TargetGone, NotPermitted):
            continue
        if st["state"] == "Z" and st["exit_signal"] == 0 and st["comm"] == name:
            out.append(c)
    return out


def status(pid):
    out = {}
    for line in _read(pid, "status").splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def uid_gid(pid):
    st = status(pid)
    return int(st["Uid"].split()[0]), int(st["Gid"].split()[0])


def cmdline(pid):
    return _read(pid, "cmdline", binary=True)


def auxv(pid):
    return _read(pid, "auxv", binary=True)


def rss_bytes(pid, st=None):
    """Resident bytes, from /proc/PID/status (or its parsed `st` already at hand)."""
    st = status(pid) if st is None else st
    return int(st.get("VmRSS", "0 kB").split()[0]) * 1024


def anonymous_kb(pid):
    """{mapping start: kB of anonymous (written, copy-on-write) pages} from smaps."""
    out = {}
    start = None
    for line in _read(pid, "smaps").splitlines():
        head = line.split(None, 1)[0] if line else ""
        if "-" in head and not head.endswith(":"):
            start = int(head.split("-")[0], 16)
        elif head == "Anonymous:" and start is not None:
            out[start] = int(line.split()[1])
    return out


PAGE = 4096
# The top byte of a pagemap entry (little-endian, its 8th byte): bit 7 "present in
# RAM", bit 6 "swapped". Shifted down: 2 present, 1 swapped, 0 neither (never touched,
# or dropped). Both bits are given to any process that may read the target's memory;
# only the frame numbers need CAP_SYS_ADMIN.
_PAGE_STATE = bytes(b >> 6 for b in range(256))
_PAGES_PER_READ = 1 << 16                # 512 KiB of pagemap entries


def page_states(pid, ranges):
    """[(start, one byte per page: 2 in RAM, 1 swapped out, 0 neither)] for each
    page-aligned (start, end), from /proc/PID/pagemap; a range past what the kernel
    answers reads as pages in neither state."""
    try:
        fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    except FileNotFoundError:
        raise TargetGone(f"process {pid} does not exist") from None
    except PermissionError:
        raise NotPermitted(f"not permitted to read /proc/{pid}/pagemap") from None
    try:
        out = []
        for start, end in ranges:
            pages = (end - start) // PAGE
            parts = []
            for i in range(0, pages, _PAGES_PER_READ):
                n = min(_PAGES_PER_READ, pages - i)
                raw = os.pread(fd, n * 8, (start // PAGE + i) * 8)
                part = raw[7::8].translate(_PAGE_STATE)
                parts.append(part + bytes(n - len(part)))
            out.append((start, b"".join(parts)))
        return out
    finally:
        os.close(fd)
