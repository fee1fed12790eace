"""`nsdebug bundle CORE -o FILE.lz4`: a kernel or gcore core, plus the read-only bytes of
the files it mapped (as arthur keeps them, arthur/extracts.py), in one arthur container
that opens on any machine.

The core's bytes are copied unchanged; the extracts follow them as one more PT_NOTE, and
a new program header table (the old one plus that note) goes last, with e_phoff and
e_phnum pointing at it. gdb, pystack and nsdebug read the result after `lz4 -d` as
they read the original."""

from __future__ import annotations

import struct

from arthur.coreformat import PHDR, PN_XNUM, PT_NOTE

from .errors import NsdebugError

CHUNK = 1 << 20


def files_to_keep(process, warn):
    """{mapped path: file on this machine} for every mapped ELF file whose build-id
    matches the core's; files already carried by the core are left as they are."""
    out = {}
    for m in process.modules:
        if m.path in process.extracts:
            continue
        ef = m.file
        if ef is None or getattr(ef.source, "partial", False):
            warn(f"{m.path}: {m.problem or 'not available'}; not bundled")
            continue
        out[m.path] = ef.path
    return out


def new_program_headers(process, extra_offset, extra_size):
    """The core's program headers with one PT_NOTE for the extracts appended."""
    raw = process.file_bytes(process.header.e_phoff, len(process.phdrs) * PHDR.size)
    return raw + PHDR.pack(PT_NOTE, 0, extra_offset, 0, 0, extra_size, 0, 4)


def bundle(process, sink, warn):
    """Write the self-contained core into `sink` (a writer with .write). Returns
    (files kept, bytes those extracts add)."""
    from arthur.extracts import extract_files
    files = files_to_keep(process, warn)
    notes, kept = extract_files(files, warn)
    hdr = process.header
    count = len(process.phdrs) + 1
    if hdr.e_phnum == PN_XNUM or count >= PN_XNUM:
        raise NsdebugError(f"{process.path} has too many program headers to add one "
                           f"({len(process.phdrs)})")
    size = process.core_size
    notes_at = size + (-size % 8)
    phdrs = new_program_headers(process, notes_at, len(notes))
    phoff = notes_at + len(notes)
    for k, chunk in enumerate(process.iter_file(CHUNK)):
        if k == 0:
            # The ELF header points at the new program header table.
            chunk = bytearray(chunk)
            struct.pack_into("<Q", chunk, 32, phoff)
            struct.pack_into("<H", chunk, 56, count)
        sink.write(bytes(chunk))
    sink.write(bytes(notes_at - size))
    sink.write(notes)
    sink.write(phdrs)
    return kept, len(notes)
