"""The ELF layer on bytes built here: headers, program and section headers, notes, and the
notes of a Linux core, each field read by type, every count checked."""

import struct

import pytest

import elfwriter as w
from nsdebug.corefile import elf, notes
from nsdebug.errors import CoreFileError

pytestmark = pytest.mark.unit


def reader(data):
    return lambda off, n: data[off:off + n]


def test_header_fields():
    h = elf.parse_header(w.ehdr(w.ET_CORE, 64, 3, shoff=0x1000, shnum=2, entry=0x401000))
    assert (h.e_type, h.e_machine, h.e_phoff, h.e_phnum, h.e_shoff, h.e_shnum, h.e_entry) \
        == (w.ET_CORE, 62, 64, 3, 0x1000, 2, 0x401000)


@pytest.mark.parametrize("data, why", [
    (b"", "not an ELF file"),
    (b"MZ\x90\x00" + bytes(60), "not an ELF file"),
    (b"\x7fELF\x02\x01", "truncated inside the ELF header"),
    (w.ehdr(w.ET_CORE, 64, 1, cls=1), "32-bit"),
    (w.ehdr(w.ET_CORE, 64, 1, data=2), "big-endian"),
])
def test_bad_headers_say_why(data, why):
    with pytest.raises(CoreFileError, match=why):
        elf.parse_header(data, "f")


def test_program_headers_in_order_with_permissions():
    data = w.core([], [(0x1000, b"a" * 10, 0x2000, w.PF_R | w.PF_W),
                       (0x5000, b"b", None, w.PF_R | w.PF_X)])
    h = elf.parse_header(data)
    ph = elf.read_program_headers(reader(data), len(data), h)
    assert [p.p_type for p in ph] == [w.PT_NOTE, w.PT_LOAD, w.PT_LOAD]
    assert (ph[1].p_vaddr, ph[1].p_filesz, ph[1].p_memsz, ph[1].perms) == \
        (0x1000, 10, 0x2000, "rw-")
    assert ph[2].perms == "r-x"


def test_program_header_count_from_section_zero():
    """PN_XNUM: more than 0xfffe headers, the count is section 0's sh_info."""
    n = 3
    shdr0 = struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, n, 0, 0)
    phdrs = b"".join(w.phdr(w.PT_LOAD, 4, 0, 0x1000 * i, 0, 0x1000) for i in range(n))
    data = w.ehdr(w.ET_CORE, 64, 0xFFFF, shoff=64 + len(phdrs)) + phdrs + shdr0
    h = elf.parse_header(data)
    assert len(elf.read_program_headers(reader(data), len(data), h)) == n


@pytest.mark.parametrize("phnum, phentsize, size_cut, why", [
    (3, 56, 64 + 56, "truncated inside its program headers"),
    (2, 32, None, "corrupt program header table"),
    (1 << 21, 56, None, "corrupt program header table"),
])
def test_program_header_table_checked(phnum, phentsize, size_cut, why):
    head = bytearray(w.ehdr(w.ET_CORE, 64, phnum & 0xFFFF if phnum < 0xFFFF else 0xFFFE))
    struct.pack_into("<H", head, 54, phentsize)
    data = bytes(head) + bytes(56 * 3)
    h = elf.parse_header(data)
    h.e_phnum = phnum
    with pytest.raises(CoreFileError, match=why):
        elf.read_program_headers(reader(data), size_cut or len(data), h)


def test_sections_named_from_their_string_table():
    img = w.Image()
    img.add(".text", b"\x90" * 16, flags=w.SHF_ALLOC | w.SHF_EXECINSTR)
    img.add(".rodata", b"hello")
    data = img.build()
    h = elf.parse_header(data)
    names = [s.name for s in elf.read_sections(reader(data), len(data), h)]
    assert names == ["", ".text", ".rodata", ".shstrtab"]


def test_sections_truncated_or_corrupt():
    img = w.Image()
    img.add(".text", b"\x90")
    data = img.build()
    h = elf.parse_header(data)
    with pytest.raises(CoreFileError, match="truncated inside its section headers"):
        elf.read_sections(reader(data), len(data) - 10, h)
    h.e_shentsize = 40
    with pytest.raises(CoreFileError, match="corrupt section header table"):
        elf.read_sections(reader(data), len(data), h)


def test_notes_aligned_and_named():
    blob = w.note(b"CORE", 1, b"abc") + w.note(b"GNU", 3, bytes.fromhex("deadbeef")) + \
        w.note(b"LINUX", 0x202, b"")
    got = list(elf.iter_notes(blob))
    assert [(n.name, n.type, n.desc) for n in got] == [
        (b"CORE", 1, b"abc"), (b"GNU", 3, bytes.fromhex("deadbeef")), (b"LINUX", 0x202, b"")]
    assert elf.build_id_from_notes(blob) == "deadbeef"


def test_a_note_past_its_segment_is_an_error_not_a_read_beyond():
    blob = bytearray(w.note(b"CORE", 1, b"x" * 8))
    struct.pack_into("<I", blob, 4, 1 << 30)              # descsz
    with pytest.raises(CoreFileError, match="runs past its segment"):
        list(elf.iter_notes(bytes(blob)))
    assert elf.build_id_from_notes(bytes(blob)) is None


def test_prstatus_registers_and_signal():
    regs = {"rip": 0x401234, "rsp": 0x7ffd0000, "rax": 7, "orig_rax": 202, "fs_base": 99}
    t = notes.parse_prstatus(w.prstatus(4321, regs, signo=11, ppid=5))
    assert (t.tid, t.signo, t.cursig, t.ppid) == (4321, 11, 11, 5)
    assert (t.pc, t.sp, t.regs["rax"], t.regs["orig_rax"], t.regs["fs_base"]) == \
        (0x401234, 0x7ffd0000, 7, 202, 99)


