"""Write an ELF core file (notes + PT_LOADs) as a stream, from registers and memory reads."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from .coreformat import (
    ARTHUR_NOTE_NAME,
    EHDR,
    EM_X86_64,
    ET_CORE,
    NT_ARTHUR,
    NT_AUXV,
    NT_FILE,
    NT_FPREGSET,
    NT_PRPSINFO,
    NT_PRSTATUS,
    NT_SIGINFO,
    PF_R,
    PF_W,
    PF_X,
    PHDR,
    PN_XNUM,
    PT_LOAD,
    PT_NOTE,
    SHDR,
    note,
)

PAGE = 4096
CHUNK = 1 << 20
__all__ = ["PF_R", "PF_W", "PF_X", "ProcessRecord", "Segment", "ThreadRecord", "build_notes",
           "write_core"]


@dataclass
class ThreadRecord:
    tid: int
    regs: bytes            # struct user_regs_struct, 216 bytes
    fpregs: bytes          # struct user_fpregs_struct, 512 bytes
    signal: int = 0        # a signal the thread was about to receive, if any
    sigpend: int = 0
    sighold: int = 0


@dataclass
class ProcessRecord:
    pid: int
    ppid: int
    pgrp: int
    sid: int
    uid: int
    gid: int
    state: str
    nice: int
    flags: int
    comm: str
    cmdline: bytes
    auxv: bytes
    threads: list = field(default_factory=list)
    sender_pid: int = 0


@dataclass
class Segment:
    start: int
    end: int
    flags: int
    filesz: int            # bytes of memory written to the file (0..end-start)
    path: str = ""
    offset: int = 0        # file offset of the mapping (for NT_FILE)
    file_backed: bool = False

    @property
    def memsz(self):
        return self.end - self.start


def prstatus(t, proc):
    head = struct.pack("<iiih2xQQiiii", t.signal, 0, 0, t.signal, t.sigpend, t.sighold,
                       t.tid, proc.ppid, proc.pgrp, proc.sid)
    return head + bytes(64) + t.regs + struct.pack("<i4x", 1)


def prpsinfo(proc):
    state = proc.state[:1] or "R"
    sname = state.encode()
    numeric = "RSDTZW".find(state)
    psargs = proc.cmdline.replace(b"\0", b" ").strip()[:80]
    return struct.pack("<bcbb4xQIIiiii16s80s", max(numeric, 0), sname, int(state == "Z"),
                       proc.nice, proc.flags, proc.uid, proc.gid, proc.pid, proc.ppid,
                       proc.pgrp, proc.sid, proc.comm.encode()[:16], psargs)


def siginfo(proc):
    # Like gcore: the process was stopped (by arthur, whose pid is the sender).
    return struct.pack("<iii4xiI", 19, 0, 0, proc.sender_pid, 0) + bytes(128 - 24)


def file_note(segments):
    files = [s for s in segments if s.file_backed]
    table = b"".join(struct.pack("<QQQ", s.start, s.end, s.offset // PAGE) for s in files)
    names = b"".join(s.path.encode("utf-8", "surrogateescape") + b"\0" for s in files)
    return struct.pack("<QQ", len(files), PAGE) + table + names


def build_notes(proc, segments, meta):
    """All notes: the first thread with the process notes, then the other threads."""
    parts = []
    for i, t in enumerate(proc.threads):
        parts.append(note(b"CORE", NT_PRSTATUS, prstatus(t, proc)))
        if i == 0:
            parts.append(note(b"CORE", NT_PRPSINFO, prpsinfo(proc)))
            parts.append(note(b"CORE", NT_SIGINFO, siginfo(proc)))
            parts.append(note(b"CORE", NT_AUXV, proc.auxv))
            parts.append(note(b"CORE", NT_FILE, file_note(segments)))
        parts.append(note(b"CORE", NT_FPREGSET, t.fpregs))
    parts.append(note(ARTHUR_NOTE_NAME, NT_ARTHUR, json.dumps(meta, sort_keys=True).encode()))
    return b"".join(parts)


def core_layout(segments, notes, extracts=b""):
    """(header bytes, data offset of each segment, total size) for the core.

    `extracts` (the file extract notes, arthur/extracts.py) become a second PT_NOTE
    after the memory, last in the file, so the core's own layout is what it would be
    without them."""
    n = len(segments) + 1 + bool(extracts)
    xnum = n >= PN_XNUM
    phoff = 64
    notes_at = phoff + n * PHDR.size
    shoff = 0
    if xnum:
        shoff = notes_at
        notes_at += SHDR.size
    data_at = (notes_at + len(notes) + PAGE - 1) // PAGE * PAGE
    offsets = []
    pos = data_at
    for s in segments:
        offsets.append(pos)
        pos += s.filesz
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    ehdr = EHDR.pack(ident, ET_CORE, EM_X86_64, 1, 0, phoff, shoff, 0, 64, PHDR.size,
                      PN_XNUM if xnum else n, SHDR.size if xnum else 0, 1 if xnum else 0, 0)
    phdrs = [PHDR.pack(PT_NOTE, 0, notes_at, 0, 0, len(notes), 0, 1)]
    for s, off in zip(segments, offsets):
        # Like the kernel: an empty segment still gets the running offset (elfutils, and
        # so pystack, read a p_offset of 0 as "the ELF header is here").
        phdrs.append(PHDR.pack(PT_LOAD, s.flags, off, s.start, 0,
                                s.filesz, s.memsz, PAGE))
    if extracts:
        phdrs.append(PHDR.pack(PT_NOTE, 0, pos, 0, 0, len(extracts), 0, 4))
        pos += len(extracts)
    head = ehdr + b"".join(phdrs)
    if xnum:
        head += SHDR.pack(0, 0, 0, 0, 0, 0, 0, n, 0, 0)
    head += notes
    head += bytes(data_at - len(head))
    return head, offsets, pos


def write_core(sink, segments, notes, read_memory, on_progress=None, extracts=b""):
    """Stream the core into `sink.write`; `read_memory(addr, n)` gives the bytes.

    Returns (bytes written, bytes that could not be read and were zero-filled).
    """
    head, _offsets, total = core_layout(segments, notes, extracts)
    sink.write(head)
    written = len(head)
    unreadable = 0
    for s in segments:
        addr, end = s.start, s.start + s.filesz
        while addr < end:
            n = min(CHUNK, end - addr)
            data = read_memory(addr, n)
            if len(data) < n:
                unreadable += n - len(data)
                data = data + bytes(n - len(data))
            sink.write(data)
            written += n
            addr += n
            if on_progress:
                on_progress(written, total)
    sink.write(extracts)
    written += len(extracts)
    return written, unreadable
