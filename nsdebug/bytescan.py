"""Rows of a table found by one field's bytes, without decoding any row."""

from __future__ import annotations


def aligned_finds(raw, want, stride, phase=0):
    """Each offset in `raw` where the bytes `want` start at `phase` modulo `stride`: the
    rows (of `stride` bytes) whose field at `phase` holds them. bytes.find runs in C;
    a match astride two rows is skipped."""
    at = raw.find(want)
    while at >= 0:
        if at % stride == phase:
            yield at
        at = raw.find(want, at + 1)
