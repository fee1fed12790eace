"""Hostile files: each gives one clear line and a non-zero exit, never a traceback or a hang."""

import contextlib
import io
import random
import shutil
import signal
import struct

import pytest

from nsdebug import cli
from nsdebug.corefile import elf, open_core
from nsdebug.errors import CoreFileError


def assert_one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("nsdebug: ")
    for n in needles:
        assert n in lines[0], lines[0]


def test_empty_file(tmp_path, nsdebug):
    f = tmp_path / "empty"
    f.write_bytes(b"")
    assert_one_line_error(nsdebug(f, "-c", "info"), "is empty")


def test_missing_file(tmp_path, nsdebug):
    assert_one_line_error(nsdebug(tmp_path / "nope", "-c", "info"), "cannot open",
                          "No such file")


def test_not_elf(tmp_path, nsdebug):
    f = tmp_path / "text"
    f.write_text("this is not a core file\n" * 10)
    assert_one_line_error(nsdebug(f, "-c", "info"), "not an ELF file")


def test_32_bit_elf(tmp_path, nsdebug):
    f = tmp_path / "elf32"
    ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    f.write_bytes(ident + struct.pack("<HHI", 4, 3, 1) + bytes(40))
    assert_one_line_error(nsdebug(f, "-c", "info"), "32-bit")


def test_executable_is_not_a_core(nsdebug):
    assert_one_line_error(nsdebug(shutil.which("sleep"), "-c", "info"), "not a core file")


def _copy(src, dst, size=None):
    with open(src, "rb") as f, open(dst, "wb") as g:
        g.write(f.read() if size is None else f.read(size))
    return dst


def _phdrs(path):
    p = open_core(path)
    return p.phdrs


