"""AddressSpace: the process's memory, from the core's PT_LOADs and the files it mapped."""

from __future__ import annotations

import struct
from bisect import bisect_right

from ..errors import FaultError
from ..record import record

_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")


@record
class Segment:
    """One PT_LOAD: [start, end) in memory, the first `filesz` bytes kept in the core."""
    start: int
    end: int
    offset: int
    filesz: int
    perms: str
    file: object = None        # FileMapping covering it, if any
    file_source: object = None  # FileSource of that file once resolved and checked

    @property
    def in_core(self):
        return self.filesz > 0


class AddressSpace:
    """Reads process memory by address; everything above corefile/ reads through here."""

    def __init__(self, source, segments):
        self.source = source
        self.segments = sorted(segments, key=lambda s: s.start)
        self._starts = [s.start for s in self.segments]
        self._read_file = source.read
        # A plain file is sliced directly: the hot path of heap walks.
        self._buf = source.buffer
        # A capture's decompressed blocks are sliced here too, not through two more
        # calls a read (a backtrace makes thousands of small reads).
        blocks = getattr(source, "blocks", None)
        self._blocks, self._block_size, self._load_block, self._blocks_end = \
            blocks if blocks is not None else (None, 0, None, 0)
        # A block's number and the offset in it by a shift and a mask (a read takes a
        # tenth less time than with divmod); a container whose block size is not a
        # power of two (arthur writes 16 KiB) is read through the source instead.
        if self._block_size & (self._block_size - 1):
            self._blocks = None
        self._block_shift = self._block_size.bit_length() - 1
        self._block_mask = self._block_size - 1

    def use_buffer(self, buf):
        """Serve reads from `buf` from now on: the source's bytes [0, len(buf)), copied
        (VectorMemory's copy of a capture), covering every segment's kept bytes; None:
        from the source again (the copy given back)."""
        self._buf = buf

    def add_segment(self, seg):
        """Add a segment the core's program headers did not list (a file mapping the
        core left out, whose bytes come from the file)."""
        i = bisect_right(self._starts, seg.start)
        self.segments.insert(i, seg)
        self._starts.insert(i, seg.start)

    def find_segment(self, addr):
        i = bisect_right(self._starts, addr) - 1
        if i >= 0:
            seg = self.segments[i]
            if addr < seg.end:
                return seg
        return None

    def is_mapped(self, addr):
        return self.find_segment(addr) is not None

    def read(self, addr, size):
        """Exactly `size` bytes at `addr`, or FaultError naming the first missing byte."""
        i = bisect_right(self._starts, addr) - 1
        if i >= 0:
            seg = self.segments[i]
            off = addr - seg.start
            if off + size <= seg.filesz and off >= 0:
                off += seg.offset
                if self._buf is not None:
                    return self._buf[off:off + size]
                if self._blocks is not None and off + size <= self._blocks_end:
                    start = off & self._block_mask
                    if start + size <= self._block_size:
                        data = self._blocks.get(off >> self._block_shift)
                        if data is None:
                            data = self._load_block(off >> self._block_shift)
                        return data[start:start + size]
                data = self._read_file(off, size)
                if len(data) == size:
                    return data
                raise FaultError(f"address {addr:#x} lies past the end of the core file",
                                 addr)
        if size <= 0:
            return b""
        return self._read_slow(addr, size)

    def _read_slow(self, addr, size):
        parts = []
        cur, end = addr, addr + size
        while cur < end:
            seg = self.find_segment(cur)
            if seg is None:
                raise FaultError(f"address {cur:#x} is not mapped in the core", cur)
            take = min(end, seg.end) - cur
            off = cur - seg.start
            if off < seg.filesz:
                take = min(take, seg.filesz - off)
                chunk = self._read_file(seg.offset + off, take)
            else:
                if seg.filesz:
                    take = min(take, seg.end - cur)
                chunk = self._read_backing_file(seg, cur, take)
            if len(chunk) != take:
                raise FaultError(f"address {cur:#x} lies past the end of the core file", cur)
            parts.append(chunk)
            cur += take
        return b"".join(parts)

    def _read_backing_file(self, seg, addr, size):
        fm, src = seg.file, seg.file_source
        if fm is None:
            raise FaultError(f"address {addr:#x} is in a mapping whose bytes the core "
                             f"did not keep", addr)
        if src is None:
            raise FaultError(f"address {addr:#x} is in {fm.path}, which the core did not "
                             f"keep and which is not available on disk", addr)
        off = fm.offset + (addr - fm.start)
        if getattr(src, "partial", False) and not src.covers(off, size):
            raise FaultError(f"address {addr:#x} is in {fm.path}, whose bytes there (its "
                             f"code) the capture did not keep; open it where that file is",
                             addr)
        data = src.read(off, size)
        if len(data) != size:
            # A short file, or one whose build-id check failed on this first read.
            raise FaultError(f"address {addr:#x} is in {fm.path}, whose bytes there the "
                             f"file on disk does not hold (not the file the process "
                             f"mapped, or shorter)", addr)
        return data

    def read_prefix(self, addr, size):
        """(bytes, None) for `size` bytes at `addr`, or (the bytes before the first
        missing one, why it is missing)."""
        try:
            return self.read(addr, size), None
        except FaultError as e:
            got = self.read(addr, e.address - addr) if e.address > addr else b""
            return got, str(e)

    def available(self, addr, size):
        """True when `read(addr, size)` would succeed."""
        try:
            self.read(addr, size)
            return True
        except FaultError:
            return False

    # Typed helpers. Every caller above corefile/ uses these or read().
    def u64(self, addr):
        return _U64.unpack(self.read(addr, 8))[0]

    def i64(self, addr):
        return _I64.unpack(self.read(addr, 8))[0]

    def u32(self, addr):
        return _U32.unpack(self.read(addr, 4))[0]

    def i32(self, addr):
        return _I32.unpack(self.read(addr, 4))[0]

    def unpack(self, fmt, addr):
        """struct.unpack of a Struct (or format string) at `addr`."""
        if isinstance(fmt, str):
            fmt = struct.Struct(fmt)
        return fmt.unpack(self.read(addr, fmt.size))

    def cstring(self, addr, limit=4096):
        """A NUL-terminated byte string of at most `limit` bytes."""
        out = b""
        while len(out) < limit:
            seg = self.find_segment(addr + len(out))
            if seg is None:
                if out:
                    break
                raise FaultError(f"address {addr:#x} is not mapped in the core", addr)
            room = min(limit - len(out), seg.end - (addr + len(out)), 256)
            # The end of the bytes the core (or the file) holds may come before NUL.
            chunk, why = self.read_prefix(addr + len(out), room)
            if why is not None and not chunk:
                if out:
                    break
                raise FaultError(why, addr)
            nul = chunk.find(b"\0")
            if nul >= 0:
                return out + chunk[:nul]
            out += chunk
        return out
