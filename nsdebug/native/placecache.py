"""Where native pcs are in the source, and how to unwind from them, kept between runs:
for each pc of a build, the places the DWARF gave (function, file, line, inlined
calls) and the call-frame row its CFI program gave, under
$XDG_CACHE_HOME/nsdebug/places/. A service's threads park at the same few pcs of
libc and the interpreter; the second `bt --native` on any core of those builds names
them without loading a byte of DWARF (libc's debug file alone is 20 MiB of it) and
unwinds them without running a CFI program (the eval loop's has thousands of steps).

A table is named by the build-id of the file, by where and what on this disk the file
and the debug file its places came from are (path, size, mtime, inode: a damaged or
stripped copy with the same build-id never meets the healthy file's table), and by
nsdebug's version (a reader that names a place differently never meets an older
table). It is marshal data behind a magic and a CRC-32; a table
that fails either, or does not hold what a table holds, is dropped and rebuilt, never
used. Failing to write costs the next run the DWARF again, nothing else.
"""

from __future__ import annotations

import marshal
import os
import struct
import zlib

from .. import __version__
from .dwarfcache import cache_root, write_whole

MAGIC = b"NSPLACE1"
HEAD = struct.Struct("<8sI")          # magic, CRC-32 of the marshal payload
MAX_TABLE = 16 << 20                  # a larger file is not one of ours


class PlaceCache:
    def __init__(self, root=None):
        self.root = root or cache_root("places")
        self._tables = {}
        self._dirty = set()

    @staticmethod
    def key(file_id, files_id, kind="places"):
        """The table name for a file's build-id and the stamp of the files read; `kind`
        "places" (source places) or "rows" (call-frame rows, see unwind.py)."""
        return f"{kind}-{file_id}-{files_id}-{__version__}"

    def get(self, key, vaddr):
        """The places kept for vaddr, None when none are."""
        return self._table(key).get(vaddr)

    def put(self, key, vaddr, value):
        self._table(key)[vaddr] = [tuple(p) for p in value] if key.startswith("places-") \
            else value
        self._dirty.add(key)

    def save(self):
        """Write the tables that gained places (each whole, atomically)."""
        for key in sorted(self._dirty):
            payload = marshal.dumps(self._tables[key])
            write_whole(self.root, os.path.join(self.root, key),
                        HEAD.pack(MAGIC, zlib.crc32(payload)), payload)
        self._dirty.clear()

    def _table(self, key):
        if key not in self._tables:
            valid = _is_places if key.startswith("places-") else _is_row
            self._tables[key] = _load(os.path.join(self.root, key), valid)
        return self._tables[key]


def _load(path, valid):
    from ..ownfile import open_own
    try:
        with open_own(path) as f:        # not ours (another user's, a symlink): rebuild
            data = f.read(MAX_TABLE + 1)
    except OSError:
        return {}
    if len(data) > MAX_TABLE or len(data) < HEAD.size:
        return {}
    magic, crc = HEAD.unpack_from(data)
    payload = data[HEAD.size:]
    if magic != MAGIC or zlib.crc32(payload) != crc:
        return {}
    try:
        table = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return {}
    if not isinstance(table, dict) or not all(isinstance(k, int) and valid(v)
                                              for k, v in table.items()):
        return {}
    return table


def _is_places(places):
    return isinstance(places, list) and all(
        isinstance(p, tuple) and len(p) == 4 and isinstance(p[0], (str, type(None))) and
        isinstance(p[1], (str, type(None))) and isinstance(p[2], int) and
        isinstance(p[3], bool) for p in places)


def _is_row(row):
    """A call-frame row as unwind.py keeps it: False (no FDE covers the pc), or
    (cfa_reg, cfa_off, cfa_expr, ((reg, kind, value), ...), function start, signal)."""
    if row is False:
        return True
    if not (isinstance(row, tuple) and len(row) == 6):
        return False
    cfa_reg, cfa_off, cfa_expr, rules, begin, signal = row
    return isinstance(cfa_reg, (int, type(None))) and isinstance(cfa_off, (int, type(None))) \
        and isinstance(cfa_expr, (bytes, type(None))) and isinstance(begin, int) and \
        isinstance(signal, bool) and isinstance(rules, tuple) and all(
            isinstance(r, tuple) and len(r) == 3 and isinstance(r[0], int) and
            r[1] in ("u", "s", "o", "v", "r", "e", "x") and isinstance(r[2], (int, bytes))
            for r in rules)

