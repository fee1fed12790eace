"""Vectorized reads: gather words at many addresses at once (numpy), for heap walks.

Only bytes the core itself holds are served (objects live in written memory);
an address outside them reads as 0 and is flagged invalid. A source with no mapping
of its own (an arthur .lz4 capture, a live process) is first copied, up to the end
of its last segment, into anonymous memory where it fits, else a file with no name,
mapped (copy_in_memory decides): the kernel holds it, not the Python heap; and its
scalar reads are served from that copy too from then on (AddressSpace.use_buffer).
"""

from __future__ import annotations

import mmap
import os
import tempfile

import numpy as np

from ..membudget import copy_in_memory, pin
from ..parallel import halves

try:
    from . import _vector      # compiled at install (setup.py); numpy below otherwise
except ImportError:            # pragma: no cover - a build without a C compiler
    _vector = None


ZERO = bytes(1 << 16)
GATHER_IN_TWO = 1 << 15     # addresses from which a gather uses two CPUs
CHASE_PIECE = 1 << 20       # nodes a linked list's chase takes at a time (8 MiB)


def memory_copy(size):
    """A private anonymous mapping of `size` bytes for a copy of a core, counted as held
    by a copy (membudget.pin) while it lives. Its pages are written in place, each
    first touched by its writer (the compiled copy's threads ask for theirs a piece at a
    time before they write it: LZ4Source._fill); against a memfd written with pwrite and
    mapped, the 14.4M-object capture's copy here: 0.45 s to make, 0.01 s to have every
    page mapped and 0.12 s to give back, against 0.42, 0.18 and 0.37 s."""
    buf = mmap.mmap(-1, max(size, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    pin(len(buf), buf)
    return buf


def copy_file():
    """A new temporary file's descriptor for a copy that is not made in memory
    (copy_in_memory), its name already gone: the copy lives in the page cache only as
    long as it is open or mapped, and the kernel may write its pages out and drop them."""
    fd, path = tempfile.mkstemp(prefix="nsdebug-core-")
    try:
        os.unlink(path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def mapped_copy(fd, parts=()):
    """The copy the temporary file `fd` holds, mapped read-only, with each (offset,
    length, descriptor) of `parts` mapped over its place: the copy as one range of
    addresses, whichever file holds each piece (_vector.overlay)."""
    buf = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    try:
        for offset, length, part in parts:
            _vector.overlay(buf, offset, length, part)
    except BaseException:
        buf.close()         # a failed MAP_FIXED may have unmapped the place: not read again
        raise
    return buf


def _all_zeros(data):
    """Whether a piece (of at most len(ZERO) bytes to be found so) is all zeros."""
    return len(data) <= len(ZERO) and data == ZERO[:len(data)]


def materialize(pieces, upto):
    """The bytes `pieces` yields ((offset, bytes) in order, up to `upto`) in a copy: in
    memory where it fits (memory_copy), else a temporary file, mapped read-only. Pieces
    of zeros are not written (the copy reads as zeros there)."""
    if copy_in_memory(upto):
        buf = memory_copy(upto)
        for off, data in pieces:
            if not _all_zeros(data):
                buf[off:off + len(data)] = data
        return buf
    fd = copy_file()
    with os.fdopen(fd, "w+b", buffering=8 << 20) as f:
        for off, data in pieces:
            if _all_zeros(data):
                continue
            if f.tell() != off:
                f.seek(off)
            f.write(data)
        f.truncate(max(upto, 1))
        f.flush()
        return mapped_copy(f.fileno())


def copy_extent(mem):
    """How much of a source without a mapping its copy holds: up to the end of the
    last segment with bytes in the core."""
    return max((s.offset + s.filesz for s in mem.segments if s.filesz), default=0)


def segment_arrays(memory):
    """(starts, ends, file offsets) of an AddressSpace's segments with bytes in the core,
    as uint64 arrays: the segments every bulk read (and C kernel) goes by."""
    segs = [s for s in memory.segments if s.filesz]
    return (np.array([s.start for s in segs], dtype=np.uint64),
            np.array([s.start + s.filesz for s in segs], dtype=np.uint64),
            np.array([s.offset for s in segs], dtype=np.uint64))


def file_offsets(start, end, off, addrs, width, size=None):
    """(file offsets, valid mask) for reading `width` bytes at each of `addrs` (uint64),
    from segment arrays alone, no byte read; 0 where not valid. Given the core's `size`
    (a core cut short has segments past its end), reads past it are not valid either;
    then in C where it is built (the 14.4M-object capture's snapshot: 0.18 s for its 5M
    strs' offsets, against 0.50 in numpy)."""
    if size is not None and _vector is not None:
        out = np.empty(len(addrs), dtype=np.int64)
        _vector.locate_sized(size, start, end, off, addrs, width, out)
        valid = out >= 0
        np.maximum(out, 0, out=out)             # -1 where not valid: 0
        return out.view(np.uint64), valid
    if not len(start):
        return np.zeros(len(addrs), dtype=np.uint64), np.zeros(len(addrs), dtype=bool)
    i = np.searchsorted(start, addrs, side="right").astype(np.int64) - 1
    ic = np.maximum(i, 0)
    # end - addr, not addr + width: an address near 2**64 must not wrap around.
    seg_end = end[ic]
    valid = (i >= 0) & (addrs < seg_end) & (seg_end - addrs >= np.uint64(width))
    at = off[ic] + (addrs - start[ic])
    if size is not None:            # size - at, not at + width: no wrap around either
        valid &= (at < np.uint64(size)) & (np.uint64(size) - at >= np.uint64(width))
    return np.where(valid, at, np.uint64(0)), valid


def within(starts, ends, addrs):
    """Whether each of `addrs` (uint64) lies in one of the sorted, disjoint ranges
    [starts, ends): the lookup every read makes of its segment, with no bytes behind the
    ranges (each its own offsets from 0). In C where it is built, which keeps the last
    range found (a walk's addresses cluster): the 14.4M-object core's objects against its
    1,620 pymalloc arenas, 0.05 s against 0.17-0.27 s for numpy's search (best of three
    each, in one process), and 0.16-0.33 s against 0.46-0.80 s in the walk itself."""
    if not len(starts):
        return np.zeros(len(addrs), dtype=bool)
    starts = np.ascontiguousarray(starts, dtype=np.uint64)
    ends = np.ascontiguousarray(ends, dtype=np.uint64)
    longest = int((ends - starts).max())
    zeros = np.zeros(len(starts), dtype=np.uint64)
    return file_offsets(starts, ends, zeros, np.ascontiguousarray(addrs, dtype=np.uint64), 1,
                        size=max(longest, 1))[1]


def _views_of(buf):
    """(buf, its bytes, its words, its 32-bit words), the arrays read-only (a copy in
    memory is a writable mapping)."""
    views = (np.frombuffer(buf, dtype=np.uint8),
             np.frombuffer(buf, dtype="<u8", count=len(buf) // 8),
             np.frombuffer(buf, dtype="<u4", count=len(buf) // 4))
    for view in views:
        view.flags.writeable = False
    return (buf,) + views


class VectorMemory:
    """The core's bytes as numpy arrays, read at many addresses at once: u64/i64/u32/u8
    (as AddressSpace's scalar reads are named) take an array of addresses and give the
    values and which reads were valid."""

    compiled = _vector is not None      # whether its loops run in C, the GIL let go

    def __init__(self, process):
        self._process = process
        self._views = None
        self._view()                    # the copy made now, where there is none yet
        self.start, self.end, self.off = segment_arrays(process.memory)

    @classmethod
    def over(cls, buf, start, end, off):
        """A VectorMemory of `buf` alone, with these segments (arrays: their addresses,
        and where each starts in `buf`): a window of a capture (corefile.windows)."""
        vm = cls.__new__(cls)
        vm._process = None
        vm._views = _views_of(buf)
        vm.start, vm.end, vm.off = start, end, off
        return vm

    def _view(self):
        """(the mapping, its bytes, its words, its 32-bit words): the source's own mapping,
        or its copy, made again if it was given back (release)."""
        if self._views is None:
            mem, source = self._process.memory, self._process.source
            buf = source.buffer
            if buf is None:
                buf = source.materialize(copy_extent(mem))
                mem.use_buffer(buf)
            self._views = _views_of(buf)
        return self._views

    @property
    def mapped(self):
        """Whether the core's bytes are at hand (not given back by release)."""
        return self._views is not None

    def per_window(self, addrs, reach, fn, put=None):
        """fn(vm, addrs), for reads at `addrs` that go no further than `reach` bytes from
        each address: here all at once, over the whole core (a WindowedMemory makes them
        a piece of a capture at a time, with no copy of it all). With `put`, the result
        is given to put(positions, result) (here once, positions all of them) instead
        of returned."""
        made = fn(self, addrs)
        if put is None:
            return made
        put(slice(None), made)

    @property
    def buf(self):
        """The mapping: a slice of it is bytes at once."""
        return self._view()[0]

    @property
    def data(self):
        """The core file, byte by byte."""
        return self._view()[1]

    @property
    def _words(self):
        return self._view()[2]

    @property
    def _dwords(self):
        return self._view()[3]

    def release(self):
        """Give back the copy of a core with no mapping of its own (a capture's, a live
        process's) now, not at the process's end: a command does once it has read all it
        needs of it, so that what it does next (the heap index, a snapshot's file) takes
        the pages the copy had, not new ones (on a VM that hands free memory back to its
        host, new pages cost the most). Read again, the copy is made again. A plain core
        keeps its mapping."""
        if self._views is None or self._process is None or \
                self._process.source.buffer is not None:
            return
        self._views = None
        self._process.memory.use_buffer(None)       # its reads: from the blocks again
        self._process.source.drop_copy()

    def segments(self):
        """(core bytes, segment starts, ends, file offsets): the arguments every C kernel
        that reads the core at addresses takes first."""
        return self.data, self.start, self.end, self.off

    def offsets(self, addrs, width):
        """(file offsets, valid mask) for reading `width` bytes at each address."""
        addrs = np.ascontiguousarray(addrs, dtype=np.uint64)
        return file_offsets(self.start, self.end, self.off, addrs, width, len(self.data))

    def _gather(self, view, shift, addrs, width):
        if _vector is not None:
            addrs = np.ascontiguousarray(addrs, dtype=np.uint64)
            out = np.empty(len(addrs), dtype=view.dtype)
            ok = np.empty(len(addrs), dtype=np.bool_)
            segs = self.segments()
            # A read per address, each a likely cache miss: two CPUs halve a large batch.
            halves(lambda lo, hi: _vector.gather(*segs, addrs[lo:hi], width, out[lo:hi],
                                                 ok[lo:hi]),
                   len(addrs), GATHER_IN_TWO)
            return out, ok
        off, valid = self.offsets(addrs, width)
        valid &= (off & np.uint64(width - 1)) == 0
        out = np.zeros(len(off), dtype=view.dtype)
        out[valid] = view[(off[valid] >> np.uint64(shift)).astype(np.int64)]
        return out, valid

    def u64(self, addrs):
        """uint64 at each (8-aligned) address, and which reads were valid."""
        return self._gather(self._words, 3, addrs, 8)

    def i64(self, addrs):
        v, ok = self.u64(addrs)
        return v.view(np.int64), ok

    def u32(self, addrs):
        """uint32 at each 4-aligned address."""
        return self._gather(self._dwords, 2, addrs, 4)

    def u8(self, addrs):
        """uint8 at each address."""
        if _vector is not None:
            return self._gather(self.data, 0, addrs, 1)
        off, valid = self.offsets(addrs, 1)
        out = np.zeros(len(off), dtype=np.uint8)
        out[valid] = self.data[off[valid].astype(np.int64)]
        return out, valid

    def chase(self, head, next_off, mask=~0, limit=1 << 28):
        """The nodes of a circular linked list from `head` (not included): each node's
        next pointer at `next_off`, masked. (addresses, whether it came back to head)."""
        mask &= (1 << 64) - 1
        if _vector is not None:
            # A piece at a time, each going on from the last node found: one array as long
            # as the longest list could be (a sixteenth of the core) was address space
            # that a data segment limit counts (830 MiB for a 1.7 GB core), for a list
            # of thousands.
            limit = min(limit, max(1, len(self.data) // 16))
            pieces, node = [], head
            while True:
                out = np.empty(min(CHASE_PIECE, limit), dtype=np.uint64)
                n = _vector.chase(*self.segments(), head, next_off, mask, len(out), out,
                                  node)
                closed = n >= 0
                k = n if closed else -n - 1
                pieces.append(out[:k].copy() if k < len(out) else out)
                limit -= k
                if closed or k < len(out) or limit <= 0:
                    break           # back at the head, a bad or NULL link, or the limit
                node = int(out[-1])
            return (pieces[0] if len(pieces) == 1 else np.concatenate(pieces)), closed
        nodes, node = [], head
        while len(nodes) < limit:
            v, ok = self.u64(np.array([node + next_off], dtype=np.uint64))
            nxt = int(v[0]) & mask
            if not ok[0] or nxt == 0:
                return np.array(nodes, dtype=np.uint64), False
            if nxt == head:
                return np.array(nodes, dtype=np.uint64), True
            nodes.append(nxt)
            node = nxt
        return np.array(nodes, dtype=np.uint64), False
