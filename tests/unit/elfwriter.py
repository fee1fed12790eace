"""Small ELF files built in the test itself: cores (notes and PT_LOADs), executables and
shared objects (sections, symbols, build-id, .eh_frame with its header), byte by byte
from the ELF and DWARF specifications, independently of nsdebug's readers and of
arthur's writer (so a reader and a writer cannot agree on the same mistake)."""

from __future__ import annotations

import struct

ET_EXEC, ET_DYN, ET_CORE = 2, 3, 4
PT_LOAD, PT_NOTE, PT_GNU_EH_FRAME = 1, 4, 0x6474E550
PF_X, PF_W, PF_R = 1, 2, 4
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOTE, SHT_NOBITS = 1, 2, 3, 7, 8
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
NT_PRSTATUS, NT_FPREGSET, NT_PRPSINFO, NT_AUXV = 1, 2, 3, 6
NT_SIGINFO, NT_FILE = 0x53494749, 0x46494C45
REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
        "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
        "gs_base", "ds", "es", "fs", "gs")


def ehdr(etype, phoff, phnum, shoff=0, shnum=0, shstrndx=0, entry=0, cls=2, data=1,
         machine=62):
    ident = b"\x7fELF" + bytes([cls, data, 1, 0]) + bytes(8)
    return struct.pack("<16sHHIQQQIHHHHHH", ident, etype, machine, 1, entry, phoff, shoff,
                       0, 64, 56, phnum, 64, shnum, shstrndx)


def phdr(ptype, flags, offset, vaddr, filesz, memsz, align=0x1000):
    return struct.pack("<IIQQQQQQ", ptype, flags, offset, vaddr, vaddr, filesz, memsz, align)


def note(name, ntype, desc):
    name = name + b"\0"
    return (struct.pack("<III", len(name), len(desc), ntype) + name + bytes(-len(name) % 4)
            + desc + bytes(-len(desc) % 4))


# -- the notes of a core ------------------------------------------------------------------
def prstatus(tid, regs=None, signo=0, ppid=1):
    """struct elf_prstatus: siginfo head, cursig, sigpend, sighold, pid..sid, 4 timevals,
    the 27 registers of user_regs_struct, fpvalid."""
    values = [(regs or {}).get(n, 0) for n in REGS]
    return (struct.pack("<iiih2xQQiiii", signo, 0, 0, signo, 0, 0, tid, ppid, tid, tid)
            + bytes(64) + struct.pack("<27Q", *values) + struct.pack("<i4x", 1))


def prpsinfo(pid, ppid=1, uid=1000, fname="python3", args="python3 app.py", state="S"):
    return struct.pack("<cccc4xQIIiiii16s80s", b"\0", state.encode(), b"\0", b"\0", 0, uid,
                       uid, pid, ppid, pid, pid, fname.encode(), args.encode())


def siginfo(signo, code=0, addr=0, sender_pid=0):
    tail = struct.pack("<Q", addr) if addr else struct.pack("<iI", sender_pid, 0)
    return struct.pack("<iii4x", signo, 0, code) + tail + bytes(128 - 24)


def auxv(pairs):
    return b"".join(struct.pack("<QQ", k, v) for k, v in list(pairs) + [(0, 0)])


