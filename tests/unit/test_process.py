"""A core opened as a process, on cores built here: threads, signal, argv from the initial
stack, memory from the core and from the files it mapped, and every way a file can be
bad or missing, each a one-line error or a warning, never a wrong byte."""

import os
import struct

import pytest

import elfwriter as w
from nsdebug.corefile import open_core
from nsdebug.corefile.memory import Segment
from nsdebug.errors import CoreFileError, FaultError

pytestmark = pytest.mark.unit

EXE_BASE = 0x400000
STACK = 0x7FFF0000
HEAP = 0x10000000
BUILD_ID = "0123456789abcdef0123456789abcdef01234567"


def executable(build_id=BUILD_ID):
    img = w.Image(w.ET_EXEC, EXE_BASE)
    img.add_build_id(build_id)
    text = img.add(".text", b"\x55\x48\x89\xe5\xc3" + b"\x90" * 59,
                   flags=w.SHF_ALLOC | w.SHF_EXECINSTR, align=0x1000)
    img.add(".rodata", b"read-only bytes from the file\0")
    img.add_symbols([("main", text, 5, "func"), ("helper", text + 16, 8, "func")])
    return img.build(), text


def initial_stack(argv, envp, execfn_at):
    """The top page of a main thread's stack as the kernel lays it out: argc, argv[],
    NULL, envp[], NULL, auxv, then the strings (AT_EXECFN points at the first)."""
    strings = b""
    ptrs = []
    base = STACK + 0x800
    for s in [argv[0]] + argv + envp:
        ptrs.append(base + len(strings))
        strings += s.encode() + b"\0"
    execfn = ptrs[0]
    argv_p, env_p = ptrs[1:1 + len(argv)], ptrs[1 + len(argv):]
    aux = [(3, EXE_BASE + 64), (9, EXE_BASE + 0x1000), (31, execfn)]
    words = [len(argv)] + argv_p + [0] + env_p + [0]
    head = struct.pack(f"<{len(words)}Q", *words) + w.auxv(aux)
    page = bytearray(0x1000)
    page[0x100:0x100 + len(head)] = head
    page[0x800:0x800 + len(strings)] = strings
    return bytes(page), aux


def make_core(tmp_path, *, signo=11, fault=0x8, keep_header=False, build_id=BUILD_ID,
              exe_path=None, extra_notes=()):
    data, text = executable()
    exe = exe_path or str(tmp_path / "app")
    with open(exe, "wb") as f:
        f.write(data)
    stack, aux = initial_stack(["app", "--port", "8080"], ["HOME=/root", "LANG=C"], 0)
    regs = {"rip": text + 1, "rsp": STACK + 0x100, "rbp": STACK + 0x200, "orig_rax": 202}
    heap = b"".join(struct.pack("<Q", v) for v in (0x1122334455667788, HEAP + 16, 7)) + \
        b"a C string\0"
    loads = [(STACK, stack, None, w.PF_R | w.PF_W), (HEAP, heap, 0x2000, w.PF_R | w.PF_W)]
    if keep_header:
        hdr, _ = executable(build_id)
        loads.insert(0, (EXE_BASE, hdr[:0x1000], 0x2000, w.PF_R | w.PF_X))
    notes = [(b"CORE", w.NT_PRSTATUS, w.prstatus(1001, regs, signo)),
             (b"CORE", w.NT_PRSTATUS, w.prstatus(1002, {"rip": text + 16, "rsp": STACK})),
             (b"CORE", w.NT_PRPSINFO, w.prpsinfo(1001, args="app --port 8080")),
             (b"CORE", w.NT_SIGINFO, w.siginfo(signo, 1, fault) if signo else
              w.siginfo(19, 0, 0, 1)),
             (b"CORE", w.NT_AUXV, w.auxv(aux)),
             (b"CORE", w.NT_FILE, w.nt_file([(EXE_BASE, EXE_BASE + 0x2000, 0, exe)])),
             *extra_notes]
    path = tmp_path / "core"
    path.write_bytes(w.core(notes, loads))
    return str(path), exe, text


