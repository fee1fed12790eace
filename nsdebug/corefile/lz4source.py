"""Byte source over an arthur .lz4 capture: random reads, bounded memory, no full decompression.

The container format lives in one place, arthur/lz4core.py; this wraps its
reader in nsdebug's error type.
"""

from __future__ import annotations

import os

from ..errors import CoreFileError
from ..freemem import release_free_memory
from .source import FileSource

CACHE_BYTES = 32 << 20   # decompressed blocks kept at most
TASK_BYTES = 1 << 20     # decompressed per task when the whole core is copied
AHEAD = 4                # tasks decompressed ahead of the copy's writer at most
# Of a copy in memory, given its pages in one call at a time, then decompressed into
# (LZ4Source._fill). The 48M-object capture's 5.4 GB copy, median of 4 runs each: 1.41 s
# with 4 MiB (1 MiB 1.49, 32 MiB 1.44; a thread's whole share at once 2.1-4.1 s: its
# pages zeroed long before they are written), against 1.76 s faulted page by page.
POPULATE_BYTES = 4 << 20
COPY_THREADS = 2         # threads making the copy in C, each into a file of its own


# _vector.lz4_blocks' reasons, as the container reader words them (arthur/lz4core.py).
BAD_BLOCK = {1: "arthur block index points past the data at block {} (truncated?)",
             2: "block {} is stored raw with the wrong size",
             3: "block {} is corrupt",
             4: "block {}: no room for it in the buffer"}


def lz4_decoder():
    """The address of LZ4_decompress_safe for _vector.lz4_blocks, or None (then the
    copy is made through lz4's Python API). The lz4 package's block module exports it
    (its bundled liblz4); else the system's liblz4."""
    try:
        from . import _vector
        _vector.lz4_blocks
        import ctypes
    except (ImportError, AttributeError):
        return None
    try:
        import lz4.block._block as bundled
        libs = [bundled.__file__, "liblz4.so.1"]
    except ImportError:
        libs = ["liblz4.so.1"]
    for lib in libs:
        try:
            fn = ctypes.CDLL(lib).LZ4_decompress_safe
        except (OSError, AttributeError):
            continue
        return ctypes.cast(fn, ctypes.c_void_p).value
    return None


def _pwrite_all(fd, data, at):
    """All of `data` (a memoryview) written into file `fd` at offset `at`."""
    while data:
        written = os.pwrite(fd, data, at)
        data, at = data[written:], at + written


def _copy_range(src, dst, offset, length):
    """The first `length` bytes of file `src` written into file `dst` at `offset`."""
    done = 0
    while done < length:
        piece = os.pread(src, min(TASK_BYTES, length - done), done)
        if not piece:
            raise CoreFileError("a capture's copy came out short")
        _pwrite_all(dst, memoryview(piece), offset + done)
        done += len(piece)


