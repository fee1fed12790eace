"""ELF64 little-endian structures: header, program headers, sections, notes, symbols.

Every field is read by type, never by position, and every count or offset is
checked against the bytes available, so a corrupt file raises CoreFileError.
"""

# The structures and constants are arthur's too (it writes cores): coreformat is the one
# home of both sides; they are re-exported here for the corefile layer.
from arthur.coreformat import (  # noqa: F401
    EHDR,
    ELF_MAGIC,
    ELFCLASS64,
    ELFDATA2LSB,
    EM_X86_64,
    ET_CORE,
    ET_DYN,
    ET_EXEC,
    NHDR,
    NT_GNU_BUILD_ID,
    PHDR,
    PN_XNUM,
    PT_DYNAMIC,
    PT_LOAD,
    PT_NOTE,
    SHDR,
    SHF_COMPRESSED,
    SHT_DYNSYM,
    SHT_NOTE,
    SHT_STRTAB,
    SHT_SYMTAB,
    SYM,
)

from ..errors import CoreFileError
from ..record import record

# Bounds that no sane file exceeds; a larger count means corruption.
MAX_PHDRS = 1 << 20
MAX_SHDRS = 1 << 16


@record
class ElfHeader:
    e_type: int
    e_machine: int
    e_entry: int
    e_phoff: int
    e_shoff: int
    e_phentsize: int
    e_phnum: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int


@record
class ProgramHeader:
    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_filesz: int
    p_memsz: int
    p_align: int

    @property
    def perms(self):
        f = self.p_flags
        return ("r" if f & 4 else "-") + ("w" if f & 2 else "-") + ("x" if f & 1 else "-")


@record
class Section:
    name: str
    sh_type: int
    sh_addr: int
    sh_offset: int
    sh_size: int
    sh_link: int
    sh_entsize: int
    sh_flags: int = 0


@record
class Note:
    name: bytes
    type: int
    desc: bytes


def parse_header(data, what="file"):
    """The ELF header of `data` (the first 64 bytes), checked to be ELF64 LE."""
    if len(data) < 4 or data[:4] != ELF_MAGIC:
        raise CoreFileError(f"{what} is not an ELF file")
    if len(data) < EHDR.size:
        raise CoreFileError(f"{what} is truncated inside the ELF header")
    ident, e_type, e_machine, _v, entry, phoff, shoff, _fl, _ehsz, phentsize, phnum, \
        shentsize, shnum, shstrndx = EHDR.unpack_from(data)
    if ident[4] != ELFCLASS64:
        raise CoreFileError(f"{what} is a 32-bit ELF file; only x86-64 is supported")
    if ident[5] != ELFDATA2LSB:
        raise CoreFileError(f"{what} is a big-endian ELF file; only x86-64 is supported")
    return ElfHeader(e_type, e_machine, entry, phoff, shoff, phentsize, phnum,
                     shentsize, shnum, shstrndx)


def read_program_headers(read, size, hdr, what="file"):
    """Program headers through `read(offset, n)`; `size` is the bytes available."""
    phnum = hdr.e_phnum
    if phnum == PN_XNUM:
        # More than 0xfffe headers: the real count is in section 0's sh_info.
        if hdr.e_shoff == 0 or hdr.e_shoff + SHDR.size > size:
            raise CoreFileError(f"{what}: program header count is in a missing section 0")
        phnum = SHDR.unpack(read(hdr.e_shoff, SHDR.size))[7]
    if phnum == 0:
        return []
    if hdr.e_phentsize != PHDR.size or phnum > MAX_PHDRS:
        raise CoreFileError(f"{what}: corrupt program header table "
                            f"(entry size {hdr.e_phentsize}, count {phnum})")
    end = hdr.e_phoff + phnum * PHDR.size
    if end > size:
        raise CoreFileError(f"{what} is truncated inside its program headers "
                            f"({size} bytes, headers end at {end})")
    raw = read(hdr.e_phoff, phnum * PHDR.size)
    return [ProgramHeader(t, fl, off, va, fsz, msz, al)
            for t, fl, off, va, _pa, fsz, msz, al in PHDR.iter_unpack(raw)]


def read_sections(read, size, hdr, what="file"):
    """Section headers with their names; empty when the file has none."""
    if hdr.e_shoff == 0 or hdr.e_shnum == 0:
        return []
    if hdr.e_shentsize != SHDR.size or hdr.e_shnum > MAX_SHDRS:
        raise CoreFileError(f"{what}: corrupt section header table")
    end = hdr.e_shoff + hdr.e_shnum * SHDR.size
    if end > size:
        raise CoreFileError(f"{what} is truncated inside its section headers")
    rows = list(SHDR.iter_unpack(read(hdr.e_shoff, hdr.e_shnum * SHDR.size)))
    names = b""
    if hdr.e_shstrndx < len(rows):
        s = rows[hdr.e_shstrndx]
        names = read(s[4], s[5])
    out = []
    for name_off, sh_type, flags, addr, offset, sz, link, _info, _align, entsize in rows:
        end = names.find(b"\0", name_off)
        name = names[name_off:end if end >= 0 else None].decode("latin-1")
        out.append(Section(name, sh_type, addr, offset, sz, link, entsize, flags))
    return out


def iter_notes(data, what="notes"):
    """Notes packed in `data` (one PT_NOTE segment or SHT_NOTE section)."""
    off, n = 0, len(data)
    while off + NHDR.size <= n:
        namesz, descsz, ntype = NHDR.unpack_from(data, off)
        off += NHDR.size
        name_end = off + namesz
        desc_off = off + ((namesz + 3) & ~3)
        desc_end = desc_off + descsz
        if desc_end > n:
            raise CoreFileError(f"{what}: note of type {ntype:#x} runs past its segment "
                                f"({descsz} bytes of description)")
        yield Note(bytes(data[off:name_end]).rstrip(b"\0"), ntype, bytes(data[desc_off:desc_end]))
        off = desc_off + ((descsz + 3) & ~3)


def build_id_from_notes(data):
    """The GNU build-id in a block of notes, as hex, or None."""
    try:
        for note in iter_notes(data):
            if note.name == b"GNU" and note.type == NT_GNU_BUILD_ID:
                return note.desc.hex()
    except CoreFileError:
        return None
    return None


def link_delta(phdrs, offset=0):
    """p_vaddr - p_offset of the PT_LOAD that maps file `offset` (a mapping's page-aligned
    offset): a runtime address is bias + vaddr with bias = mapping start - offset - this.
    Not the least delta of all loads: patchelf (auditwheel's wheels: numpy, pandas) adds
    loads whose vaddr lies below their offset."""
    loads = sorted((p for p in phdrs if p.p_type == PT_LOAD), key=lambda p: p.p_vaddr)
    for p in loads:
        if p.p_offset & ~0xFFF <= offset < p.p_offset + max(p.p_filesz, 1):
            return p.p_vaddr - p.p_offset
    return loads[0].p_vaddr - loads[0].p_offset if loads else 0