def test_threads_signal_and_process(tmp_path):
    core, exe, text = make_core(tmp_path)
    p = open_core(core)
    assert [t.tid for t in p.threads] == [1001, 1002]
    assert p.pid == 1001 and p.notes.prpsinfo.psargs == "app --port 8080"
    assert p.crashed_thread.tid == 1001
    assert p.notes.siginfo.name == "SIGSEGV" and p.notes.siginfo.addr == 0x8
    assert p.made_by == "the Linux kernel (fatal signal)"
    assert p.threads[0].pc == text + 1 and p.threads[0].regs["orig_rax"] == 202
    assert not p.warnings


def test_a_stopped_process_did_not_crash(tmp_path):
    p = open_core(make_core(tmp_path, signo=0)[0])
    assert p.crashed_thread is None


def test_argv_and_environment_from_the_initial_stack(tmp_path):
    p = open_core(make_core(tmp_path)[0])
    st = p.initial_stack
    assert st.argv == ["app", "--port", "8080"] and st.environ == ["HOME=/root", "LANG=C"]


def test_executable_named_by_the_aux_vector(tmp_path):
    core, exe, _ = make_core(tmp_path)
    p = open_core(core)
    assert p.executable_path == exe and p.executable.path == exe


def test_memory_from_the_core_and_from_the_mapped_file(tmp_path):
    core, exe, text = make_core(tmp_path)
    p = open_core(core)
    m = p.memory
    assert m.u64(HEAP) == 0x1122334455667788 and m.i64(HEAP + 16) == 7
    assert m.cstring(HEAP + 24) == b"a C string"
    assert m.read(text, 5) == b"\x55\x48\x89\xe5\xc3"          # from the file on disk
    rodata = p.executable.file.section(".rodata").sh_addr
    assert m.cstring(rodata) == b"read-only bytes from the file"
    # The heap segment's memsz is larger than what the core holds: the rest is missing.
    with pytest.raises(FaultError, match="did not keep"):
        m.read(HEAP + 0x1800, 8)
    with pytest.raises(FaultError, match="not mapped"):
        m.read(0x1234, 1)


def test_read_prefix_gives_what_is_there_and_why_it_stops(tmp_path):
    p = open_core(make_core(tmp_path)[0])
    seg = p.memory.find_segment(HEAP)
    data, why = p.memory.read_prefix(HEAP + seg.filesz - 4, 16)
    assert len(data) == 4 and "did not keep" in why
    data, why = p.memory.read_prefix(HEAP, 8)
    assert why is None and len(data) == 8


def test_a_read_across_two_segments(tmp_path):
    p = open_core(make_core(tmp_path)[0])
    seg = p.memory.find_segment(STACK)
    p.memory.add_segment(Segment(seg.end, seg.end + 0x1000, seg.offset, 0x1000, "rw-"))
    assert len(p.memory.read(seg.end - 8, 16)) == 16


def test_symbols_of_the_mapped_executable(tmp_path):
    core, exe, text = make_core(tmp_path)
    p = open_core(core)
    assert p.symbol_address("helper") == text + 16
    m, name, off = p.symbolize(text + 3)
    assert (m.path, name, off) == (exe, "main", 3)
    info = p.address_info(text + 18)
    assert (info.symbol, info.offset, info.module) == ("helper", 2, exe)
    assert info.mapping.endswith(exe)


def test_mappings_say_where_their_bytes_come_from(tmp_path):
    core, exe, _ = make_core(tmp_path)
    rows = {m.start: m for m in open_core(core).mappings()}
    assert rows[EXE_BASE].source == "file" and rows[EXE_BASE].file == exe
    assert rows[STACK].source == "core"
    assert rows[HEAP].source == "core (partial)"


def test_a_missing_file_is_named_once_and_its_bytes_are_missing(tmp_path):
    core, exe, text = make_core(tmp_path)
    os.unlink(exe)
    p = open_core(core)
    with pytest.raises(FaultError):
        p.memory.read(text, 4)
    assert p.memory.u64(HEAP) == 0x1122334455667788        # the core's bytes still read


