"""Address ranges as sorted lists of (start, end) pairs: merged, intersected, subtracted;
and the ranges of the threads' stacks."""

from __future__ import annotations


def merge(ranges):
    """The ranges sorted, with overlapping or adjacent ones joined."""
    out = []
    for s, e in sorted(tuple(r) for r in ranges):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        elif s < e:
            out.append((s, e))
    return out


def intersect(ranges, within):
    """The parts of `ranges` inside `within`."""
    out = []
    within = merge(within)
    for s, e in ranges:
        for a, b in within:
            lo, hi = max(s, a), min(e, b)
            if lo < hi:
                out.append((lo, hi))
    return out


def subtract(ranges, minus):
    """The parts of `ranges` outside `minus`."""
    out = []
    minus = merge(minus)
    for s, e in ranges:
        for a, b in minus:
            if b <= s or a >= e:
                continue
            if a > s:
                out.append((s, a))
            s = max(s, b)
            if s >= e:
                break
        if s < e:
            out.append((s, e))
    return out


def length(ranges):
    return sum(e - s for s, e in ranges)


def thread_stack_ranges(process):
    """The core's segments that hold a thread's stack pointer."""
    out = []
    for th in process.threads:
        seg = process.memory.find_segment(th.sp)
        if seg is not None:
            out.append((seg.start, seg.end))
    return out
