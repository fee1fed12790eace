"""The seekable LZ4 container: a standard LZ4 frame of independent blocks, then a skippable
frame holding a block index, so a reader can decompress any block alone.

The exact bytes are in docs/formats.md. The stock `lz4 -d` reads the first
frame and skips the skippable one, giving back the plain file.
"""

from __future__ import annotations

import os
import struct

import lz4.block

from .coreformat import FRAME_MAGIC

SKIPPABLE_MAGIC = 0x184D2A5A
INDEX_MAGIC = b"ARTHURIX"
FOOTER_MAGIC = b"ARTHUREN"
INDEX_VERSION = 1
# Blocks of 16 KiB in a frame whose block maximum is "64 KB" (BD = 4; a block may be
# smaller than the maximum). A reader decompresses a whole block to read a byte of it:
# a backtrace reads ~70 scattered 64 KiB blocks but only 2 MiB in 128 of 16 KiB, half
# the decompression, for captures 5-7% larger on application heaps (LZ4 matches reach
# back 64 KiB: larger blocks would compress no better). Captures of other sizes, up
# to 4 MiB, read the same.
BLOCK_SIZE = 1 << 14
# Blocks compressed per task of the writer's pool (a task per block would cost more in
# hand-offs than the compression of 16 KiB).
BLOCKS_PER_TASK = 64
RAW_FLAG = 0x80000000               # block stored uncompressed
_INDEX_HEAD = struct.Struct("<8sIIQQ")
_INDEX_ROW = struct.Struct("<QII")
_FOOTER = struct.Struct("<Q8s")


class ContainerError(Exception):
    """The file is not a readable arthur container."""


class ContainerWriter:
    """Streams bytes into the container: write() in any sizes, close() writes the index.

    Blocks are compressed on a thread pool of `workers` threads (python-lz4 releases the
    GIL; default: the spare CPUs, at most 4), and written in order. The bytes written
    are the same whatever the number of workers.
    """

    def __init__(self, fileobj, level=0, workers=None):
        # The writer's imports, not the reader's (concurrent.futures loads logging and
        # re: a fifth of a `bt --all` on a capture).
        from concurrent.futures import ThreadPoolExecutor

        import lz4.frame

        from .cgroups import spare_cpus
        self.f = fileobj
        self.level = level
        self.workers = workers or min(4, spare_cpus())
        self.pool = ThreadPoolExecutor(max_workers=self.workers)
        self.pending = []           # futures of compressed blocks, in order
        self.parts = []             # bytes written, not yet given to a task
        self.held = 0
        self.rows = []              # (compressed offset, stored size, flags)
        self.total = 0
        self.offset = 0
        header = lz4.frame.LZ4FrameCompressor(
            block_size=lz4.frame.BLOCKSIZE_MAX64KB, block_linked=False,
            content_checksum=False, block_checksum=False).begin()
        self._emit(header)

    def _emit(self, data):
        self.f.write(data)
        self.offset += len(data)

    def _compress_many(self, data):
        return [self._compress(data[i:i + BLOCK_SIZE])
                for i in range(0, len(data), BLOCK_SIZE)]

    def _compress(self, block):
        if self.level > 0:
            body = lz4.block.compress(block, mode="high_compression",
                                      compression=self.level, store_size=False)
        else:
            body = lz4.block.compress(block, store_size=False)
        if len(body) >= len(block):
            return bytes(block), RAW_FLAG
        return body, 0

    def write(self, data):
        # Pieces are gathered in a list and joined once per batch of tasks; each task
        # gets a view of the joined bytes (a bytearray sliced and shifted cost three
        # copies of every byte, the most of a crash handler's time on random memory).
        self.parts.append(data)
        self.held += len(data)
        self.total += len(data)
        task = BLOCK_SIZE * BLOCKS_PER_TASK
        if self.held < task:
            return
        joined = b"".join(self.parts)
        whole = len(joined) // task * task
        view = memoryview(joined)
        for at in range(0, whole, task):
            self.pending.append(self.pool.submit(self._compress_many, view[at:at + task]))
            self._drain(keep=2 * self.workers)
        rest = joined[whole:]
        self.parts = [rest] if rest else []
        self.held = len(rest)

    def _drain(self, keep=0):
        while len(self.pending) > keep:
            for body, flag in self.pending.pop(0).result():
                self.rows.append((self.offset, len(body), flag))
                self._emit(struct.pack("<I", len(body) | flag) + body)

    def close(self):
        """Flush the last block, end the frame, write the index frame."""
        if self.held:
            self.pending.append(self.pool.submit(self._compress_many, b"".join(self.parts)))
            self.parts, self.held = [], 0
        self._drain()
        self.pool.shutdown()
        self._emit(b"\0\0\0\0")                      # end mark, no content checksum
        index_at = self.offset
        payload = _INDEX_HEAD.pack(INDEX_MAGIC, INDEX_VERSION, BLOCK_SIZE, self.total,
                                   len(self.rows))
        payload += b"".join(_INDEX_ROW.pack(*r) for r in self.rows)
        payload += _FOOTER.pack(index_at, FOOTER_MAGIC)
        self._emit(struct.pack("<II", SKIPPABLE_MAGIC, len(payload)) + payload)

    def abort(self):
        self.pool.shutdown(wait=True, cancel_futures=True)