def test_lib_path_and_sysroot_find_a_moved_file(tmp_path):
    core, exe, text = make_core(tmp_path)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    os.rename(exe, moved / "app")
    assert open_core(core, lib_path=[str(moved)]).memory.read(text, 1) == b"\x55"
    root = tmp_path / "root"
    (root / str(tmp_path).lstrip("/")).mkdir(parents=True)
    os.rename(moved / "app", root / str(tmp_path).lstrip("/") / "app")
    assert open_core(core, sysroot=str(root)).memory.read(text, 1) == b"\x55"


def test_a_file_with_another_build_id_is_not_used(tmp_path):
    core, exe, text = make_core(tmp_path, keep_header=True,
                                build_id="ffff" + BUILD_ID[4:])
    p = open_core(core)
    # Checked on first use (a capture would decompress a block per file at open).
    assert p.executable.problem.startswith("build-id differs")
    assert any("build-id" in x and "not used" in x for x in p.warnings), p.warnings
    # The header page the core kept still reads; the rest of the file does not.
    assert p.memory.read(EXE_BASE, 4) == b"\x7fELF"
    with pytest.raises(FaultError):
        p.memory.read(text, 1)


def test_the_same_build_id_is_used(tmp_path):
    core, exe, text = make_core(tmp_path, keep_header=True)
    p = open_core(core)
    assert not p.warnings and p.executable.core_build_id == BUILD_ID
    assert p.memory.read(text, 1) == b"\x55"


@pytest.mark.parametrize("where", ["notes", "load"])
def test_truncated_cores_say_where(tmp_path, where):
    core = make_core(tmp_path)[0]
    data = open(core, "rb").read()
    p = open_core(core)
    note_ph = next(ph for ph in p.phdrs if ph.p_type == w.PT_NOTE)
    load_ph = [ph for ph in p.phdrs if ph.p_type == w.PT_LOAD][-1]
    cut = note_ph.p_offset + 20 if where == "notes" else load_ph.p_offset + 8
    with open(core, "wb") as f:
        f.write(data[:cut])
    with pytest.raises(CoreFileError, match="truncated inside its " +
                       ("notes" if where == "notes" else "PT_LOAD")):
        open_core(core)


def test_not_a_core(tmp_path):
    core, exe, _ = make_core(tmp_path)
    with pytest.raises(CoreFileError, match="is an executable, not a core file"):
        open_core(exe)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(CoreFileError, match="empty"):
        open_core(str(empty))
    with pytest.raises(CoreFileError, match="cannot open"):
        open_core(str(tmp_path / "nothing"))


def test_a_core_without_threads_or_notes(tmp_path):
    path = tmp_path / "c"
    path.write_bytes(w.core([(b"CORE", w.NT_PRPSINFO, w.prpsinfo(1))], []))
    with pytest.raises(CoreFileError, match="holds no thread"):
        open_core(str(path))
    data = w.ehdr(w.ET_CORE, 64, 1) + w.phdr(w.PT_LOAD, 4, 0x1000, 0x1000, 0, 0x1000)
    path.write_bytes(data)
    with pytest.raises(CoreFileError, match="no notes"):
        open_core(str(path))


def test_an_impossible_segment_is_warned_about_and_left_out(tmp_path):
    bad = w.phdr(w.PT_LOAD, 6, 0, 0xFFFF_FFFF_FFFF_0000, 0, 1 << 20)
    path = tmp_path / "c"
    path.write_bytes(w.core([(b"CORE", w.NT_PRSTATUS, w.prstatus(1))],
                            [(HEAP, b"x" * 16, None, 6)], extra_phdrs=[bad]))
    p = open_core(str(path))
    assert any("impossible" in x for x in p.warnings)
    assert p.memory.read(HEAP, 1) == b"x"


def test_an_arthur_note_names_the_maker(tmp_path):
    meta = b'{"mode": "fork", "version": "0"}'
    core = make_core(tmp_path, extra_notes=[(b"ARTHUR", 0x41525448, meta)])[0]
    p = open_core(core)
    assert p.arthur == {"mode": "fork", "version": "0"} and p.made_by == "arthur"


