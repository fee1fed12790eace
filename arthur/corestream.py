"""A core the kernel streams into a pipe, rewritten on the fly as an arthur capture.

The kernel writes a core (core_pattern `|program`) front to back: the ELF header, the
program headers, the notes, then each PT_LOAD's bytes in order. Nothing can be read
twice and nothing need be held: the headers and notes (kilobytes) are kept, then each
segment is copied in 1 MiB pieces into the LZ4 container, with arthur's metadata note
added and the mapped files' extracts appended, so the result is the same kind of file
`arthur capture` writes. The kernel's own head is kept so that a failure part way
can still give back the plain core it sent (see `plain_fallback`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .coreformat import (ARTHUR_NOTE_NAME, EHDR, ELF_MAGIC, ET_CORE, NT_ARTHUR,
                         NT_PRSTATUS, PHDR, PN_XNUM, PT_LOAD, PT_NOTE, iter_notes, note)
from .corewriter import Segment, core_layout

PIECE = 1 << 20
MAX_HEAD = 256 << 20          # headers and notes: a core of 100k threads has ~160 MB


class StreamError(Exception):
    """The stream is not a core this converter can rewrite (its plain copy is kept)."""


class Stream:
    """Sequential reads of a pipe with the position counted."""

    def __init__(self, fd):
        self.fd = fd
        self.pos = 0
        _widen_pipe(fd)
        # What was read while the head was being parsed: a head that cannot be parsed
        # is written back, then the rest, as the plain core (`rest_plain`).
        self.recorded = bytearray()
        self.recording = True

    def read(self, n):
        """Up to n bytes; fewer only at the end of the stream."""
        parts, want = [], n
        while want:
            data = os.read(self.fd, min(want, PIECE))
            if not data:
                break
            parts.append(data)
            want -= len(data)
        out = b"".join(parts)
        self.pos += len(out)
        if self.recording:
            self.recorded += out
        return out

    def rest_plain(self, out):
        """The stream as received, from its first byte, into `out.write` (possible
        while the head is still recorded)."""
        out.write(self.recorded)
        self.recorded = bytearray()
        self.recording = False
        while True:
            data = self.read(PIECE)
            if not data:
                break
            out.write(data)

    def skip_to(self, offset):
        """Read and drop up to `offset`; False when the stream ends before it."""
        while self.pos < offset:
            if not self.read(min(offset - self.pos, PIECE)):
                return False
        return True


def _widen_pipe(fd):
    """A pipe holds 64 KiB by default: the kernel then writes the core 16 pages at a
    time, waiting for each read. Widened to the largest size allowed (1 MiB unless
    fs.pipe-max-size says more), the core flows in large pieces."""
    import fcntl
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            size = int(f.read())
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
    except (OSError, ValueError):
        pass                # not a pipe (a file in the tests), or not allowed


@dataclass
class KernelHead:
    raw: bytes                # the kernel's bytes before the first segment's data
    loads: list               # PHDR tuples of the PT_LOADs, in file order
    notes: bytes              # the PT_NOTE's bytes

    @property
    def threads(self):
        return sum(ntype == NT_PRSTATUS for _name, ntype, _desc in iter_notes(self.notes))


def read_head(stream):
    """The kernel core's headers and notes, read from the front of the stream."""
    raw = stream.read(EHDR.size)
    if len(raw) < EHDR.size or raw[:4] != ELF_MAGIC or raw[4] != 2:
        raise StreamError("the stream is not a 64-bit ELF core")
    fields = EHDR.unpack(raw)
    e_type, phoff, phnum, phentsize = fields[1], fields[5], fields[10], fields[9]
    if e_type != ET_CORE or phentsize != PHDR.size:
        raise StreamError("the stream is not an ELF core")
    if phnum == PN_XNUM:
        # The real count is in a section header the kernel writes after the memory.
        raise StreamError("a core of more than 65535 mappings")
    if phoff < EHDR.size or phoff + phnum * PHDR.size > MAX_HEAD:
        raise StreamError("the core's program headers are out of place")
    raw += stream.read(phoff + phnum * PHDR.size - len(raw))
    if len(raw) < phoff + phnum * PHDR.size:
        raise StreamError("the stream ends inside the program headers")
    phdrs = [PHDR.unpack_from(raw, phoff + i * PHDR.size) for i in range(phnum)]
    loads = [p for p in phdrs if p[0] == PT_LOAD]
    note_ph = [p for p in phdrs if p[0] == PT_NOTE]
    if len(note_ph) != 1:
        raise StreamError(f"the core has {len(note_ph)} note segments, not one")
    starts = [p[2] for p in loads if p[5]]
    data_at = min(starts) if starts else note_ph[0][2] + note_ph[0][5]
    n_off, n_size = note_ph[0][2], note_ph[0][5]
    if not len(raw) <= n_off <= n_off + n_size <= data_at <= MAX_HEAD:
        raise StreamError("the core's notes are not before its memory")
    last = 0
    for p in loads:
        if p[5] and p[2] < last:
            raise StreamError("the core's segments are not in file order")
        last = p[2] + p[5]
    raw += stream.read(data_at - len(raw))
    if len(raw) < data_at:
        raise StreamError("the stream ends inside the notes")
    stream.recording = False
    stream.recorded = bytearray()
    return KernelHead(raw, loads, raw[n_off:n_off + n_size])


