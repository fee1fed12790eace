"""A capture opens where it was not taken: arthur keeps what nsdebug needs of the mapped
files inside the .lz4, and `nsdebug bundle` does the same for a kernel core. Opened with
--sysroot at an empty directory (the target's binaries absent), every command answers
as it does with them."""

import json
import os
import subprocess

import pytest
import targets


def commands_output(nsdebug, core, cmds, *extra):
    args = []
    for c in cmds:
        args += ["-c", c]
    r = nsdebug(core, *args, *extra, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return r.stdout


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def answers(nsdebug, core, cmds, tmp_path, tag, *extra):
    """Each command's output, and the snapshot's bytes, with the given options."""
    snap = tmp_path / f"{tag}.heapsnapshot"
    out = commands_output(nsdebug, core, cmds, "--no-cache", "--snapshot", snap, *extra)
    # The snapshot's own line says where and how fast: not part of the answer.
    out = "\n".join(ln for ln in out.splitlines() if not ln.startswith("wrote "))
    with open(snap, "rb") as f:
        return out, f.read()


# The build families: pyenv's (debug info, .symtab), oldest and default, and Debian's
# (stripped: .dynsym only).
FAMILIES = ["3.8", targets.default_build().id, "debian-3.14"]


@pytest.fixture(params=FAMILIES)
def family(request):
    b = targets.build(request.param)
    if not b.exe:
        pytest.skip(b.why_missing or "not available")
    return b


def test_arthur_capture_opens_without_its_files(family, tmp_path, nsdebug):
    proc, truth_path = targets.start_target(family.exe, "heap_target.py", str(tmp_path))
    try:
        full = targets.arthur(proc.pid, str(tmp_path / "full.lz4"))
        lean = targets.arthur(proc.pid, str(tmp_path / "lean.lz4"), "--lean")
    finally:
        targets.stop(proc)
    with open(truth_path) as f:
        widget = json.load(f)["named"]["widget"]["id"]
    cmds = ["bt --all --locals", "objects --top 50", f"path {widget:#x}", "info"]
    empty = tmp_path / "empty"
    empty.mkdir()
    there = answers(nsdebug, full, cmds, tmp_path, "there")
    away = answers(nsdebug, full, cmds, tmp_path, "away", "--sysroot", empty)
    assert there == away
    assert "widgets[42]" in there[0] and "<module>" in there[0]
    # What the files add, and that --lean leaves it out: then the capture does not open
    # away from its files, and says so in one line.
    assert os.path.getsize(lean) < os.path.getsize(full) - 200_000
    r = nsdebug(lean, "--sysroot", empty, "-c", "bt")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "not found on this machine" in r.stderr


def test_bundle_of_a_kernel_crash_core_opens_anywhere(cores, family, tmp_path, nsdebug):
    cap = cores.crash(family)
    out = tmp_path / "crash.lz4"
    r = nsdebug("bundle", cap.core, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "mapped files" in r.stdout and os.stat(out).st_mode & 0o777 == 0o600
    cmds = ["bt --all --locals", "objects --top 50", "info"]
    empty = tmp_path / "empty"
    empty.mkdir()
    original = answers(nsdebug, cap.core, cmds, tmp_path, "core")
    away = answers(nsdebug, out, cmds, tmp_path, "away", "--sysroot", empty)
    # The same answers but for the line naming the file and its size.
    strip = lambda text: [ln for ln in text.splitlines() if not ln.startswith("core:")]  # noqa: E731
    assert strip(original[0]) == strip(away[0]) and original[1] == away[1]
    assert "parse_record" in away[0] and "SIGSEGV" in away[0]
    # The bundle is still a core gdb reads (after lz4 -d): the extracts are a note.
    plain = tmp_path / "crash.core"
    assert run(["lz4", "-d", "-q", str(out), str(plain)]).returncode == 0
    gdb = lambda core: run(["gdb", "-batch", "-ex", "info threads", "-ex", "bt 3",  # noqa: E731
                            family.exe, str(core)]).stdout
    seen = gdb(plain)
    assert "LWP" in seen and seen == gdb(cap.core)
    # An existing output is not replaced without --force.
    r = nsdebug("bundle", cap.core, "-o", out)
    assert r.returncode != 0 and "exists" in r.stderr


def test_bundle_refuses_bad_input_in_one_line(cores, tmp_path, nsdebug):
    cap = cores.crash(targets.default_build())
    cut = tmp_path / "cut.core"
    with open(cap.core, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(os.path.getsize(cap.core) // 2))
    for args, message in ((["bundle", cut, "-o", tmp_path / "a.lz4"], "truncated"),
                          (["bundle", tmp_path / "none", "-o", tmp_path / "b.lz4"],
                           "cannot open"),
                          (["bundle", cap.core, "-o", tmp_path / "no" / "c.lz4"],
                           "cannot write")):
        r = nsdebug(*args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and message in lines[0], r.stderr
    assert sorted(os.listdir(tmp_path)) == ["cut.core"]