def nt_file(maps, page=4096):
    """maps: [(start, end, file offset, path)]."""
    head = struct.pack("<QQ", len(maps), page)
    rows = b"".join(struct.pack("<QQQ", s, e, off // page) for s, e, off, _p in maps)
    return head + rows + b"".join(p.encode() + b"\0" for *_x, p in maps)


def core(notes, loads, extra_phdrs=()):
    """An ELF core: `notes` [(name, type, desc)] in one PT_NOTE, then `loads` [(vaddr,
    bytes kept in the file, memsz or None, flags)] each page-aligned in the file."""
    nphdr = 1 + len(loads) + len(extra_phdrs)
    notes_blob = b"".join(note(n, t, d) for n, t, d in notes)
    at = 64 + 56 * nphdr
    notes_at = at
    at += len(notes_blob)
    heads, blobs = [phdr(PT_NOTE, 0, notes_at, 0, len(notes_blob), 0, 4)], []
    for vaddr, data, memsz, flags in loads:
        at = (at + 4095) & ~4095
        heads.append(phdr(PT_LOAD, flags, at, vaddr, len(data), memsz or len(data)))
        blobs.append((at, data))
        at += len(data)
    heads += list(extra_phdrs)
    out = bytearray(ehdr(ET_CORE, 64, nphdr) + b"".join(heads) + notes_blob)
    for off, data in blobs:
        out += bytes(off - len(out)) + data
    return bytes(out)


# -- executables and shared objects ----------------------------------------------------------
class Image:
    """An ELF executable or shared object: sections one after another from file offset
    0x200 (in the first page, as a build-id note is, which cores keep), mapped at `base`
    + offset by one PT_LOAD (the whole file, r-x), with a PT_NOTE for a build-id and a
    PT_GNU_EH_FRAME when those sections are added."""

    def __init__(self, etype=ET_DYN, base=0):
        self.etype, self.base = etype, base
        self.sections = []          # (name, type, flags, offset, data, link, entsize)
        self.at = 0x200

    def vaddr_of_next(self, align=16):
        return self.base + ((self.at + align - 1) & ~(align - 1))

    def add(self, name, data, stype=SHT_PROGBITS, flags=SHF_ALLOC, link=0, entsize=0,
            align=16):
        self.at = (self.at + align - 1) & ~(align - 1)
        self.sections.append((name, stype, flags, self.at, bytes(data), link, entsize))
        self.at += len(data)
        return self.base + self.sections[-1][3]

    def index(self, name):
        return 1 + [s[0] for s in self.sections].index(name)

    def add_symbols(self, symbols, dynamic=False):
        """symbols: [(name, value, size, kind)] with kind "func" or "object"; a .symtab
        (or .dynsym) and its string table."""
        strtab = b"\0"
        rows = [bytes(24)]
        for name, value, size, kind in symbols:
            info = (1 << 4) | (2 if kind == "func" else 1)        # GLOBAL, FUNC/OBJECT
            rows.append(struct.pack("<IBBHQQ", len(strtab), info, 0, 1, value, size))
            strtab += name.encode() + b"\0"
        sname = ".dynstr" if dynamic else ".strtab"
        self.add(sname, strtab, SHT_STRTAB, SHF_ALLOC if dynamic else 0, align=1)
        self.add(".dynsym" if dynamic else ".symtab", b"".join(rows),
                 11 if dynamic else SHT_SYMTAB, SHF_ALLOC if dynamic else 0,
                 link=self.index(sname), entsize=24, align=8)

    def add_build_id(self, bid):
        self.add(".note.gnu.build-id", note(b"GNU", 3, bytes.fromhex(bid)), SHT_NOTE,
                 align=4)

    def build(self):
        names = b"\0"
        name_at = []
        for sec in self.sections:
            name_at.append(len(names))
            names += sec[0].encode() + b"\0"
        shstr_name = len(names)
        names += b".shstrtab\0"
        shstr_off = self.at
        shoff = (shstr_off + len(names) + 7) & ~7
        nsec = len(self.sections) + 2
        shdrs = [bytes(64)]
        for (name, stype, flags, off, data, link, entsize), nat in zip(self.sections, name_at):
            addr = self.base + off if flags & SHF_ALLOC else 0
            shdrs.append(struct.pack("<IIQQQQIIQQ", nat, stype, flags, addr, off, len(data),
                                     link, 0, 8, entsize))
        shdrs.append(struct.pack("<IIQQQQIIQQ", shstr_name, SHT_STRTAB, 0, 0, shstr_off,
                                 len(names), 0, 0, 1, 0))
        phdrs = [phdr(PT_LOAD, PF_R | PF_X, 0, self.base, shstr_off, shstr_off)]
        for name, _t, _f, off, data, _l, _e in self.sections:
            if name == ".note.gnu.build-id":
                phdrs.append(phdr(PT_NOTE, PF_R, off, self.base + off, len(data), len(data),
                                  4))
            elif name == ".eh_frame_hdr":
                phdrs.append(phdr(PT_GNU_EH_FRAME, PF_R, off, self.base + off, len(data),
                                  len(data), 4))
        head = ehdr(self.etype, 64, len(phdrs), shoff, nsec, nsec - 1) + b"".join(phdrs)
        out = bytearray(head + bytes(0x200 - len(head)))
        for _n, _t, _f, off, data, _l, _e in self.sections:
            out += bytes(off - len(out)) + data
        out += bytes(shstr_off - len(out)) + names
        out += bytes(shoff - len(out)) + b"".join(shdrs)
        return bytes(out)


# -- call frame information -------------------------------------------------------------------
def uleb(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def sleb(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        done = (v == 0 and not b & 0x40) or (v == -1 and b & 0x40)
        out.append(b | (0 if done else 0x80))
        if done:
            return bytes(out)


def eh_frame(vaddr, fdes, cie_program=None):
    """An .eh_frame at `vaddr`: one CIE (augmentation "zR", absolute 8-byte pointers,
    code alignment 1, data alignment -8, return address column 16; its program by
    default CFA = rsp+8, rip at CFA-8) and an FDE per (start, length, program).
    Returns (bytes, [vaddr of each FDE])."""
    if cie_program is None:
        cie_program = b"\x0c" + uleb(7) + uleb(8) + bytes([0x80 | 16]) + uleb(1)
    body = (struct.pack("<I", 0) + b"\x01" + b"zR\0" + uleb(1) + sleb(-8) + uleb(16)
            + uleb(1) + b"\x00" + cie_program)
    body += bytes(-(len(body) + 4) % 8)
    out = struct.pack("<I", len(body)) + body
    at = []
    for start, length, program in fdes:
        here = len(out)
        fbody = struct.pack("<I", here + 4) + struct.pack("<QQ", start, length) + uleb(0) \
            + program
        fbody += bytes(-(len(fbody) + 4) % 8)
        at.append(vaddr + here)
        out += struct.pack("<I", len(fbody)) + fbody
    return out + struct.pack("<I", 0), at


def eh_frame_hdr(vaddr, eh_vaddr, rows):
    """.eh_frame_hdr at `vaddr` for (function start, FDE vaddr) rows: version 1,
    eh_frame_ptr pcrel sdata4, count udata4, table datarel sdata4 (0x3B), sorted."""
    rows = sorted(rows)
    head = bytes([1, 0x1B, 0x03, 0x3B]) + struct.pack("<iI", eh_vaddr - (vaddr + 4),
                                                      len(rows))
    return head + b"".join(struct.pack("<ii", s - vaddr, f - vaddr) for s, f in rows)
