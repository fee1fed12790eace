"""What a capture's JSON record says of its process, read from /proc while it exists."""

from __future__ import annotations

import os
import re

from . import __version__, procfs
from .errors import ArthurError


def record_base(pid, uid, gid, when, mode, facts):
    """The keys every spool record has (docs/formats.md), before its mode's own."""
    return {"pid": pid, "uid": uid, "gid": gid, "time": when, "mode": mode,
            "tool": "arthur", "version": __version__, "core": None, "warnings": [],
            **facts}


def process_facts(pid):
    """What /proc says of a process for its capture's record (a crashed one while the
    kernel holds it)."""
    facts = {}
    try:
        facts["executable"] = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        pass
    try:
        facts["command_line"] = [a.decode("utf-8", "replace")
                                 for a in procfs.cmdline(pid).split(b"\0") if a]
    except ArthurError:
        pass
    try:
        st = procfs.status(pid)
        facts["comm"] = st.get("Name")
        facts["rss"] = procfs.rss_bytes(pid, st)
        facts["threads"] = int(st.get("Threads", "0"))
    except (ArthurError, ValueError):
        pass
    facts["started_at"] = procfs.started_at(pid)
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            facts["cgroup"] = f.read().strip()
        ids = re.findall(r"[0-9a-f]{64}", facts["cgroup"])
        facts["container_id"] = ids[-1] if ids else None
    except OSError:
        pass
    return facts


def python_version_from_maps(maps):
    """'3.12' from a mapped libpython3.12.so or python3.12 executable, else None."""
    for m in maps:
        hit = re.search(r"(?:libpython|/python)(3\.\d+)", m.path)
        if hit:
            return hit.group(1)
    return None
