"""Byte source over a running process: arthur's frozen fork read as a core (`--pid`).

The headers and notes are built in memory by arthur/live.py, the memory is read from
the child on demand; nothing is written to disk. Like an .lz4 capture it has no
mapping of its own bytes (`buffer` None): heap walks copy them once (VectorMemory).
"""

from __future__ import annotations

from ..errors import CoreFileError


class LiveSource:
    """The frozen copy of process `pid`; close() releases it (the target reaps it)."""

    def __init__(self, pid, log=lambda msg: None):
        from arthur.errors import ArthurError
        from arthur.live import LiveSnapshot
        self._error = ArthurError
        self.path = f"pid {pid}"
        try:
            self.snapshot = LiveSnapshot(pid, log)
        except ArthurError as e:
            raise CoreFileError(str(e)) from None
        self.size = self.snapshot.size

    buffer = None
    _copy = None

    def materialize(self, upto):
        """The frozen copy's core [0, upto) in a mapped temporary file, made once."""
        if self._copy is None:
            from .vector import materialize
            step = 1 << 20
            self._copy = materialize(((pos, self.read(pos, min(step, upto - pos), False))
                                      for pos in range(0, upto, step)), upto)
        return self._copy

    def drop_copy(self):
        """Forget the copy materialize made (VectorMemory.release); the next one reads
        the frozen copy again."""
        self._copy = None

    @property
    def files(self):
        """{mapped path: a path that opens the very file mapped}."""
        return self.snapshot.files

    def read(self, offset, size, cache=True):
        try:
            return self.snapshot.read(offset, size, cache)
        except self._error as e:
            raise CoreFileError(f"{self.path}: {e}") from None

    def close(self):
        try:
            self.snapshot.release()
        except self._error as e:
            raise CoreFileError(f"{self.path}: releasing the frozen copy failed: {e}") \
                from None