class ContainerIndex:
    """The block index of a container, read from its end."""

    def __init__(self, read, size, read_rows=None):
        """`read(offset, n)` gives the container's bytes; `read_rows`, if given, the
        rows of the index (a view of a mapped file: a capture of gigabytes has megabytes
        of rows, of which a command that reads little needs a few)."""
        if size < 4 + _FOOTER.size or read(0, 4) != FRAME_MAGIC:
            raise ContainerError("not an LZ4 frame")
        index_at, magic = _FOOTER.unpack(read(size - _FOOTER.size, _FOOTER.size))
        # The index's frame header and head must fit before the footer (an offset just
        # short of the end read a short header: found by fuzz/h_lz4.py).
        if magic != FOOTER_MAGIC or \
                not 0 < index_at <= size - _FOOTER.size - 8 - _INDEX_HEAD.size:
            raise ContainerError("an LZ4 file without arthur's block index (truncated, or "
                                 "not written by arthur): decompress it with `lz4 -d` first")
        skip_magic, length = struct.unpack("<II", read(index_at, 8))
        if skip_magic != SKIPPABLE_MAGIC or index_at + 8 + length != size:
            raise ContainerError("arthur block index is corrupt")
        head = read(index_at + 8, _INDEX_HEAD.size)
        magic, version, self.block_size, self.total, count = _INDEX_HEAD.unpack(head)
        if magic != INDEX_MAGIC or version != INDEX_VERSION:
            raise ContainerError(f"unknown arthur index version {version}")
        if not 0 < self.block_size <= 4 << 20:        # LZ4 frames' largest block: 4 MiB
            raise ContainerError(f"arthur block index is corrupt (block size "
                                 f"{self.block_size})")
        rows_at = index_at + 8 + _INDEX_HEAD.size
        if count > size // 4 or rows_at + count * _INDEX_ROW.size > size or \
                count * self.block_size < self.total or \
                (count and (count - 1) * self.block_size >= self.total):
            raise ContainerError("arthur block index is corrupt (block count)")
        self._raw = (read_rows or read)(rows_at, count * _INDEX_ROW.size)
        if len(self._raw) != count * _INDEX_ROW.size:
            raise ContainerError("arthur block index is truncated")
        self.count = count
        self.index_at = index_at
        self.compressed_size = size
        self._read = read
        if count:
            self.row(count - 1)         # the last block, where a cut file ends

    @property
    def raw_rows(self):
        """The index's rows as stored (per block: u64 offset, u32 size, u32 flags), for
        a compiled reader; it checks each against index_at as row() does."""
        return self._raw

    @property
    def rows(self):
        """[(compressed offset, stored size, flags)] of every block."""
        return [self.row(i) for i in range(self.count)]

    def row(self, i):
        """(compressed offset, stored size, flags) of block i, checked when read (a
        gigabyte's index has tens of thousands of rows; a read needs one or two)."""
        coff, stored, flag = _INDEX_ROW.unpack_from(self._raw, i * _INDEX_ROW.size)
        if coff + 4 + stored > self.index_at:
            raise ContainerError("arthur block index points past the data (truncated?)")
        return coff, stored, flag

    def block(self, i, read=None):
        """Uncompressed bytes of block i. `read` replaces the reader of the compressed
        bytes (a view of a mapped file: no copy of them; a raw block is then that view)."""
        coff, stored, flag = self.row(i)
        data = (read or self._read)(coff + 4, stored)
        if len(data) != stored:
            raise ContainerError(f"block {i} is truncated")
        want = min(self.block_size, self.total - i * self.block_size)
        if flag & RAW_FLAG:
            if len(data) != want:
                raise ContainerError(f"block {i} is stored raw with {len(data)} bytes, "
                                     f"not {want}")
            return data
        try:
            out = lz4.block.decompress(data, uncompressed_size=want)
        except lz4.block.LZ4BlockError as e:
            raise ContainerError(f"block {i} is corrupt: {e}") from None
        if len(out) != want:
            raise ContainerError(f"block {i} decompresses to {len(out)} bytes, not {want}")
        return out


class ContainerReader:
    """Random reads of the uncompressed bytes, keeping decompressed blocks (at most
    `cache_bytes` of them, the first decompressed dropped first)."""

    def __init__(self, read, size, cache_bytes=32 << 20, read_rows=None):
        self.index = ContainerIndex(read, size, read_rows)
        self.size = self.index.total
        self.block_size = self.index.block_size
        self.cache = {}                  # insertion order: the first decompressed first
        self._max = max(4, cache_bytes // max(self.block_size, 1))

    def block(self, i):
        """Uncompressed bytes of block i, kept."""
        data = self.cache.get(i)
        if data is None:
            data = self.cache[i] = self.index.block(i)
            if len(self.cache) > self._max:
                del self.cache[next(iter(self.cache))]
        return data

    def read(self, offset, size):
        """Up to `size` bytes at `offset` (fewer at the end)."""
        i, start = divmod(offset, self.block_size)
        if offset >= 0 and size > 0 and start + size <= self.block_size:
            # Within one block (nearly every read): a cached block sliced.
            data = self.cache.get(i)
            if data is None:
                data = self.block(i) if offset < self.size else b""
            return data[start:start + size]
        if offset < 0 or size <= 0 or offset >= self.size:
            return b""
        size = min(size, self.size - offset)
        bs = self.block_size
        first, last = offset // bs, (offset + size - 1) // bs
        if first == last:
            start = offset - first * bs
            return self.block(first)[start:start + size]
        parts = []
        for i in range(first, last + 1):
            lo = max(offset, i * bs) - i * bs
            hi = min(offset + size, (i + 1) * bs) - i * bs
            parts.append(self.block(i)[lo:hi])
        return b"".join(parts)

    def iter_blocks(self):
        for i in range(self.index.count):
            yield self.index.block(i)


def file_reader(f):
    """read(offset, n) over an open binary file."""
    def read(off, n):
        return os.pread(f.fileno(), n, off)
    return read