class LZ4Source:
    """Reads the uncompressed core inside an arthur container, one block at a time."""

    def __init__(self, path):
        from arthur.lz4core import ContainerError, ContainerReader
        self.path = path
        self._error = ContainerError
        self._file = FileSource(path, keep_fd=True)    # the compressed file, mapped
        try:
            # The index's rows are read where they are mapped, not copied: 5.6 MB of them
            # for a 5.4 GB core was 5 ms of every command on it (an `info`'s 30).
            self._reader = ContainerReader(self._file.pread, self._file.size, CACHE_BYTES,
                                           read_rows=self._file.read_view)
        except ContainerError as e:
            raise CoreFileError(f"{path}: {e}") from None
        self.size = self._reader.size

    buffer = None           # no mapping of the uncompressed bytes (see VectorMemory)
    _copy = None

    def materialize(self, upto):
        """The uncompressed bytes [0, upto) in a copy (in memory where it fits, else a
        temporary file: vector.copy_in_memory), made once: every block decompressed
        straight into it (the extracts past the memory are not)."""
        if self._copy is None:
            self._copy = self._make_copy(upto)
            # Reads of memory are served from the copy from now on (use_buffer): the
            # blocks kept for them are anonymous memory for nothing, given back.
            self._reader.cache.clear()
            release_free_memory()
        return self._copy

    def drop_copy(self):
        """Forget the copy materialize made (VectorMemory.release): it goes when the last
        view of it does, and the next materialize makes it again."""
        self._copy = None

    def _make_copy(self, upto):
        """The copy itself."""
        upto = min(upto, self.size)
        decoder = lz4_decoder()
        return self._copy_in_c(upto, decoder) if decoder else self._copy_in_python(upto)

    def _tasks(self, upto):
        """(the container's index, block size, blocks per task, blocks to copy) for a
        copy of the bytes [0, upto)."""
        idx, bs = self._reader.index, self._reader.block_size
        return idx, bs, max(1, TASK_BYTES // bs), min(idx.count, (upto + bs - 1) // bs)

    def _copy_in_c(self, upto, decoder):
        """COPY_THREADS threads, each decompressing its share of the blocks in C (the
        GIL left for all of them): straight into the copy where it is made in memory,
        else a task at a time into a file of its own (_copy_to_files). No block is a
        Python object."""
        from .vector import copy_in_memory, memory_copy
        _, bs, task, last = self._tasks(upto)
        size = min(last * bs, self.size)
        tasks = -(-last // task)
        cuts = [min(last, tasks * k // COPY_THREADS * task) for k in range(COPY_THREADS + 1)]
        shares = [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]     # blocks [a, b)
        if copy_in_memory(size):
            try:
                buf = memory_copy(size)
            except OSError:         # no room for the mapping (an address space limit)
                return self._copy_to_files(decoder, shares, size)
            try:
                with memoryview(buf) as view:
                    bad = self._in_threads(lambda a, b: self._fill(
                        decoder, a, b, view[a * bs:min(b * bs, size)]), shares)
                if any(bad):
                    raise CoreFileError(next(why for why in bad if why))
            except BaseException:
                try:
                    buf.close()
                except BufferError:     # still viewed by the frames of an interruption
                    pass
                raise
            return buf
        return self._copy_to_files(decoder, shares, size)

    def _fill(self, decoder, first, end, out):
        """Blocks [first, end) decompressed into `out` (the copy from block `first` on) a
        piece at a time, each piece's pages given memory first in one call
        (_vector.populate) rather than a fault per page as the decompression first writes
        them: None, or what is wrong with the first bad block (as _decompressed)."""
        from . import _vector
        bs = self._reader.block_size
        step = max(1, POPULATE_BYTES // bs)
        for lo in range(first, end, step):
            hi = min(end, lo + step)
            piece = out[(lo - first) * bs:min((hi - first) * bs, len(out))]
            _vector.populate(piece)
            why = self._decompressed(decoder, [(lo, hi)], lo, piece)
            if why:
                return why
        return None

    @staticmethod
    def _in_threads(fn, jobs):
        """[fn(*job) for each of `jobs`], a thread each."""
        from concurrent.futures import ThreadPoolExecutor
        from ..parallel import small_stacks
        with small_stacks(), ThreadPoolExecutor(max(1, len(jobs))) as pool:
            return list(pool.map(lambda job: fn(*job), jobs))

    def _decompressed(self, decoder, runs, base, out):
        """The blocks of each run [first, end) of `runs` decompressed in C into the buffer
        `out`, block b at (b - base) * block_size: None, or what is wrong with the first
        bad block. (Not raised here: an error's frames would keep `out`, a view of the
        copy, which is then closed.)"""
        import numpy as np
        from . import _vector
        idx, bs, _, _ = self._tasks(self.size)
        runs = np.ascontiguousarray(runs, dtype=np.int64)
        bad = _vector.lz4_blocks(decoder, self._file.view, idx.raw_rows, runs, base, bs,
                                 self.size, idx.index_at, out)
        return None if bad is None else f"{self.path}: " + BAD_BLOCK[bad[1]].format(bad[0])

    @property
    def block_size(self):
        return self._reader.block_size

    def decompress_runs(self, runs, out, base):
        """Each run of blocks [first, end) of `runs` (rows of an int64 array) decompressed
        in C into the buffer `out`, block b at (b - base) * block_size, in one call that
        leaves the GIL (corefile.windows reads a capture a piece at a time so, the next
        piece decompressing in a thread while the main one reads the last); CoreFileError
        for a bad block. Needs lz4_decoder()."""
        with memoryview(out) as view:
            why = self._decompressed(lz4_decoder(), runs, base, view)
        if why:
            raise CoreFileError(why)

    def _copy_to_files(self, decoder, shares, size):
        """The copy in temporary files, a share each, written by a thread each: a file
        takes its writers one at a time (its inode's lock), so with one file for both
        the second thread mostly waited. The files are then mapped as one range
        (mapped_copy)."""
        from .vector import copy_file, mapped_copy
        bs = self._reader.block_size
        fds = [copy_file()]
        try:
            os.ftruncate(fds[0], max(size, 1))      # the whole range: the first is mapped
            fds += [copy_file() for _ in shares[1:]]
            # Each share at the start of its file (the first share starts at block 0).
            writes = [(a, b, f) for (a, b), f in zip(shares, fds)]
            self._in_threads(lambda a, b, f: self._write_share(decoder, a, b, f), writes)
            parts = [(a * bs, min(b * bs, size) - a * bs, f) for a, b, f in writes[1:]]
            try:
                return mapped_copy(fds[0], parts)
            except OSError:
                # Mapped over the first file's range refused (the kernel's limit on a
                # process's mappings): the shares are copied into that file instead.
                for offset, length, f in parts:
                    _copy_range(f, fds[0], offset, length)
                return mapped_copy(fds[0])
        finally:
            for f in fds:
                os.close(f)

    def _write_share(self, decoder, first_block, end_block, fd):
        """Blocks [first_block, end_block) decompressed a task at a time and written
        into `fd` from its start."""
        import mmap
        _, bs, task, _ = self._tasks(self.size)
        # Mapped, not malloc'd: given back when done (a thread's malloc arena would keep it).
        buf = mmap.mmap(-1, task * bs)
        for first in range(first_block, end_block, task):
            end = min(first + task, end_block)
            n = min(end * bs, self.size) - first * bs
            bad = self._decompressed(decoder, [(first, end)], first, buf)
            if bad:
                raise CoreFileError(bad)
            _pwrite_all(fd, memoryview(buf)[:n], (first - first_block) * bs)

    def _copy_in_python(self, upto):
        """The same copy without the compiled module: lz4's own calls, a few tasks
        ahead of one writer."""
        from .vector import materialize
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor
        from itertools import islice
        from ..parallel import small_stacks
        idx, bs, task, last = self._tasks(upto)
        view = self._file.view

        def compressed(off, n):
            return view[off:off + n]

        def blocks(first):
            # lz4 lets the GIL go while it decompresses: two threads decompress
            # while this one writes.
            try:
                return [(i * bs, idx.block(i, compressed))
                        for i in range(first, min(first + task, last))]
            except self._error as e:
                raise CoreFileError(f"{self.path}: {e}") from None

        def decompressed(pool):
            # A few tasks ahead of the writer, not all of them: what is decompressed
            # and not yet written is anonymous memory.
            firsts = iter(range(0, last, task))
            ahead = deque(pool.submit(blocks, f) for f in islice(firsts, AHEAD))
            while ahead:
                part = ahead.popleft().result()
                for first in islice(firsts, 1):
                    ahead.append(pool.submit(blocks, first))
                yield from part

        with small_stacks(), ThreadPoolExecutor(2) as pool:
            return materialize(decompressed(pool), upto)

    @property
    def blocks(self):
        """(kept blocks by number, block size, the function that decompresses one into
        them, the uncompressed size): what AddressSpace slices its reads from."""
        return self._reader.cache, self._reader.block_size, self._block, self.size

    def _block(self, i):
        try:
            return self._reader.block(i)
        except self._error as e:
            raise CoreFileError(f"{self.path}: {e}") from None

    def read(self, offset, size):
        """Up to `size` bytes at `offset` of the uncompressed core."""
        try:
            return self._reader.read(offset, size)
        except self._error as e:
            raise CoreFileError(f"{self.path}: {e}") from None

    def close(self):
        rows = self._reader.index.raw_rows
        if isinstance(rows, memoryview):
            rows.release()              # a view of the mapping, which is closed next
        self._file.close()
