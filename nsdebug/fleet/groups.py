"""Crash groups: the cores of one signature together, with how often, since when, in
which executables and versions, and one merged stack to read."""

from __future__ import annotations

import os

from ..record import Factory, record
from .signature import signature


@record
class CrashGroup:
    signature: str
    count: int
    first_seen: float | None      # seconds since the epoch
    last_seen: float | None
    executables: list
    versions: list
    cores: list                   # paths, oldest first
    example: str                  # the newest core: its stack is the one shown
    stack: list                   # the example's frames, innermost first, as text
    frames: list = Factory(list)  # the frames the signature names
    crash: str | None = None      # the example's crash line
    times: list = Factory(list)   # when each core was taken, as `cores`


def crash_groups(entries, rules=None):
    """[CrashGroup], commonest first, of the entries (fleet.Entry) that crashed."""
    by_sig = {}
    for e in entries:
        s = e.summary
        sig = s.get("signal") or {}
        if not sig.get("thread"):
            continue                         # no thread took a fatal signal: no crash
        text, frames = signature(sig.get("name") or "?", s.get("stack") or [],
                                 s.get("overflow", False), rules)
        by_sig.setdefault(text, []).append((e, frames))
    out = []
    for text, members in by_sig.items():
        members.sort(key=lambda m: (m[0].time or 0, m[0].path))
        newest = members[-1][0]
        times = [m[0].time for m in members if m[0].time is not None]
        out.append(CrashGroup(
            text, len(members), min(times) if times else None, max(times) if times else None,
            sorted({m[0].summary.get("executable") or "?" for m in members}),
            sorted({m[0].summary.get("python") or "?" for m in members},
                   key=_version_key),
            [m[0].path for m in members], newest.path,
            [frame_text(f) for f in newest.summary.get("stack") or []], members[-1][1],
            newest.summary.get("crash"), [m[0].time for m in members]))
    out.sort(key=lambda g: (-g.count, g.signature))
    return out


def frame_text(f):
    """A frame with its place, as the details show it."""
    place = f"{os.path.basename(f['file'])}:{f['line']}" if f.get("file") else None
    if f.get("kind") == "python":
        return f"{f.get('function')} ({place})"
    name = f.get("function") or f"{f.get('pc', 0):#x}"
    where = os.path.basename(f.get("module") or "?")
    text = f"{name} in {where}" + (" (inlined)" if f.get("inlined") else "")
    return f"{text} at {place}" if place else text


def _version_key(v):
    try:
        return tuple(int(x) for x in v.split(".")[:3])
    except ValueError:
        return (999,)
