"""Debug sections a file keeps compressed (SHF_COMPRESSED: Debian's -dbg packages and
libc6-dbg), kept inflated under $XDG_CACHE_HOME/nsdebug/dwarf/ so that only the first
`bt --native` on a build pays for zlib (about 150 ms for a libpython's DWARF; reading
the inflated copy back and checking it costs about a tenth of that). gdb's index-cache
is the model.

An entry is named by the compressed bytes themselves (their CRC-32 and size), not by
a path or build-id, so a rebuilt or dwz-rewritten debug file never meets a stale entry;
its trailer holds the CRC-32 of the inflated bytes, so a truncated or garbled entry is
inflated afresh and rewritten, never used. Failing to write (read-only home, full disk)
only costs the next run the inflation again.
"""

from __future__ import annotations

import os
import struct
import zlib

MAGIC = b"NSDWARF1"
TRAILER = struct.Struct("<8sIIQ")     # magic, CRC-32 of the body, reserved, body size


def cache_root(name):
    """$XDG_CACHE_HOME/nsdebug/NAME (~/.cache/nsdebug/NAME)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                            ".cache")
    return os.path.join(base, "nsdebug", name)


def default_root():
    return cache_root("dwarf")


class InflatedSections:
    def __init__(self, root=None):
        self.root = root or default_root()

    def get(self, name, raw, inflate):
        """The inflated bytes of section `name` whose compressed bytes are `raw`."""
        key = f"{zlib.crc32(raw):08x}-{len(raw)}-{name.lstrip('.')}"
        path = os.path.join(self.root, key)
        data = _load(path)
        if data is None:
            data = inflate(raw)
            if data:
                _store(self.root, path, data)
        return data


def _load(path):
    from ..ownfile import open_own
    try:
        with open_own(path) as f:        # not ours (another user's, a symlink): inflate
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size < TRAILER.size:
                return None
            f.seek(size - TRAILER.size)
            magic, crc, _reserved, body = TRAILER.unpack(f.read(TRAILER.size))
            if magic != MAGIC or body != size - TRAILER.size:
                return None
            f.seek(0)
            data = f.read(body)
    except OSError:
        return None
    return data if len(data) == body and zlib.crc32(data) == crc else None


def _store(root, path, data):
    write_whole(root, path, data, TRAILER.pack(MAGIC, zlib.crc32(data), 0, len(data)))


def write_whole(root, path, *chunks):
    """Write a cache entry under `root` (made 0700) so that a reader sees all of it or
    none: a temporary file renamed over `path`. A failure (read-only home, full disk)
    leaves nothing behind and is not an error: a cache only costs the work again."""
    tmp = None
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        import tempfile
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".part-")
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
