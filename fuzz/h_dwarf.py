"""Harness: the DWARF reader (native/dwarf.py over native/_dwarfc.c) on whole debug files:
the file is opened as nsdebug opens one (ElfFile), and the places of its functions'
addresses are asked for as `bt --native` asks (SourceInfo.locate). Damaged DWARF may
cost a place, never raise anything but nsdebug's own errors, never read out of bounds.

The mutator knows the file's structure: it changes bytes inside one DWARF section (the
inflated bytes of a compressed one, compressed again so that zlib is not all the
fuzzer meets), or one section header field (offset, size, flags), or hands the file
to libFuzzer's own byte mutations. Seeds: small debug files of the nine builds
(tools/fuzz.py seed)."""

from __future__ import annotations

import random
import struct
import zlib

try:
    from shape import field_mutation, fuzz_main, overwrite, put, scratch_path
except ImportError:
    from fuzz.shape import field_mutation, fuzz_main, overwrite, put, scratch_path
# Not instrumented: the C reader's counters steer this one (Python's would cost 7x the
# executions); the headers and names in dwarf.py are still run on every input.
from nsdebug.corefile.symbols import ElfFile  # noqa: E402
from nsdebug.errors import NsdebugError  # noqa: E402
from nsdebug.native.dwarf import SourceInfo  # noqa: E402

SCRATCH = scratch_path("dwarf")
SHDR = struct.Struct("<IIQQQQIIQQ")
CHDR = struct.Struct("<IIQQ")
SHF_COMPRESSED = 0x800


def sections(data):
    """[(header offset, name, sh_flags, sh_offset, sh_size)] of an ELF file, as far as
    its headers can be read; [] when they cannot."""
    try:
        shoff, = struct.unpack_from("<Q", data, 40)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
        if shentsize != SHDR.size or shnum > 512:
            return []
        heads = [SHDR.unpack_from(data, shoff + i * SHDR.size) for i in range(shnum)]
        names_at = heads[shstrndx][4]
        out = []
        for i, h in enumerate(heads):
            end = data.find(b"\0", names_at + h[0])
            name = data[names_at + h[0]:end].decode("latin-1")
            out.append((shoff + i * SHDR.size, name, h[2], h[4], h[5]))
        return out
    except (struct.error, IndexError):
        return []


def mutate(data, max_size, seed):
    rnd = random.Random(seed)
    secs = sections(data)
    dwarf = [s for s in secs if s[1].startswith(".debug_") and s[4]]
    how = rnd.random()
    if not dwarf or how < 0.25:
        import atheris
        return atheris.Mutate(data, max_size)
    head, name, flags, off, size = rnd.choice(dwarf)
    if how < 0.4:
        return field_mutation(data, rnd, [(head + 24, "<Q"), (head + 32, "<Q"),
                                          (head + 8, "<Q")])
    body = data[off:off + size]
    if flags & SHF_COMPRESSED and len(body) > CHDR.size:
        try:
            plain = zlib.decompress(body[CHDR.size:])
        except zlib.error:
            return data
        plain = _damage(plain, rnd)
        new = CHDR.pack(1, 0, len(plain), 1) + zlib.compress(plain, 1)
        if rnd.random() < 0.2:          # the header's own size wrong
            new = overwrite(new, 8, rnd.choice([0, 1, len(plain) * 2, 1 << 40]), "<Q")
        # Appended at the end, the header moved to it: the rest of the file stays put.
        at = len(data)
        out = data + new
        out = overwrite(out, head + 24, at, "<Q")
        out = overwrite(out, head + 32, len(new), "<Q")
        return out[:max_size] if len(out) <= max_size else data
    return data[:off] + _damage(body, rnd) + data[off + size:]


def _damage(body, rnd):
    if not body:
        return body
    b = bytearray(body)
    how = rnd.randrange(3)
    if how == 0:
        for _ in range(rnd.randint(1, 16)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
    elif how == 1:
        at = rnd.randrange(len(b))
        n = min(rnd.randint(1, 256), len(b) - at)
        b[at:at + n] = rnd.randbytes(n)
    else:                       # a 4- or 8-byte length or offset made hostile
        at = rnd.randrange(max(len(b) - 8, 1))
        width = rnd.choice([4, 8])
        b[at:at + width] = rnd.choice([0, 0xFFFFFFF0, (1 << 31) - 1, 1 << 30, len(b),
                                       len(b) + 1]).to_bytes(8, "little")[:width]
    return bytes(b)


def one(data):
    put(SCRATCH, data)
    try:
        elf_file = ElfFile(SCRATCH)
        symbols = elf_file.symbols
    except NsdebugError:
        return
    info = SourceInfo()
    for value, size, _name in symbols[:12]:
        for vaddr in (value, value + size // 2):
            places = info.locate(elf_file, vaddr)
            assert isinstance(places, list)


if __name__ == "__main__":
    fuzz_main(one, mutate, SCRATCH)
