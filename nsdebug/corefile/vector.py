"""Vectorized reads: gather words at many addresses at once (numpy), for heap walks.

Only bytes the core itself holds are served (objects live in written memory);
an address outside them reads as 0 and is flagged invalid. An arthur .lz4
capture is first decompressed to a temporary file, mapped, then read the same
way: the page cache holds it, not the Python heap.
"""

from __future__ import annotations

import mmap
import os
import tempfile

import numpy as np


class VectorMemory:
    def __init__(self, process):
        mem = process.memory
        src = process.source
        buf = getattr(src, "_map", None) if type(src).__name__ == "FileSource" else None
        if buf is None:
            buf = self._materialize(src)
        self.u8 = np.frombuffer(buf, dtype=np.uint8)
        self.u64 = np.frombuffer(buf, dtype="<u8", count=len(buf) // 8)
        self.u32 = np.frombuffer(buf, dtype="<u4", count=len(buf) // 4)
        segs = [s for s in mem.segments if s.filesz]
        self.start = np.array([s.start for s in segs], dtype=np.uint64)
        self.end = np.array([s.start + s.filesz for s in segs], dtype=np.uint64)
        self.off = np.array([s.offset for s in segs], dtype=np.uint64)

    @staticmethod
    def _materialize(src):
        fd, path = tempfile.mkstemp(prefix="nsdebug-core-")
        os.unlink(path)
        with os.fdopen(fd, "w+b") as f:
            step = 16 << 20
            for pos in range(0, src.size, step):
                f.write(src.read(pos, min(step, src.size - pos)))
            f.flush()
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    def offsets(self, addrs, width):
        """(file offsets, valid mask) for reading `width` bytes at each address."""
        addrs = np.asarray(addrs, dtype=np.uint64)
        i = np.searchsorted(self.start, addrs, side="right").astype(np.int64) - 1
        ic = np.maximum(i, 0)
        valid = (i >= 0) & (addrs + np.uint64(width) <= self.end[ic])
        off = self.off[ic] + (addrs - self.start[ic])
        return off, valid

    def _gather(self, view, shift, addrs, width):
        off, valid = self.offsets(addrs, width)
        valid &= (off & np.uint64(width - 1)) == 0
        out = np.zeros(len(off), dtype=view.dtype)
        out[valid] = view[(off[valid] >> np.uint64(shift)).astype(np.int64)]
        return out, valid

    def q(self, addrs):
        """uint64 at each (8-aligned) address, and which reads were valid."""
        return self._gather(self.u64, 3, addrs, 8)

    def i(self, addrs):
        v, ok = self.q(addrs)
        return v.view(np.int64), ok

    def d(self, addrs):
        """uint32 at each 4-aligned address."""
        return self._gather(self.u32, 2, addrs, 4)

    def b(self, addrs):
        """uint8 at each address."""
        off, valid = self.offsets(addrs, 1)
        out = np.zeros(len(off), dtype=np.uint8)
        out[valid] = self.u8[off[valid].astype(np.int64)]
        return out, valid