def test_prpsinfo():
    p = notes.parse_prpsinfo(w.prpsinfo(77, ppid=3, uid=1000, fname="python3",
                                        args="python3 app.py --port 80 "))
    assert (p.pid, p.ppid, p.uid, p.state, p.fname, p.psargs) == \
        (77, 3, 1000, "S", "python3", "python3 app.py --port 80")


@pytest.mark.parametrize("signo, code, addr, sender, name, code_name", [
    (11, 1, 0x8, None, "SIGSEGV", "SEGV_MAPERR"),
    (11, 2, 0xdead000, None, "SIGSEGV", "SEGV_ACCERR"),
    (7, 2, 0x10, None, "SIGBUS", "BUS_ADRERR"),
    (6, -6, 0, 4242, "SIGABRT", "SI_TKILL"),
    (19, 0, 0, 1, "SIGSTOP", "SI_USER"),
])
def test_siginfo_fault_address_or_sender(signo, code, addr, sender, name, code_name):
    s = notes.parse_siginfo(w.siginfo(signo, code, addr, sender or 0))
    assert (s.name, s.code_name) == (name, code_name)
    if sender is None:
        assert s.addr == addr and s.sender_pid is None
    else:
        assert s.addr is None and s.sender_pid == sender


def test_auxv_stops_at_its_end():
    assert notes.parse_auxv(w.auxv([(3, 0x400040), (9, 0x401000), (31, 0x7ffc1000)]) +
                            struct.pack("<QQ", 5, 5)) == {3: 0x400040, 9: 0x401000,
                                                          31: 0x7ffc1000}


def test_file_note_maps_and_page_size():
    maps, page = notes.parse_file_note(w.nt_file([(0x400000, 0x401000, 0, "/bin/x"),
                                                  (0x7f00, 0x9f00, 0x2000, "/lib/y.so")]))
    assert page == 4096
    assert [(m.start, m.end, m.offset, m.path) for m in maps] == [
        (0x400000, 0x401000, 0, "/bin/x"), (0x7f00, 0x9f00, 0x2000, "/lib/y.so")]


@pytest.mark.parametrize("desc, why", [
    (struct.pack("<QQ", 1 << 40, 4096), "claims"),
    (struct.pack("<QQ", 2, 4096) + bytes(48), "fewer names"),
    (b"short", "expected at least"),
])
def test_file_note_that_lies_about_its_count(desc, why):
    with pytest.raises(CoreFileError, match=why):
        notes.parse_file_note(desc)


def test_short_notes_are_errors():
    with pytest.raises(CoreFileError, match="NT_PRSTATUS"):
        notes.parse_prstatus(b"\0" * 100)
    with pytest.raises(CoreFileError, match="NT_PRPSINFO"):
        notes.parse_prpsinfo(b"\0" * 10)


def test_decode_notes_sorts_by_type_and_keeps_per_thread_notes_with_their_thread():
    raw = [elf.Note(b"CORE", w.NT_PRSTATUS, w.prstatus(1)),
           elf.Note(b"CORE", w.NT_FPREGSET, b"F" * 512),
           elf.Note(b"CORE", w.NT_PRSTATUS, w.prstatus(2)),
           elf.Note(b"CORE", w.NT_FPREGSET, b"G" * 512),
           elf.Note(b"CORE", w.NT_PRPSINFO, w.prpsinfo(1)),
           elf.Note(b"CORE", w.NT_SIGINFO, w.siginfo(11, 1, 8)),
           elf.Note(b"CORE", w.NT_SIGINFO, w.siginfo(6, -6)),       # only the first counts
           elf.Note(b"OTHER", 77, b"")]
    n = notes.decode_notes(raw)
    assert [t.tid for t in n.threads] == [1, 2]
    assert [t.fpregs[:1] for t in n.threads] == [b"F", b"G"]
    assert n.prpsinfo.pid == 1 and n.siginfo.signo == 11
    # A second NT_SIGINFO is kept aside, not taken for the first.
    assert n.other == [("CORE", w.NT_SIGINFO, 128), ("OTHER", 77, 0)]


def _load(offset, vaddr, filesz):
    return elf.ProgramHeader(elf.PT_LOAD, 4, offset, vaddr, filesz, filesz, 0x1000)


@pytest.mark.parametrize("phdrs, offset, delta", [
    # A shared object as ld writes it: the RW load 0x1000 above its offset.
    ([_load(0, 0, 0x27b40), _load(0x954ed0, 0x955ed0, 0x2408c)], 0, 0),
    ([_load(0, 0, 0x27b40), _load(0x954ed0, 0x955ed0, 0x2408c)], 0x954000, 0x1000),
    # numpy's wheel after patchelf: a load appended whose vaddr lies below its offset.
    # Its base is still the first load; the least delta of all would be -0x5c000.
    ([_load(0, 0, 0x27b40), _load(0x954ed0, 0x955ed0, 0x2408c),
      _load(0x9ee000, 0x992000, 0x48a8)], 0, 0),
    ([_load(0, 0, 0x27b40), _load(0x9ee000, 0x992000, 0x48a8)], 0x9ee000, -0x5c000),
    # A non-PIE executable linked at 0x400000.
    ([_load(0, 0x400000, 0x1000), _load(0x1000, 0x401000, 0x2000)], 0, 0x400000),
    # No load maps the offset: the first load's.
    ([_load(0x1000, 0x401000, 0x2000), _load(0, 0x400000, 0x1000)], 0x99000, 0x400000),
    ([], 0, 0),
])
def test_link_delta_is_the_load_that_maps_the_offset(phdrs, offset, delta):
    assert elf.link_delta(phdrs, offset) == delta
