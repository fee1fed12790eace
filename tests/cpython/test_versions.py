"""Versions nsdebug has no table for, and builds it cannot read: a clear refusal or the
part the process's own _Py_DebugOffsets makes safe, never another version's table."""

import json
import os
import re
import shutil
import struct

import pytest
import targets
from conftest import build_params
from corepatch import patch_core
from test_stacks import compare_stacks

from nsdebug.corefile import open_core
from nsdebug.corefile.symbols import ElfFile

NEWEST = [b for b in build_params("debian") if b.values[0].key == (3, 14)]
V_3_16_10 = (3 << 24) | (16 << 16) | (10 << 8) | 0xF0


def runtime_of(nsdebug, core):
    r = nsdebug(core, "-c", "info", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["python"]["runtime"]


def one_line_refusal(r, *needles):
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    lines = [x for x in r.stderr.strip().splitlines() if not x.startswith("nsdebug: warning")]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert r.stdout.strip() == "" or "Traceback" not in r.stdout
    return lines[0]


@pytest.mark.parametrize("build", NEWEST, indirect=True)
def test_free_threaded_flag_is_refused_in_one_line(cores, build, nsdebug, tmp_path):
    cap = cores.stacks(build)
    rt = runtime_of(nsdebug, cap.core)
    bad = str(tmp_path / "ft.core")
    patch_core(cap.core, bad, {rt + 16: struct.pack("<Q", 1)})    # _Py_DebugOffsets.free_threaded
    for cmd in ("bt --all", "objects"):
        line = one_line_refusal(nsdebug(bad, "-c", cmd), "free-threaded")
        assert "3.14" in line


@pytest.mark.parametrize("build", NEWEST, indirect=True)
def test_a_version_field_that_disagrees_is_refused(cores, build, nsdebug, tmp_path):
    """Only the core says 3.16: the binary says 3.14. Neither is trusted over the other."""
    cap = cores.stacks(build)
    rt = runtime_of(nsdebug, cap.core)
    bad = str(tmp_path / "v316.core")
    patch_core(cap.core, bad, {rt + 8: struct.pack("<Q", V_3_16_10)})
    for cmd in ("bt --all", "objects"):
        one_line_refusal(nsdebug(bad, "-c", cmd), "3.16.10", "3.14", "disagree")


def _patch_binary_version(src, dst, hexversion):
    """A copy of the interpreter whose Py_Version says another release (its build-id,
    and so the core's check of it, unchanged)."""
    shutil.copyfile(src, dst)
    ef = ElfFile(src)
    value, _size = ef.lookup("Py_Version", exported=True)
    sec = next(s for s in ef.sections if s.sh_addr <= value < s.sh_addr + s.sh_size)
    with open(dst, "r+b") as f:
        f.seek(sec.sh_offset + value - sec.sh_addr)
        f.write(struct.pack("<I", hexversion))
    os.chmod(dst, 0o755)


@pytest.mark.parametrize("build", NEWEST, indirect=True)
def test_an_unknown_version_gets_stacks_from_its_debug_offsets_and_no_heap(
        cores, build, nsdebug, tmp_path):
    """A 3.14 process made to say 3.16.10 everywhere (core and binary): no table fits,
    so the stacks come from _Py_DebugOffsets alone and the heap is refused."""
    cap = cores.stacks(build)
    rt = runtime_of(nsdebug, cap.core)
    p = open_core(cap.core)
    # sys.version, built at start-up in the interpreter's .bss, says 3.14.10 too.
    patches = {rt + 8: struct.pack("<Q", V_3_16_10)}
    exe = p.executable
    for seg in p.data_regions(exe):
        data = p.memory.read(seg.start, seg.end - seg.start)
        for m in re.finditer(rb"3\.14\.10 \(", data):
            patches[seg.start + m.start()] = b"3.16.10 ("
    assert len(patches) > 1
    bad = str(tmp_path / "v316.core")
    patch_core(cap.core, bad, patches)
    libdir = tmp_path / "bin"
    libdir.mkdir()
    _patch_binary_version(exe.disk_path, str(libdir / os.path.basename(exe.path)),
                          V_3_16_10)
    args = ["--lib-path", libdir]
    r = nsdebug(bad, *args, "-c", "info", "--json")
    assert r.returncode == 0, r.stderr
    py = json.loads(r.stdout)["python"]
    assert py["version"] == "3.16.10" and py["layout"] == "_Py_DebugOffsets of the process"
    assert "no layout table fits CPython 3.16.10" in r.stderr
    r = nsdebug(bad, *args, "-c", "bt --all --locals", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    # Frames, and locals by name, address and type. Thread names (threading._active is a
    # dict) and the values of kinds the debug offsets do not describe are not known.
    assert compare_stacks(result, cap.truth, names=False, values=False) > 40
    assert all(t["name"] is None for t in result["threads"])
    one_line_refusal(nsdebug(bad, *args, "-c", "objects"), "heap", "3.16.10",
                     "tools/gen_layouts.py")


def test_every_bundled_table_is_what_gen_layouts_makes(tmp_path):
    """The tables are generated, never edited: regenerating those of builds present here
    gives the same bytes."""
    import subprocess
    import sys
    tool = os.path.join(targets.ROOT, "tools", "gen_layouts.py")
    data = os.path.join(targets.ROOT, "nsdebug", "cpython", "layouts", "data")
    pythons = [b.exe for b in targets.available_builds()]
    pythons = [os.path.dirname(os.path.dirname(e)) if b.source == "pyenv" else e
               for b, e in zip(targets.available_builds(), pythons)]
    r = subprocess.run([sys.executable, tool, "--out", str(tmp_path), *pythons],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    made = sorted(os.listdir(tmp_path))
    assert len(made) == len(pythons)
    for name in made:
        with open(tmp_path / name) as f, open(os.path.join(data, name)) as g:
            assert f.read() == g.read(), name
