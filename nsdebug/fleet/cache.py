"""Summaries kept between runs, one small JSON file per core, so that a second run over
a growing directory reads only the new cores.

A core is known by its identity (device, inode, size, modification time) and a hash of
its first and last 64 KiB: a file rewritten in place, or replaced by another of the
same size, gets a new key, without reading gigabytes to find out. The summary's format
is in the key too."""

from __future__ import annotations

import hashlib
import json
import os
import stat

from .summary import FORMAT

EDGE = 1 << 16


def default_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nsdebug", "triage")


def core_key(path):
    """The cache key of the file at `path` (OSError when it cannot be read)."""
    h = hashlib.blake2b(digest_size=20)
    # Not blocking on a FIFO or a device someone named: only a regular file is read.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        h.update(f"{FORMAT}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}".encode())
        h.update(f.read(EDGE))
        if st.st_size > EDGE:
            f.seek(max(EDGE, st.st_size - EDGE))
            h.update(f.read(EDGE))
    return h.hexdigest()


class SummaryCache:
    """The cache directory; get() and put() by key. Unwritable: it stays empty."""

    def __init__(self, path):
        self.path = path
        self.writable = True

    def _file(self, key):
        return os.path.join(self.path, key[:2], key + ".json")

    def get(self, key, heap):
        """The kept result for `key` ({"summary": ...} or {"error": ...}), None when
        there is none or it lacks the heap `heap` asks for."""
        from ..ownfile import open_own
        try:
            with open_own(self._file(key)) as f:     # another user's: summarised afresh
                kept = json.load(f)
        except (OSError, ValueError):
            return None
        summary = kept.get("summary") if isinstance(kept, dict) else None
        if summary is None and not (isinstance(kept, dict) and "error" in kept):
            return None
        if heap and summary is not None and summary.get("heap") is None:
            return None
        return kept

    def put(self, key, result):
        if not self.writable:
            return
        path = self._file(key)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(result, f, separators=(",", ":"))
            os.replace(tmp, path)
        except OSError:
            self.writable = False       # a read-only home: run without keeping
            try:
                os.unlink(tmp)
            except OSError:
                pass
