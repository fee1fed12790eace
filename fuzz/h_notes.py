"""Harness: the note parsers, on the bytes of one PT_NOTE segment: the ELF note walk
(corefile/elf.py), the kernel's notes (corefile/notes.py: threads' registers, NT_FILE,
auxv, siginfo, psinfo), the build-id, arthur's notes (its metadata, the file extracts
of corefile/extracts.py read back, the residency record of arthur/coreformat.py). Only
CoreFileError may come out, a malformed extract or residency record is refused whole,
and an extract never serves bytes outside its note.

The mutator knows the notes: a header's name size, description size or type, NT_FILE's
count and page size, an extract's head length, the residency record's page size and
row count; else libFuzzer's own mutations. Seeds: the note segments of gcore cores and
arthur captures of the nine builds (tools/fuzz.py seed)."""

from __future__ import annotations

import json
import random
import struct

try:
    from shape import field_mutation, fuzz_main, instrumented
except ImportError:
    from fuzz.shape import field_mutation, fuzz_main, instrumented
with instrumented():
    from arthur import coreformat
    from nsdebug.corefile import elf, extracts, notes
    from nsdebug.errors import CoreFileError


def headers(data):
    """(offset, fmt) of the length and count fields of the notes in data."""
    out, off = [], 0
    while off + 12 <= len(data) and len(out) < 256:
        namesz, descsz, ntype = struct.unpack_from("<III", data, off)
        out += [(off, "<I"), (off + 4, "<I"), (off + 8, "<I")]
        desc = off + 12 + (namesz + 3) // 4 * 4
        if ntype == notes.NT_FILE:
            out += [(desc, "<Q"), (desc + 8, "<Q")]
        elif ntype == coreformat.NT_ARTHUR_FILE:
            out.append((desc, "<I"))
        elif ntype == coreformat.NT_ARTHUR_RESIDENT:
            out += [(desc + 4, "<I"), (desc + 8, "<Q"), (desc + 16, "<Q"), (desc + 24, "<Q")]
        off = desc + (descsz + 3) // 4 * 4
    return out


def mutate(data, max_size, seed):
    rnd = random.Random(seed)
    found = headers(data)
    if rnd.random() < 0.35 or not found:
        import atheris
        return atheris.Mutate(data, max_size)
    return field_mutation(data, rnd, found)


def one(data):
    try:
        raw = list(elf.iter_notes(data))
    except CoreFileError:
        return
    try:
        notes.decode_notes(raw)
    except CoreFileError:
        pass
    elf.build_id_from_notes(data)
    warned = []
    for path, src in extracts.parse_extracts(raw, warned.append).items():
        assert isinstance(path, str)
        for off, n in ((0, 64), (src.size - 8, 16), (src.size // 2, 4096)):
            if src.covers(off, n):
                got = src.read(off, n)
                assert len(got) == n
    for note in raw:
        if note.type == coreformat.NT_ARTHUR_RESIDENT:
            try:
                page, rows = coreformat.decode_residency(note.desc)
            except ValueError:
                continue
            assert all(start % page == 0 for start, _ in rows)
        elif note.type == coreformat.NT_ARTHUR:
            try:
                json.loads(note.desc.rstrip(b"\0").decode())
            except ValueError:
                pass
    for _name, _type, _desc in coreformat.iter_notes(data):
        pass


if __name__ == "__main__":
    fuzz_main(one, mutate)
