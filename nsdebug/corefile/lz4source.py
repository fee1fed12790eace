"""Byte source over an arthur .lz4 capture: random reads, bounded memory, no full decompression.

The container format lives in one place, arthur/lz4core.py; this wraps its
reader in nsdebug's error type.
"""

from __future__ import annotations

from ..errors import CoreFileError
from .source import FileSource

CACHE_BYTES = 32 << 20   # decompressed blocks kept at most
TASK_BYTES = 1 << 20     # decompressed per task when the whole core is copied


class LZ4Source:
    """Reads the uncompressed core inside an arthur container, one block at a time."""

    def __init__(self, path):
        from arthur.lz4core import ContainerError, ContainerReader
        self.path = path
        self._error = ContainerError
        self._file = FileSource(path, keep_fd=True)    # the compressed file, mapped
        try:
            self._reader = ContainerReader(self._file.pread, self._file.size, CACHE_BYTES)
        except ContainerError as e:
            raise CoreFileError(f"{path}: {e}") from None
        self.size = self._reader.size

    buffer = None           # no mapping of the uncompressed bytes (see VectorMemory)
    _copy = None

    def materialize(self, upto):
        """The uncompressed bytes [0, upto) in a mapped temporary file, made once: every
        block decompressed straight into it (the extracts past the memory are not)."""
        if self._copy is None:
            from .vector import materialize
            from concurrent.futures import ThreadPoolExecutor
            idx, bs = self._reader.index, self._reader.block_size
            task = max(1, TASK_BYTES // bs)
            last = min(idx.count, (min(upto, self.size) + bs - 1) // bs)

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

            with ThreadPoolExecutor(2) as pool:
                done = pool.map(blocks, range(0, last, task))
                self._copy = materialize((p for part in done for p in part),
                                         min(upto, self.size))
        return self._copy

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
        self._file.close()
