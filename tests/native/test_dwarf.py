"""Our DWARF reader on real files. The cache of inflated debug sections
(~/.cache/nsdebug/dwarf): libc6-dbg's debug file keeps its DWARF zlib-compressed, so
`bt --native` on any core of this machine inflates it once and reads it back afterwards;
same answers cold, warm, with a damaged entry, and with --no-cache. A debug file without
.debug_aranges (as clang writes them) gives the same file and line. Damaged DWARF in a
debug file never breaks `bt`."""

import json
import os
import random
import shutil
import subprocess

import pytest
from test_native_stacks import bt


def native_rows(res):
    return [(t["tid"], [(r.get("function"), r.get("file"), r.get("line"))
                        for r in t["native"]]) for t in res["threads"]]


def entries(cache):
    root = cache / "nsdebug" / "dwarf"
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) \
        if root.is_dir() else []


@pytest.fixture
def parked(cores):
    import targets
    build = targets.build("3.11")
    if not build.exe:
        pytest.skip("pyenv 3.11 is not installed")
    return cores.native_parked(build)


def test_inflated_sections_are_cached_and_checked(parked, nsdebug, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    (cold,) = bt(nsdebug, parked.core, "--no-cache", "-c", "bt --all --native")
    assert entries(cache) == [], "--no-cache writes nothing"
    libc_lines = [r for _tid, rows in native_rows(cold) for r in rows
                  if r[1] and "nptl" in r[1]]
    if not libc_lines:
        pytest.skip("no compressed debug file for libc here (libc6-dbg)")
    (first,) = bt(nsdebug, parked.core, "-c", "bt --all --native")
    written = entries(cache)
    assert any(p.name.endswith("-debug_info") for p in written), written
    assert native_rows(first) == native_rows(cold)
    shutil.rmtree(cache / "nsdebug" / "places")      # the DWARF read back, not the places
    (warm,) = bt(nsdebug, parked.core, "-c", "bt --all --native")
    assert native_rows(warm) == native_rows(cold)

    # A garbled entry (its bytes changed, its size kept) and a truncated one are
    # inflated afresh and rewritten, never read as DWARF.
    info = next(p for p in written if p.name.endswith("-debug_info"))
    line = next(p for p in written if p.name.endswith("-debug_line"))
    good_info, good_line = info.read_bytes(), line.read_bytes()
    garbled = bytearray(good_info)
    rnd = random.Random(7)
    for _ in range(64):
        garbled[rnd.randrange(len(garbled) - 24)] ^= 0xFF
    info.write_bytes(bytes(garbled))
    line.write_bytes(good_line[:len(good_line) // 2])
    shutil.rmtree(cache / "nsdebug" / "places")      # else no DWARF is read again
    (again,) = bt(nsdebug, parked.core, "-c", "bt --all --native")
    assert native_rows(again) == native_rows(cold)
    assert info.read_bytes() == good_info and line.read_bytes() == good_line

    # An entry another user owns is not read (inflated afresh, rewritten as ours).
    os.chown(info, 65534, 65534)
    info.write_bytes(bytes(garbled))     # what a hostile owner could put there
    os.chown(info, 65534, 65534)
    shutil.rmtree(cache / "nsdebug" / "places")
    (fifth,) = bt(nsdebug, parked.core, "-c", "bt --all --native")
    assert native_rows(fifth) == native_rows(cold)
    assert info.stat().st_uid == os.geteuid() and info.read_bytes() == good_info


def section_spans(path, names):
    from nsdebug.corefile.symbols import ElfFile
    data = open(path, "rb").read()
    return data, {s.name: (s.sh_offset, s.sh_size) for s in ElfFile(path).sections
                  if s.name in names}


def test_damaged_dwarf_in_a_debug_file_never_breaks_bt(parked, nsdebug, tmp_path):
    """A debug file for libpython (found by build-id under --debug-dir) whose DWARF is
    overwritten here and there: bt still answers, with the names of the symbol tables,
    and never a traceback (the C walk checks every read)."""
    import targets
    build = targets.build("3.11")
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(build.exe)))
    lib = os.path.realpath(os.path.join(prefix, "lib", "libpython3.11.so.1.0"))
    names = (".debug_info", ".debug_abbrev", ".debug_line", ".debug_rnglists",
             ".debug_aranges", ".debug_str", ".debug_line_str")
    data, spans = section_spans(lib, names)
    assert set(spans) >= {".debug_info", ".debug_abbrev", ".debug_line"}
    from nsdebug.corefile.symbols import ElfFile
    bid = ElfFile(lib).build_id
    where = tmp_path / "dbg" / ".build-id" / bid[:2]
    where.mkdir(parents=True)
    tid = parked.truth["native_ids"]["locker"]
    rnd = random.Random(12)
    for _ in range(12):
        b = bytearray(data)
        off, size = spans[rnd.choice(sorted(spans))]
        for _ in range(rnd.randint(1, 300)):
            b[off + rnd.randrange(size)] = rnd.randrange(256)
        (where / (bid[2:] + ".debug")).write_bytes(bytes(b))
        (res,) = bt(nsdebug, parked.core, "--debug-dir", tmp_path / "dbg",
                    "-c", "bt --all --native")
        t = next(t for t in res["threads"] if t["tid"] == tid)
        functions = [r.get("function") or "" for r in t["native"]]
        assert any(f.startswith("lock_PyThread_acquire_lock") or
                   f.startswith("acquire_timed") for f in functions), functions
    shutil.rmtree(tmp_path / "dbg")


def test_json_rows_carry_file_and_line(parked, nsdebug):
    (res,) = bt(nsdebug, parked.core, "-c", "bt --all --native-all")
    rows = [r for t in res["threads"] for r in t["native"] if r.get("kind") == "native"]
    with_lines = [r for r in rows if r["file"] and r["line"] > 0]
    assert len(with_lines) >= len(rows) // 2, json.dumps(rows[:5])
    assert any(r["file"].endswith("ceval.c") for r in with_lines)


@pytest.mark.skipif(not shutil.which("objcopy"), reason="binutils not installed")
def test_units_found_without_aranges(parked, nsdebug, tmp_path):
    """libpython's DWARF moved to a debug file without .debug_aranges, the library itself
    stripped of it (so nothing else can answer): every frame's file and line as before,
    the compile unit of each address found by the units' own ranges."""
    import targets
    build = targets.build("3.11")
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(build.exe)))
    lib = os.path.realpath(os.path.join(prefix, "lib", "libpython3.11.so.1.0"))
    from nsdebug.corefile.symbols import ElfFile
    bid = ElfFile(lib).build_id
    (tmp_path / "lib").mkdir()
    bare = tmp_path / "lib" / os.path.basename(lib)
    subprocess.run(["objcopy", "--strip-debug", lib, str(bare)], check=True)
    where = tmp_path / "dbg" / ".build-id" / bid[:2]
    where.mkdir(parents=True)
    subprocess.run(["objcopy", "--only-keep-debug", "--remove-section=.debug_aranges", lib,
                    str(where / (bid[2:] + ".debug"))], check=True)
    (want,) = bt(nsdebug, parked.core, "-c", "bt --all --native-all")
    (got,) = bt(nsdebug, parked.core, "--lib-path", tmp_path / "lib", "--debug-dir",
                tmp_path / "dbg", "-c", "bt --all --native-all")
    assert native_rows(got) == native_rows(want)
    lines = [r for _tid, rows in native_rows(got) for r in rows if r[1] and "Python/" in r[1]]
    assert len(lines) > 10


