"""A byte source over a plain file read through mmap (the LZ4 container's is lz4source)."""

import mmap
import os

from ..errors import CoreFileError


class FileSource:
    """A file mapped read-only; reads are slices of the mapping, paid on demand."""

    def __init__(self, path, keep_fd=False):
        self.path = path
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            raise CoreFileError(f"cannot open {path}: {e.strerror}") from None
        try:
            self.size = os.fstat(fd).st_size
            if self.size == 0:
                raise CoreFileError(f"{path} is empty")
            try:
                self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as e:
                raise CoreFileError(f"cannot map {path}: {e}") from None
        except BaseException:
            os.close(fd)
            raise
        # Kept only for pread (the mapping needs no descriptor): a process maps
        # hundreds of files, and a triage opens many cores at once.
        self._fd = fd if keep_fd else None
        if not keep_fd:
            os.close(fd)
        self.view = memoryview(self._map)

    @property
    def buffer(self):
        """The mapping itself: its slices are the file's bytes, with no read call (the
        hot path of heap walks). A source without one (LZ4Source) says None."""
        return self._map

    def read(self, offset, size):
        """Up to `size` bytes at `offset` (fewer at the end of the file)."""
        if offset < 0 or size < 0:
            return b""
        return self._map[offset:offset + size]

    def read_view(self, offset, size):
        """Up to `size` bytes at `offset` as a view of the mapping: no copy, and only
        the pages used are read in. It must be released before close()."""
        if offset < 0 or size < 0:
            return memoryview(b"")
        return self.view[offset:offset + size]

    def pread(self, offset, size):
        """read() by a system call: a copy from the page cache, where a first slice of
        the mapping takes a page fault per page (a few KiB read once, as a capture's
        compressed blocks are, cost less this way)."""
        if offset < 0 or size < 0:
            return b""
        if self._fd is None:
            return self.read(offset, size)
        try:
            return os.pread(self._fd, size, offset)
        except OSError as e:
            raise CoreFileError(f"cannot read {self.path}: {e.strerror}") from None

    def close(self):
        self.view.release()
        self._map.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

