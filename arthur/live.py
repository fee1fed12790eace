"""A running process read as a core without writing one: the frozen fork of a capture,
held while a reader works, its memory read through /proc/CHILD/mem.

The target is paused only for the fork (capture.freeze), as `arthur capture`; the
child is traced with PTRACE_O_EXITKILL, so it dies with the reader whatever ends it,
and the target reaps it with one injected wait4() at release (or, if the reader was
killed, at the next capture or `arthur reap`). The core's headers and notes are built
in memory exactly as the capture's writer builds them; its segments' bytes are read
from the child on demand. Mapped files are opened through the child's map_files: the
very files mapped, also inside a container.
"""

from __future__ import annotations

import bisect
import os
import time

from . import __version__, procfs
from .capture import (MemoryReader, Session, held_signals, mapped_files, plan_segments,
                      freeze)
from .corewriter import build_notes, core_layout
from .errors import ArthurError, TargetGone

# The child's memory is read in pieces of this size, kept (at most CACHED of them): a
# stack walk makes thousands of 8-byte reads, one pread each would cost more than they.
PIECE = 16 << 10
CACHED = 4096


class LiveSnapshot:
    """`snap.read(offset, n)` reads the core the frozen child would be; `release()`
    (idempotent) ends the child. `pause_ms` is what the target was held for."""

    def __init__(self, pid, log=lambda msg: None):
        if not procfs.exists(pid):
            raise TargetGone(f"no process {pid}")
        if pid == os.getpid():
            raise ArthurError("a process cannot read itself live")
        self.pid = pid
        self.sess = Session(pid, log)
        self.leftovers = procfs.leftover_children(pid)
        self.reader = None
        self.released = False
        try:
            self.sess.injector()
            with held_signals():
                _t0, maps, proc, mode, self.fork_ms, self.pause_ms = freeze(
                    self.sess, pid, "fork")
                if mode != "fork":
                    self.sess.thaw()
                    raise ArthurError(f"cannot fork pid {pid} ({'; '.join(self.sess.warnings)})"
                                      f": it was left running")
            self.child = self.sess.child
            self.held_since = time.monotonic()
            self.reader = MemoryReader(self.child)
            self.segments = plan_segments(maps, self.reader.head,
                                          procfs.anonymous_kb(self.child))
            self.threads = len(proc.threads)
            meta = {"tool": "arthur", "version": __version__, "pid": pid, "mode": "live",
                    "pause_ms": round(self.pause_ms, 3), "fork_ms": round(self.fork_ms, 3),
                    "captured_at": time.time(), "threads": self.threads,
                    "compressed": False, "files_kept": 0}
            notes = build_notes(proc, self.segments, meta)
            self.head, offsets, self.size = core_layout(self.segments, notes)
            # Data segments by file offset, for reads of the virtual core.
            held = [(off, s) for off, s in zip(offsets, self.segments) if s.filesz]
            self._starts = [off for off, _s in held]
            self._held = held
            self.files = mapped_files(maps, self.child)
            self._cache = {}
        except BaseException:
            self.release()
            raise

    def read(self, offset, n, cache=True):
        """Up to n bytes of the virtual core at `offset` (fewer at its end); `cache`
        False for one long read (a copy of it all) that the piece cache would churn."""
        if offset < 0 or n <= 0 or offset >= self.size:
            return b""
        n = min(n, self.size - offset)
        parts = []
        while n > 0:
            if offset < len(self.head):
                k = min(n, len(self.head) - offset)
                parts.append(self.head[offset:offset + k])
            else:
                i = bisect.bisect_right(self._starts, offset) - 1
                off, seg = self._held[i] if i >= 0 else (0, None)
                if seg is None or offset >= off + seg.filesz:
                    # Between segments (page padding): zeros up to the next one.
                    nxt = self._starts[i + 1] if i + 1 < len(self._starts) else self.size
                    k = min(n, nxt - offset)
                    parts.append(bytes(k))
                else:
                    k = min(n, off + seg.filesz - offset)
                    parts.append(self._memory(seg, offset - off, k) if cache else
                                 self.reader.read(seg.start + offset - off, k))
            offset += k
            n -= k
        return b"".join(parts)

    def _memory(self, seg, rel, k):
        """k bytes at `rel` into segment `seg` (within it), through the piece cache."""
        parts = []
        while k > 0:
            i, lo = divmod(rel, PIECE)
            data = self._cache.get((seg.start, i))
            if data is None:
                if len(self._cache) >= CACHED:
                    self._cache.clear()
                data = self._cache[(seg.start, i)] = self.reader.read(
                    seg.start + i * PIECE, min(PIECE, seg.filesz - i * PIECE))
            take = min(k, len(data) - lo)
            parts.append(data[lo:lo + take])
            rel += take
            k -= take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    @property
    def held_seconds(self):
        return time.monotonic() - self.held_since

    def release(self):
        """Kill the child and have the target reap it; returns the ms the target was
        held for the reaping (None if nothing was to do)."""
        if self.released:
            return None
        self.released = True
        if self.reader is not None:
            self.reader.close()
        with held_signals():
            try:
                return self.sess.kill_child(self.leftovers)
            finally:
                self.sess.thaw()
