"""File extracts a capture carries (arthur/extracts.py writes them): for each mapped ELF
file, the byte ranges a reader needs (headers, symbol tables, read-only data, unwind
tables), served as a sparse copy of the file when the file itself is not at hand."""

from __future__ import annotations

from bisect import bisect_right

from arthur.coreformat import ARTHUR_NOTE_NAME, NT_ARTHUR_FILE, decode_extract_head


class ExtractSource:
    """A mapped file as the capture kept it: reads inside the kept ranges give the file's
    bytes, reads elsewhere give nothing (the caller says what is missing)."""

    partial = True

    def __init__(self, path, size, build_id, extents, data):
        self.path = path
        self.size = size
        self.build_id = build_id
        self._starts = [off for off, _n, _at in extents]
        self._extents = extents          # (file offset, length, offset in `data`)
        self._data = data

    def covers(self, offset, size):
        i = bisect_right(self._starts, offset) - 1
        if i < 0:
            return False
        off, n, _at = self._extents[i]
        return offset + size <= off + n

    def read(self, offset, size):
        """The bytes at `offset` up to the end of the kept range they start in (so a
        read wholly inside one range is exact); b"" where nothing was kept."""
        if offset < 0 or size <= 0:
            return b""
        i = bisect_right(self._starts, offset) - 1
        if i < 0:
            return b""
        off, n, at = self._extents[i]
        if offset >= off + n:
            return b""
        start = at + offset - off
        return bytes(self._data[start:start + min(size, off + n - offset)])

    def close(self):
        pass


def parse_extracts(raw_notes, warn):
    """{mapped path: ExtractSource} from the core's NT_ARTHUR_FILE notes; a malformed
    one is warned about and left out, never half-used."""
    out = {}
    for note in raw_notes:
        if note.type != NT_ARTHUR_FILE or note.name != ARTHUR_NOTE_NAME:
            continue
        src = _parse_one(note.desc)
        if src is None:
            warn("a file extract in the capture is malformed; left out")
        else:
            out[src.path] = src
    return out


def _parse_one(desc):
    desc = memoryview(desc)
    try:
        head, at = decode_extract_head(desc)
        path, size, build_id = head["path"], head["size"], head["build_id"]
        ranges = [(o, n) for o, n in head["extents"]]
    except (ValueError, KeyError, TypeError):
        return None
    if not all(type(v) is int for v in [size] + [x for r in ranges for x in r]):
        return None
    if not isinstance(path, str) or not (build_id is None or isinstance(build_id, str)):
        return None
    extents, last_end = [], 0
    for off, n in ranges:
        if off < last_end or n <= 0 or off + n > size:
            return None
        extents.append((off, n, at))
        at += n
        last_end = off + n
    if at > len(desc):
        return None
    return ExtractSource(path, size, build_id, extents, desc)