class Converter:
    """Copies the stream's memory into `sink.write` as arthur's layout of the same core
    (the kernel's notes plus `meta` as arthur's note; `extracts` after the memory),
    counting what it copied so that `plain_fallback` can give the kernel's core back."""

    def __init__(self, stream, head, meta, extracts=b""):
        import json
        self.stream, self.head, self.extracts = stream, head, extracts
        self.segments = [Segment(p[3], p[3] + p[6], p[1], p[5]) for p in head.loads]
        notes = head.notes + note(ARTHUR_NOTE_NAME, NT_ARTHUR,
                                  json.dumps(meta, sort_keys=True).encode())
        self.out_head, self.offsets, _total = core_layout(self.segments, notes, extracts)
        self.copied = [0] * len(self.segments)    # bytes of each segment written out
        self.unwritten = b""        # bytes taken from the stream, not yet written out
        self.missing = 0            # bytes the stream lacked, written as zeros
        self.written = 0

    def run(self, sink, progress=None):
        """Write the whole capture; returns the bytes written. `progress(written)` is
        called after each piece."""
        sink.write(self.out_head)
        self.written = len(self.out_head)
        for i, p in enumerate(self.head.loads):
            if not p[5]:
                continue
            if not self.stream.skip_to(p[2]):
                self._zeros(sink, p[5])
                continue
            left = p[5]
            while left:
                self.unwritten = self.stream.read(min(PIECE, left))
                if not self.unwritten:
                    break
                sink.write(self.unwritten)
                n = len(self.unwritten)
                self.unwritten = b""
                self.copied[i] += n
                self.written += n
                left -= n
                if progress:
                    progress(self.written)
            if left:                    # the kernel stopped writing (a dump cut short)
                self._zeros(sink, left)
        sink.write(self.extracts)
        self.written += len(self.extracts)
        return self.written

    def _zeros(self, sink, n):
        self.missing += n
        while n:
            k = min(PIECE, n)
            sink.write(bytes(k))
            self.written += k
            n -= k

    def plain_fallback(self, read_written, out):
        """The kernel's own core, rebuilt into `out.write` after the conversion failed
        part way: its head, the bytes already written out (read back through
        `read_written(offset in the converted core, n)`), the bytes taken but not
        written, then the rest of the stream as it comes."""
        out.write(self.head.raw)
        pos = len(self.head.raw)
        for i, p in enumerate(self.head.loads):
            if not p[5]:
                continue
            if p[2] > pos:
                out.write(bytes(p[2] - pos))
                pos = p[2]
            done = 0
            while done < self.copied[i]:
                n = min(PIECE, self.copied[i] - done)
                out.write(read_written(self.offsets[i] + done, n))
                done += n
            pos += done
            if done < p[5]:
                break
        out.write(self.unwritten)
        while True:
            data = self.stream.read(PIECE)
            if not data:
                break
            out.write(data)
