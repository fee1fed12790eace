"""Native stacks on files built here: symbols (the symbol table, a separate debug file found
by build-id, MiniDebugInfo), call frame information (.eh_frame through .eh_frame_hdr:
the rule at each address of a function, DWARF expressions) and the unwinder walking a
synthetic thread's stack through three functions to its end."""

import lzma
import struct

import pytest

import elfwriter as w
from nsdebug.corefile import open_core
from nsdebug.corefile.symbols import ElfFile
from nsdebug.native.cfi import CfiError, ModuleCfi, eval_expr
from nsdebug.native.symbolize import Symbolizer
from nsdebug.native.unwind import Unwinder

pytestmark = pytest.mark.unit

BASE = 0x400000
STACK = 0x7FFF0000
BID = "aa" * 20
# The usual prologue's rules: after `push rbp` (+1) CFA = rsp+16, rbp saved at CFA-16;
# after `mov rbp, rsp` (+4) CFA = rbp+16.
PROLOGUE = (bytes([0x40 | 1]) + b"\x0e" + w.uleb(16) + bytes([0x80 | 6]) + w.uleb(2)
            + bytes([0x40 | 3]) + b"\x0d" + w.uleb(6))


def image(symbols=True, build_id=BID, eh=True):
    """An executable with three functions (inner, outer, main), 0x40 bytes each."""
    img = w.Image(w.ET_EXEC, BASE)
    img.add_build_id(build_id)
    text = img.add(".text", b"\x55\x48\x89\xe5" + b"\x90" * (0xC0 - 4),
                   flags=w.SHF_ALLOC | w.SHF_EXECINSTR, align=0x1000)
    funcs = {"inner": text, "outer": text + 0x40, "main": text + 0x80}
    if eh:
        eh_at = img.vaddr_of_next(8)
        fdes = [(funcs["inner"], 0x40, PROLOGUE), (funcs["outer"], 0x40, PROLOGUE),
                (funcs["main"], 0x40, b"")]
        data, fde_at = w.eh_frame(eh_at, fdes)
        assert img.add(".eh_frame", data, align=8) == eh_at
        hdr_at = img.vaddr_of_next(4)
        img.add(".eh_frame_hdr", w.eh_frame_hdr(hdr_at, eh_at,
                                                [(f[0], a) for f, a in zip(fdes, fde_at)]),
                align=4)
    if symbols:
        img.add_symbols([(n, a, 0x40, "func") for n, a in funcs.items()])
    return img.build(), funcs


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_symbols_name_covered_addresses_only(tmp_path):
    data, funcs = image()
    f = ElfFile(write(tmp_path, "app", data))
    assert f.build_id == BID
    assert f.lookup("outer")[0] == funcs["outer"]
    name, off, size = f.symbolize(funcs["outer"] + 5)
    assert (name, off, size) == ("outer", 5, 0x40)
    assert f.lookup("nothing") is None


def symbol_table(tmp_path, symbols, dynamic):
    img = w.Image(w.ET_EXEC, BASE)
    text = img.add(".text", b"\x90" * 0x300, flags=w.SHF_ALLOC | w.SHF_EXECINSTR,
                   align=0x1000)
    img.add_symbols([(n, text + a, size, "func") for n, a, size in symbols], dynamic)
    return ElfFile(write(tmp_path, "lib", img.build())), text


@pytest.mark.parametrize("dynamic", [True, False])
def test_a_pc_past_a_symbols_extent_is_not_named_after_it(tmp_path, dynamic):
    # As in a stripped libc: an export of 0x40 bytes, then code no symbol describes.
    f, text = symbol_table(tmp_path, [("sem_trywait", 0, 0x40), ("later", 0x200, 0x40)],
                           dynamic)
    assert f.symbolize(text + 0x3f)[:2] == ("sem_trywait", 0x3f)
    assert f.symbolize(text + 0x40) is None
    assert f.symbolize(text + 0x15e) is None
    assert f.symbolize(text + 0x210)[:2] == ("later", 0x10)


def test_a_symbol_without_size_names_up_to_the_next_only_in_a_complete_table(tmp_path):
    rows = [("_start", 0, 0), ("main", 0x100, 0x40)]
    full, text = symbol_table(tmp_path, rows, dynamic=False)     # .symtab: nothing hidden
    assert full.symbolize(text + 0x20)[:2] == ("_start", 0x20)
    assert full.symbolize(text + 0x240) is None                  # past the last one
    exported, text = symbol_table(tmp_path, rows, dynamic=True)  # .dynsym alone
    assert exported.symbolize(text + 0x20) is None
    assert exported.symbolize(text + 0x120)[:2] == ("main", 0x20)


def test_cfi_rules_at_each_step_of_the_prologue(tmp_path):
    data, funcs = image()
    cfi = ModuleCfi(ElfFile(write(tmp_path, "app", data)))
    inner = funcs["inner"]
    row, cie, begin = cfi.row_for(inner)
    assert begin == inner and (row.cfa_reg, row.cfa_off) == (7, 8)
    assert row.rules[16] == ("o", -8)
    row, _, _ = cfi.row_for(inner + 1)
    assert (row.cfa_reg, row.cfa_off) == (7, 16) and row.rules[6] == ("o", -16)
    row, _, _ = cfi.row_for(inner + 10)
    assert (row.cfa_reg, row.cfa_off) == (6, 16) and row.rules[6] == ("o", -16)
    assert cfi.row_for(funcs["main"] + 3)[2] == funcs["main"]
    assert cfi.row_for(funcs["main"] + 0x40) is None           # past every FDE