def test_truncated_in_the_notes(cores, tmp_path, nsdebug):
    core = cores.native().core
    note = next(p for p in _phdrs(core) if p.p_type == elf.PT_NOTE)
    cut = _copy(core, tmp_path / "cut-notes", note.p_offset + note.p_filesz // 2)
    assert_one_line_error(nsdebug(cut, "-c", "info"), "truncated", "notes")


def test_truncated_in_the_program_headers(cores, tmp_path, nsdebug):
    cut = _copy(cores.native().core, tmp_path / "cut-phdrs", 64 + 56 * 2 + 10)
    assert_one_line_error(nsdebug(cut, "-c", "info"), "truncated", "program headers")


def test_truncated_inside_a_load(cores, tmp_path, nsdebug):
    core = cores.native().core
    load = max((p for p in _phdrs(core) if p.p_type == elf.PT_LOAD and p.p_filesz),
               key=lambda p: p.p_offset)
    cut = _copy(core, tmp_path / "cut-load", load.p_offset + load.p_filesz // 2)
    assert_one_line_error(nsdebug(cut, "-c", "threads"), "truncated",
                          f"PT_LOAD at {load.p_vaddr:#x}")


def test_mapped_files_missing(cores, tmp_path, nsdebug):
    empty = tmp_path / "root"
    empty.mkdir()
    r = nsdebug(cores.native().core, "--sysroot", empty, "-c", "threads")
    assert r.returncode == 0
    assert "Traceback" not in r.stderr
    assert "libc.so.6: not found" in r.stderr
    assert len(r.stdout.splitlines()) == 2   # the thread is still listed, pc without symbol


def test_bad_command_and_bad_address(cores, nsdebug):
    core = cores.native().core
    r = nsdebug(core, "-c", "frobnicate")
    assert r.returncode == 1 and "unknown command" in r.stderr and "Traceback" not in r.stderr
    r = nsdebug(core, "-c", "x not_a_symbol_anywhere")
    assert r.returncode == 1 and "not an address or known symbol" in r.stderr
    r = nsdebug(core, "-c", "x 0x1000 0")
    assert r.returncode == 1 and "count must be" in r.stderr


class _Alarm(Exception):
    pass


def _in_process(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_fuzz_headers_and_notes(cores, tmp_path):
    """Flip random bytes in the ELF header, program headers and notes of a real core."""
    src = cores.native().core
    work = str(tmp_path / "fuzz.core")
    shutil.copyfile(src, work)
    phdrs = _phdrs(src)
    note = next(p for p in phdrs if p.p_type == elf.PT_NOTE)
    regions = [(0, 64), (64, 56 * len(phdrs)), (note.p_offset, note.p_filesz)]
    rng = random.Random(1234)
    original = open(work, "rb").read(note.p_offset + note.p_filesz)

    def on_alarm(*_):
        raise _Alarm()

    old = signal.signal(signal.SIGALRM, on_alarm)
    failures = []
    try:
        for i in range(300):
            start, length = regions[i % len(regions)]
            flips = [(start + rng.randrange(length), rng.randrange(256))
                     for _ in range(rng.choice((1, 2, 4, 16)))]
            with open(work, "r+b") as f:
                for off, val in flips:
                    f.seek(off)
                    f.write(bytes([val]))
            signal.alarm(10)
            try:
                rc, out, err = _in_process([work, "-c", "info", "-c", "threads", "-c", "maps",
                                            "-c", "x $sp 16"])
            except _Alarm:
                failures.append((flips, "hang"))
                rc, err = None, ""
            finally:
                signal.alarm(0)
            if rc == cli.EXIT_INTERNAL or "Traceback" in err:
                failures.append((flips, err.strip()[-300:]))
            elif rc == cli.EXIT_USAGE:
                assert err.strip().splitlines()[-1].startswith("nsdebug: ")
            with open(work, "r+b") as f:
                f.write(original)
    finally:
        signal.signal(signal.SIGALRM, old)
    assert not failures, failures[:5]


def test_corrupt_note_sizes_raise_our_error():
    bad = struct.pack("<III", 5, 1 << 30, 1) + b"CORE\0\0\0\0"
    with pytest.raises(CoreFileError, match="runs past"):
        list(elf.iter_notes(bad))


@pytest.mark.parametrize("which", ["libc-data", "anonymous"])
def test_a_huge_mapping_size_does_not_exhaust_memory(cores, tmp_path, which):
    """Writable PT_LOADs of a core claiming a TiB of memory (p_memsz): libc's data
    (where malloc's arena is looked for) or the anonymous mappings (searched for mmapped
    chunks). The heap commands answer within a 4 GiB address space, reading what the
    core holds, never MemoryError. Both found by tools/fuzz_cores.py (Debian 3.14, an
    arthur capture of 3.12)."""
    import resource
    import subprocess

    import targets
    src = cores.stacks(targets.build("debian-3.14")).core
    work = _copy(src, tmp_path / "huge-memsz")
    files = {m.start: m.file for m in open_core(src).mappings()}
    changed = 0
    with open(work, "r+b") as f:
        for i, p in enumerate(_phdrs(src)):
            name = files.get(p.p_vaddr)
            hit = "libc" in (name or "") if which == "libc-data" else name is None
            # One mapping, as the fuzzer's mutants had it (many overlap each other,
            # and the address space keeps the first of overlapping ones).
            if p.p_type == elf.PT_LOAD and "w" in p.perms and p.p_filesz and hit and \
                    not changed:
                f.seek(64 + 56 * i + 40)
                f.write(struct.pack("<Q", 1 << 40))
                changed += 1
    assert changed

    def limit():
        # (AddressSanitizer reserves terabytes of shadow: no address-space limit under
        # it; its allocator reports what would exceed one as an error of its own.)
        if not targets.SANITIZER_PRELOAD:
            resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    r = subprocess.run(targets.nsdebug_cmd() + [str(work), "--no-cache", "-c",
                                                "objects --top 3", "-c", "memory"],
                       capture_output=True, text=True, timeout=300, preexec_fn=limit,
                       env=targets.nsdebug_env())
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "MemoryError" not in r.stderr and "out of memory" not in r.stderr, r.stderr
