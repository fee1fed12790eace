"""Our readers of ELF files, core notes and DWARF against pyelftools, the reference they
replaced on the hot paths (README: "Why the ELF and DWARF readers are our own"): on the
interpreter and debug file of every build, on a core of every build, and on the fuzz
corpora. The same sections, symbols, program headers, notes, line rows and
subprograms, or an error from both; except where pyelftools alone refuses a damaged
unit (it must name every line-table content type), where ours must fail closed."""

from __future__ import annotations

import glob
import io
import os
import random
import struct

import pytest
from elftools.common.exceptions import ELFError
from elftools.construct.core import ConstructError
from elftools.dwarf.descriptions import describe_form_class
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_CORE_NOTE_N_TYPE, ENUM_NOTE_N_TYPE, ENUM_P_TYPE_BASE

from nsdebug.corefile import elf
from nsdebug.corefile.symbols import ElfFile
from nsdebug.errors import NsdebugError
from nsdebug.native.dwarf import DwarfFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CU_SAMPLE = 6                 # compile units per file compared row by row (pyelftools is slow)


def dwarf_files(build):
    """The files of a build that hold its DWARF and symbols: pyenv's libpython (built
    with -g), or the detached debug file of Debian's interpreter, with the interpreter."""
    if build.source == "debian":
        bid = ElfFile(os.path.realpath(build.exe)).build_id
        debug = os.path.join(build.debug_dir, ".build-id", bid[:2], bid[2:] + ".debug")
        return [os.path.realpath(build.exe), debug]
    prefix = os.path.dirname(os.path.dirname(build.exe))
    libs = glob.glob(os.path.join(prefix, "lib", f"libpython{build.version}*.so.1.0"))
    return [os.path.realpath(build.exe)] + libs


def _their_sections(ef):
    return [(s.name, s["sh_type"] if isinstance(s["sh_type"], int) else None,
             s["sh_flags"], s["sh_offset"], s["sh_size"]) for s in ef.iter_sections()]


def _our_sections(f):
    return [(s.name, None, s.sh_flags, s.sh_offset, s.sh_size) for s in f.sections]


def _their_symbols(ef):
    """{(value, name): {sizes}} of the symbols our table keeps (defined, non-zero value,
    NOTYPE/OBJECT/FUNC, a name), from .symtab and .dynsym."""
    out = {}
    for sec in ef.iter_sections():
        if sec["sh_type"] not in ("SHT_SYMTAB", "SHT_DYNSYM"):
            continue
        for sym in sec.iter_symbols():
            if sym["st_shndx"] == "SHN_UNDEF" or not sym["st_value"] or not sym.name or \
                    sym["st_info"]["type"] not in ("STT_NOTYPE", "STT_OBJECT", "STT_FUNC") \
                    or sym.name.startswith("$"):
                continue
            out.setdefault((sym["st_value"], sym.name), set()).add(sym["st_size"])
    return out


def compare_elf(path):
    with open(path, "rb") as fh:
        theirs = ELFFile(fh)
        want_sections = _their_sections(theirs)
        want_symbols = _their_symbols(theirs)
    ours = ElfFile(path)
    got = _our_sections(ours)
    assert [g[0] for g in got] == [w[0] for w in want_sections]
    assert [g[2:] for g in got] == [w[2:] for w in want_sections]
    got_symbols = {(v, n): s for v, s, n in ours.symbols}
    assert set(got_symbols) == set(want_symbols), path
    assert all(got_symbols[k] in want_symbols[k] for k in got_symbols)
    return len(want_sections), len(want_symbols)


def _their_name(die, depth=0):
    if "DW_AT_name" in die.attributes:
        return die.attributes["DW_AT_name"].value.decode("utf-8", "surrogateescape")
    for at in ("DW_AT_abstract_origin", "DW_AT_specification"):
        if at in die.attributes and depth < 4:
            return _their_name(die.get_DIE_from_attribute(at), depth + 1)
    return None


def _their_extent(die):
    low = die.attributes.get("DW_AT_low_pc")
    high = die.attributes.get("DW_AT_high_pc")
    if low is None or high is None:
        return None
    hi = high.value if describe_form_class(high.form) == "address" else low.value + high.value
    return low.value, hi


def compare_dwarf(path, rnd):
    """Line rows and subprograms of a sample of compile units: (units, rows, names)."""
    with open(path, "rb") as fh:
        theirs = ELFFile(fh)
        if not theirs.has_dwarf_info():
            return 0, 0, 0
        dw = theirs.get_dwarf_info()
        cus = list(dw.iter_CUs())
        picked = cus[:2] + rnd.sample(cus[2:], max(len(cus) - 2, 0))
        ours = DwarfFile(ElfFile(path))
        rows_checked = names_checked = 0
        for k, cu in enumerate(picked):
            if k >= CU_SAMPLE and (names_checked >= 20 or k >= 40):
                break
            unit = ours.unit(cu.cu_offset)
            assert unit.version == cu["version"]
            prog = dw.line_program_for_CU(cu) if k < CU_SAMPLE else None
            table = ours.lines(unit) if k < CU_SAMPLE else None
            if k >= CU_SAMPLE:
                pass                      # names only: the line rows of a few units suffice
            elif prog is None:
                assert table is None
            else:
                want = {(e.state.address, e.state.file, e.state.line)
                        for e in prog.get_entries()
                        if e.state is not None and not e.state.end_sequence}
                got = {(a, f, ln) for a, f, ln in zip(table.addrs, table.files, table.lines)
                       if f != 0xFFFFFFFF}
                assert got == want, (path, cu.cu_offset)
                rows_checked += len(want)
            top = cu.get_top_DIE()
            subs = [d for d in top.iter_children() if d.tag == "DW_TAG_subprogram"]
            for die in subs[:40]:
                extent = _their_extent(die)
                if extent is None or extent[0] >= extent[1]:
                    continue
                places = ours.locate(extent[0])
                assert places, (path, hex(extent[0]))
                assert places[-1][0] == _their_name(die), (path, hex(extent[0]))
                names_checked += 1
    return min(k + 1, len(picked)) if picked else 0, rows_checked, names_checked


