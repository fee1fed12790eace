"""The read-only bytes of mapped ELF files that a reader needs, kept inside a capture.

A core holds a process's memory, not the files it mapped: symbol tables are not mapped
at all, and a kernel or arthur core leaves out read-only file pages (.rodata, unwind
tables). So a capture opened on another machine lacked type names and symbols. Each
mapped ELF file contributes one note (name "ARTHUR", type NT_ARTHUR_FILE) holding the
byte ranges of the file a reader needs (docs/formats.md, "File extracts"; the layout
of the note is in coreformat.py, which nsdebug reads it with).

Kept: the ELF header, program and section headers, every allocated section that is
neither code nor writable (.rodata, .eh_frame, .eh_frame_hdr, .dynsym, .dynstr, notes,
...), the static symbol table and its strings, .gnu_debugdata and .gnu_debuglink.
Code (.text) and writable data (in the core already) are not. arthur stays stdlib-only,
so the few ELF structures needed here are read with struct.
"""

from __future__ import annotations

import os
import stat
import struct

from .coreformat import (
    ARTHUR_NOTE_NAME,
    EHDR,
    ELF_MAGIC,
    NT_ARTHUR_FILE,
    NT_GNU_BUILD_ID,
    PF_W,
    PF_X,
    PHDR,
    PT_GNU_EH_FRAME,
    PT_LOAD,
    PT_NOTE,
    SHDR,
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHF_WRITE,
    SHT_NOBITS,
    encode_extract_head,
    iter_notes,
    note,
)

# Sections outside the loaded image that a reader still wants.
UNLOADED_KEPT = {".symtab", ".strtab", ".shstrtab", ".gnu_debugdata", ".gnu_debuglink"}
MERGE_GAP = 256                      # join ranges closer than this: fewer extents
MAX_FILE = 1 << 32                   # a mapped ELF file larger than this is not read


class NotElf(Exception):
    pass


def _pread(fd, off, n):
    out = os.pread(fd, n, off)
    if len(out) != n:
        raise NotElf("truncated")
    return out


def kept_ranges(fd):
    """Sorted, merged (offset, length) ranges of the ELF file open at `fd` to keep."""
    size = os.fstat(fd).st_size
    if size < 64 or size > MAX_FILE:
        raise NotElf("size")
    (ident, _etype, _mach, _ver, _entry, phoff, shoff, _flags, _ehsize, phentsize,
     phnum, shentsize, shnum, shstrndx) = EHDR.unpack(_pread(fd, 0, 64))
    if ident[:4] != ELF_MAGIC or ident[4] != 2 or ident[5] != 1:
        raise NotElf("not ELF64 little-endian")
    ranges = [(0, 64)]

    def keep(off, n):
        if n > 0 and 0 <= off and off + n <= size:
            ranges.append((off, n))

    phdrs = []
    if phnum and phentsize == PHDR.size:
        raw = _pread(fd, phoff, phnum * PHDR.size)
        keep(phoff, len(raw))
        phdrs = [PHDR.unpack_from(raw, i * PHDR.size) for i in range(phnum)]
    for p_type, p_flags, p_offset, _va, _pa, p_filesz, _ms, _al in phdrs:
        if p_type in (PT_NOTE, PT_GNU_EH_FRAME):
            keep(p_offset, p_filesz)
    sections = []
    if shnum and shentsize == SHDR.size and shoff + shnum * SHDR.size <= size:
        raw = _pread(fd, shoff, shnum * SHDR.size)
        keep(shoff, len(raw))
        sections = [SHDR.unpack_from(raw, i * SHDR.size) for i in range(shnum)]
    names = b""
    if sections and shstrndx < len(sections):
        s = sections[shstrndx]
        if s[4] + s[5] <= size:
            names = _pread(fd, s[4], s[5])
            keep(s[4], s[5])
    for sh_name, sh_type, sh_flags, _addr, sh_offset, sh_size, *_ in sections:
        if sh_type == SHT_NOBITS:
            continue
        end = names.find(b"\0", sh_name)
        name = names[sh_name:end if end >= 0 else len(names)].decode("latin-1")
        if sh_flags & SHF_ALLOC:
            if not sh_flags & (SHF_EXECINSTR | SHF_WRITE):
                keep(sh_offset, sh_size)
        elif name in UNLOADED_KEPT or name.startswith(".note"):
            keep(sh_offset, sh_size)
    if not sections:
        # No section headers: keep the read-only, non-code segments whole.
        for p_type, p_flags, p_offset, _va, _pa, p_filesz, _ms, _al in phdrs:
            if p_type == PT_LOAD and not p_flags & (PF_X | PF_W):
                keep(p_offset, p_filesz)
    return merge(ranges)


def merge(ranges):
    out = []
    for off, n in sorted(ranges):
        if out and off <= out[-1][0] + out[-1][1] + MERGE_GAP:
            last_off, last_n = out[-1]
            out[-1] = (last_off, max(last_n, off + n - last_off))
        else:
            out.append((off, n))
    return out


def build_id(fd):
    """The GNU build-id from the file's notes (hex), or None."""
    raw = _pread(fd, 0, 64)
    phoff, phnum = struct.unpack_from("<Q", raw, 32)[0], struct.unpack_from("<H", raw, 56)[0]
    for i in range(phnum):
        p_type, _f, p_offset, _va, _pa, p_filesz, _ms, _al = PHDR.unpack(
            _pread(fd, phoff + i * PHDR.size, PHDR.size))
        if p_type != PT_NOTE or p_filesz > 1 << 16:
            continue
        for name, ntype, desc in iter_notes(_pread(fd, p_offset, p_filesz)):
            if ntype == NT_GNU_BUILD_ID and name == b"GNU":
                return desc.hex()
    return None


def file_note(path, fd):
    """The NT_ARTHUR_FILE note body for the ELF file open at `fd`, mapped as `path`."""
    ranges = kept_ranges(fd)
    head = encode_extract_head({"path": path, "build_id": build_id(fd),
                                "size": os.fstat(fd).st_size,
                                "extents": [list(r) for r in ranges]})
    return head + b"".join(_pread(fd, off, n) for off, n in ranges)


def extract_files(files, warn=lambda msg: None):
    """Notes for `files`: {mapped path: path to open it by}. Files that are not ELF
    (fonts, locale archives) are skipped; unreadable ones are warned about."""
    parts, kept = [], 0
    for path, open_path in files.items():
        try:
            # Regular files only: opening a mapped device could have side effects.
            if not stat.S_ISREG(os.stat(open_path).st_mode):
                continue
            fd = os.open(open_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as e:
            warn(f"{path}: not kept in the capture ({e.strerror})")
            continue
        try:
            desc = file_note(path, fd)
        except NotElf:
            continue
        except OSError as e:
            warn(f"{path}: not kept in the capture ({e.strerror})")
            continue
        finally:
            os.close(fd)
        parts.append(note(ARTHUR_NOTE_NAME, NT_ARTHUR_FILE, desc))
        kept += 1
    return b"".join(parts), kept