def test_no_unwind_information(tmp_path):
    data, funcs = image(eh=False)
    assert ModuleCfi(ElfFile(write(tmp_path, "app", data))).row_for(funcs["inner"]) is None


@pytest.mark.parametrize("expr, want", [
    (bytes([0x77]) + w.sleb(16), 0x1010),                      # breg7 (rsp) + 16
    (bytes([0x76]) + w.sleb(-8) + b"\x06", 0x4242),            # deref(rbp - 8)
    (b"\x31\x32\x22", 3),                                      # lit1 lit2 plus
    (b"\x10" + w.uleb(300) + b"\x11" + w.sleb(-44) + b"\x22", 256),
    (b"\x35\x33\x1b", 1),                                      # 5 / 3
    (b"\x35\x30\x1b", 0),                                      # 5 / 0: no trap
])
def test_dwarf_expressions(expr, want):
    regs = {7: 0x1000, 6: 0x2008}
    mem = {0x2000: 0x4242}
    assert eval_expr(expr, regs, mem.__getitem__) == want


@pytest.mark.parametrize("expr", [b"", b"\x7e\x00", b"\xff", b"\x2f\x00"])
def test_bad_expressions_raise_cfi_errors(expr):
    with pytest.raises(CfiError):
        eval_expr(expr, {7: 0}, lambda a: 0)


def stack_core(tmp_path, exe, funcs):
    """A thread stopped in inner+8, called from outer, called from main; main's return
    address is 0 (the outermost frame)."""
    s1, s2 = STACK + 0x300, STACK + 0x400
    page = bytearray(0x1000)

    def put(addr, value):
        struct.pack_into("<Q", page, addr - STACK, value)
    put(s1, s2)                       # inner's saved rbp
    put(s1 + 8, funcs["outer"] + 10)  # inner's return address, after a call in outer
    put(s2, 0)                        # outer's saved rbp
    put(s2 + 8, funcs["main"] + 5)
    put(s2 + 16, 0)                   # main's return address: none
    regs = {"rip": funcs["inner"] + 8, "rsp": s1 - 0x10, "rbp": s1}
    notes = [(b"CORE", w.NT_PRSTATUS, w.prstatus(7, regs)),
             (b"CORE", w.NT_FILE, w.nt_file([(BASE, BASE + 0x3000, 0, exe)]))]
    return write(tmp_path, "core", w.core(notes, [(STACK, bytes(page), None, 6)]))


def test_unwinding_through_three_functions(tmp_path):
    data, funcs = image()
    exe = write(tmp_path, "app", data)
    p = open_core(stack_core(tmp_path, exe, funcs))
    frames = Unwinder(p, Symbolizer(p)).unwind(p.threads[0])
    assert [(f.function, f.offset, f.how) for f in frames] == [
        ("inner", 8, "registers"), ("outer", 10, "cfi"), ("main", 5, "cfi")]
    assert frames[1].func_start == funcs["outer"]
    assert frames[0].cfa == STACK + 0x300 + 16


def test_names_from_a_debug_file_found_by_build_id(tmp_path):
    stripped, funcs = image(symbols=False)
    full, _ = image()
    exe = write(tmp_path, "app", stripped)
    debug = tmp_path / "debug" / ".build-id" / BID[:2]
    debug.mkdir(parents=True)
    (debug / (BID[2:] + ".debug")).write_bytes(full)
    p = open_core(stack_core(tmp_path, exe, funcs))
    assert Symbolizer(p).symbolize(funcs["outer"] + 1)[0] is None
    sym = Symbolizer(p, [str(tmp_path / "debug")])
    assert sym.symbolize(funcs["outer"] + 1)[:2] == ("outer", 1)


def test_names_from_minidebuginfo(tmp_path):
    """.gnu_debugdata: an xz-compressed ELF holding the symbol table (Fedora's, and
    Debian's stripped libraries)."""
    full, funcs = image()
    img = w.Image(w.ET_EXEC, BASE)
    img.add_build_id(BID)
    img.add(".text", b"\x55\x48\x89\xe5" + b"\x90" * (0xC0 - 4),
            flags=w.SHF_ALLOC | w.SHF_EXECINSTR, align=0x1000)
    img.add(".gnu_debugdata", lzma.compress(full, format=lzma.FORMAT_XZ), flags=0)
    exe = write(tmp_path, "app", img.build())
    p = open_core(stack_core(tmp_path, exe, funcs))
    assert Symbolizer(p).symbolize(funcs["main"] + 2)[:2] == ("main", 2)


def test_a_stack_that_loops_ends(tmp_path):
    data, funcs = image()
    exe = write(tmp_path, "app", data)
    s1 = STACK + 0x300
    page = bytearray(0x1000)
    struct.pack_into("<QQ", page, 0x300, s1, funcs["inner"] + 8)   # returns into itself
    regs = {"rip": funcs["inner"] + 8, "rsp": s1 - 0x10, "rbp": s1}
    core = write(tmp_path, "core", w.core(
        [(b"CORE", w.NT_PRSTATUS, w.prstatus(7, regs)),
         (b"CORE", w.NT_FILE, w.nt_file([(BASE, BASE + 0x3000, 0, exe)]))],
        [(STACK, bytes(page), None, 6)]))
    p = open_core(core)
    frames = Unwinder(p, Symbolizer(p)).unwind(p.threads[0])
    assert 1 <= len(frames) <= 3