def test_elf_and_dwarf_readers_agree_with_pyelftools(build):
    rnd = random.Random(build.id)
    compared = []
    for path in dwarf_files(build):
        sections, symbols = compare_elf(path)
        units, rows, names = compare_dwarf(path, rnd)
        compared.append((os.path.basename(path), sections, symbols, units, rows, names))
    assert sum(c[4] for c in compared) > 1000, compared       # line rows were compared
    assert sum(c[5] for c in compared) >= 10, compared        # and subprograms


def _their_type(t):
    if isinstance(t, int):
        return t
    return ENUM_CORE_NOTE_N_TYPE.get(t, ENUM_NOTE_N_TYPE.get(t))


def compare_notes(data):
    """Our notes of a note segment against pyelftools', the segment wrapped in the
    smallest ELF core that holds it; (count, or "error" when both refuse it)."""
    from elftools.elf.notes import iter_notes
    head = bytearray(64)
    head[:7] = b"\x7fELF\x02\x01\x01"
    struct.pack_into("<HHIQQQIHHHHHH", head, 16, 4, 62, 1, 0, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 4, 4, 120, 0, 0, len(data), 0, 4)
    ef = ELFFile(io.BytesIO(bytes(head) + phdr + data))
    try:
        theirs = [(n["n_name"], _their_type(n["n_type"]), bytes(n["n_descdata"]))
                  for n in iter_notes(ef, 120, len(data))]
        their_error = None
    except (ELFError, struct.error, UnicodeDecodeError, ValueError, KeyError) as e:
        theirs, their_error = None, e
    try:
        ours = [(n.name.decode("latin-1"), n.type, n.desc) for n in elf.iter_notes(data)]
    except NsdebugError:
        ours = None
    if theirs is None or ours is None:
        # Both refuse it; or pyelftools, which decodes the descriptions it knows, fails
        # on one our reader keeps as bytes (then the headers must have been sound).
        assert ours is None or their_error is not None, data[:64]
        return "error"
    assert [(n, t, d) for n, t, d in ours] == [
        (n.rstrip("\0") if isinstance(n, str) else n, t, d) for n, t, d in theirs]
    return len(ours)


def test_core_headers_and_notes_agree_with_pyelftools(cores, build):
    cap = cores.stacks(build)
    with open(cap.core, "rb") as fh:
        theirs = ELFFile(fh)
        want = [(ENUM_P_TYPE_BASE.get(s["p_type"], s["p_type"]), s["p_offset"], s["p_vaddr"],
                 s["p_filesz"], s["p_memsz"], s["p_flags"]) for s in theirs.iter_segments()]
        with open(cap.core, "rb") as f:
            hdr = elf.parse_header(f.read(64))
            got = [(p.p_type, p.p_offset, p.p_vaddr, p.p_filesz, p.p_memsz, p.p_flags)
                   for p in elf.read_program_headers(lambda o, n: os.pread(f.fileno(), n, o),
                                                     os.path.getsize(cap.core), hdr)]
    assert got == want
    notes = 0
    with open(cap.core, "rb") as f:
        for p_type, off, _va, size, _ms, _fl in got:
            if p_type == elf.PT_NOTE:
                n = compare_notes(os.pread(f.fileno(), size, off))
                assert n != "error"
                notes += n
    assert notes >= 4 * 3                    # four threads' notes at least


def corpus(name):
    files = []
    for kind in ("corpus", "regressions"):
        files += sorted(glob.glob(os.path.join(ROOT, "fuzz", kind, name, "*")))
    return files


@pytest.mark.parametrize("path", corpus("h_notes"), ids=os.path.basename)
def test_fuzz_corpus_notes_agree_with_pyelftools(path):
    with open(path, "rb") as f:
        compare_notes(f.read())


@pytest.mark.parametrize("path", corpus("h_dwarf"), ids=os.path.basename)
def test_fuzz_corpus_debug_files_agree_with_pyelftools(path):
    try:
        with open(path, "rb") as fh:
            ELFFile(fh)
        theirs_ok = True
    except ELFError:
        theirs_ok = False
    try:
        ElfFile(path).sections
        ours_ok = True
    except NsdebugError:
        ours_ok = False
    assert theirs_ok == ours_ok
    if ours_ok:
        compare_elf(path)
        try:
            compare_dwarf(path, random.Random(0))
        except (ELFError, ConstructError) as e:
            # pyelftools refuses a damaged unit (it is stricter: a line table content
            # type it has no name for is an error to it); ours must then fail closed
            # too: places or none, never an exception of another kind.
            from nsdebug.native.dwarf import SourceInfo
            f = ElfFile(path)
            for value, _size, _name in f.symbols[:20]:
                assert isinstance(SourceInfo().locate(f, value), list), e