PLACES_SCRIPT = """
import io, sys
from nsdebug.cli import main
out, sys.stdout = sys.stdout, io.StringIO()
status = main(sys.argv[1:])
text, sys.stdout = sys.stdout.getvalue(), out
import json
print(json.dumps([status, text, "nsdebug.native.dwarf" in sys.modules]))
"""


def test_places_are_kept_for_the_next_run(parked, tmp_path, monkeypatch):
    """The second `bt --native` names every frame from the places the first kept, with
    no DWARF read, and unwinds with the call-frame rows it kept; a damaged table is
    dropped and rebuilt, never used."""
    import sys

    import targets
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def run():
        # Not from the checkout's directory: `-c` would import its nsdebug, whose C
        # modules are built only by an editable install.
        r = subprocess.run([sys.executable, "-c", PLACES_SCRIPT, parked.core, "-c",
                            "bt --all --native"], capture_output=True, text=True,
                           timeout=300, cwd=tmp_path, env=targets.nsdebug_env())
        status, text, dwarf = json.loads(r.stdout)
        assert status == 0, r.stderr
        return text, dwarf

    first, read_dwarf = run()
    assert read_dwarf and ".c:" in first               # file and line, from the DWARF
    tables = list((tmp_path / "cache" / "nsdebug" / "places").iterdir())
    assert {t.name.split("-")[0] for t in tables} == {"places", "rows"}
    second, read_dwarf = run()
    assert second == first and not read_dwarf
    for t in tables:                                   # garbled: its bytes changed
        data = bytearray(t.read_bytes())
        data[len(data) // 2] ^= 0xFF
        t.write_bytes(bytes(data))
    third, read_dwarf = run()
    assert third == first and read_dwarf
    fourth, read_dwarf = run()
    assert fourth == first and not read_dwarf
    # Tables another user owns, or others may write, are not read: the places come from
    # the DWARF again and the tables are written anew, ours and private.
    tables = list((tmp_path / "cache" / "nsdebug" / "places").iterdir())
    os.chown(tables[0], 65534, 65534)           # root runs the suite: nobody's file now
    for t in tables[1:]:
        os.chmod(t, 0o666)
    fifth, read_dwarf = run()
    assert fifth == first and read_dwarf
    for t in (tmp_path / "cache" / "nsdebug" / "places").iterdir():
        st = t.stat()
        assert st.st_uid == os.geteuid() and not st.st_mode & 0o022, (t, oct(st.st_mode))