def test_the_capture_container_reads_as_the_plain_core(tmp_path):
    from arthur.lz4core import ContainerWriter
    core, exe, text = make_core(tmp_path)
    packed = tmp_path / "core.lz4"
    with open(packed, "wb") as f:
        wr = ContainerWriter(f)
        wr.write(open(core, "rb").read())
        wr.close()
    a, b = open_core(core), open_core(str(packed))
    assert [t.tid for t in b.threads] == [1001, 1002]
    assert b.memory.read(HEAP, 35) == a.memory.read(HEAP, 35)
    assert b.memory.read(text, 5) == a.memory.read(text, 5)
    assert b.initial_stack.argv == a.initial_stack.argv


@pytest.mark.parametrize("name, want", [
    ("libpython3.11.so.1.0", (3, 11, False)), ("libpython3.14t.so", (3, 14, True)),
    ("python3.11", (3, 11, False)), ("python3.14t", (3, 14, True)),
    ("python3.11-config", (3, 11, False)), ("libpython3.8d.so.1.0", (3, 8, False)),
    ("python3", None), ("python3.11.bak", None), ("python3.11x", None),
    ("python3.11_d", None), ("libpython3.so", None), ("pythonw", None), ("python3.", None),
    ("python3.11t.x", None), ("libpythonx.y", None), ("python3.13d", None)])
def test_the_version_a_file_name_gives(name, want):
    from nsdebug.cpython.version import name_version
    assert name_version(name) == want


def test_source_lines_as_linecache_reads_them(tmp_path):
    import linecache

    from nsdebug import sourcelines
    files = {"plain.py": "a = 1\nb = 'é'\n", "latin.py": "# -*- coding: latin-1 -*-\nx = 'é'\n",
             "bom.py": "\ufeffy = 2\nz = 3", "second.py": "#!/usr/bin/env python\n"
             "# vim: set fileencoding=cp1252 :\nq = '€'\n", "late.py": "x = 1\n# coding: latin-1\n"}
    for name, text in files.items():
        enc = "latin-1" if name == "latin.py" else "cp1252" if name == "second.py" else "utf-8"
        (tmp_path / name).write_bytes(text.encode(enc))
        for n in range(0, 5):
            path = str(tmp_path / name)
            assert sourcelines.getline(path, n) == linecache.getline(path, n), (name, n)
    assert sourcelines.getline(str(tmp_path / "missing.py"), 1) == ""


def test_the_layout_index_is_the_tables_own():
    # data/index.py lets a core load only its version's tables: it must list every
    # shipped table with its version and every field any of them has.
    import os

    from nsdebug.cpython import layouts
    from nsdebug.cpython.layouts.data.index import FIELDS, TABLES
    files = [n for n in os.listdir(layouts.DATA) if layouts.table_version(n)]
    assert sorted(TABLES) == sorted(n[:-3] for n in files)
    union = {}
    for name in files:
        table = layouts._load(layouts.DATA, name[:-3])
        assert table.version == TABLES[name[:-3]]
        for alias, row in table.types.items():
            union.setdefault(alias, set()).update(row["fields"] if row else ())
    assert {a: set(f) for a, f in FIELDS.items()} == union


@pytest.mark.parametrize("data, want", [
    (b"xx3.11.7 (main, Dec", (3, 11, 7)), (b"3.8.18 (default", (3, 8, 18)),
    (b"3.13.0rc1 (main", (3, 13, 0)), (b"3.14.0a1+ (heads", None),
    (b"3.10.1+ (", (3, 10, 1)), (b"a3.3.3.4 (", (3, 3, 4)), (b"3.111.2 (x", None),
    (b"3.12.1(", None), (b"3.11. (", None), (b"3.11.7x (", None), (b"3.11.123 (", None)])
def test_the_version_string_found_in_memory(data, want):
    from nsdebug.cpython.version import find_version
    assert find_version(data) == want
