"""Byte source over an arthur .lz4 capture: random reads, bounded memory, no full decompression.

The container format lives in one place, arthur/lz4core.py; this wraps its
reader in nsdebug's error type.
"""

from __future__ import annotations

from ..errors import CoreFileError
from .source import FileSource

CACHE_BYTES = 32 << 20   # decompressed blocks kept at most


class LZ4Source:
    """Reads the uncompressed core inside an arthur container, one block at a time."""

    def __init__(self, path):
        from arthur.lz4core import ContainerError, ContainerReader
        self.path = path
        self._error = ContainerError
        self._file = FileSource(path)          # the compressed file, mapped
        try:
            self._reader = ContainerReader(self._file.read, self._file.size, CACHE_BYTES)
        except ContainerError as e:
            raise CoreFileError(f"{path}: {e}") from None
        self.size = self._reader.size

    buffer = None           # no mapping of the uncompressed bytes (see VectorMemory)

    def read(self, offset, size):
        """Up to `size` bytes at `offset` of the uncompressed core."""
        try:
            return self._reader.read(offset, size)
        except self._error as e:
            raise CoreFileError(f"{self.path}: {e}") from None

    def close(self):
        self._file.close()
