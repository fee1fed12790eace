"""The core-file layer and native commands on real cores: gcore, kernel crash, non-Python."""

import json
import os
import shutil

from nsdebug.corefile import open_core


def jrun(nsdebug, *args):
    r = nsdebug(*args, "--json")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_threads_of_a_gcore_python_core(cores, build, nsdebug):
    cap = cores.stacks(build)
    (res,) = jrun(nsdebug, cap.core, "-c", "threads")
    rows = res["threads"]
    assert len(rows) == 4
    assert sorted(r["tid"] for r in rows) == sorted(t["native_id"] for t in cap.truth["threads"])
    for r in rows:
        # Named where a symbol covers the pc; else (a stripped libc without its debug
        # file, as Debian's builds run here) placed in its file, never a wrong name.
        assert r["symbol"] or r["module_offset"], r
        assert r["module"].startswith(("libc", "libpthread", "libpython")), r
    text = nsdebug(cap.core, "-c", "threads").stdout
    assert sum(text.count(f"{m}") for m in (" in libc", " in libpython", " in libpthread",
                                             "  libc.so.6+0x")) >= 4


def test_info_of_a_gcore_core(cores, build, nsdebug):
    cap = cores.stacks(build)
    (res,) = jrun(nsdebug, cap.core, "-c", "info")
    assert res["pid"] == cap.truth["pid"]
    assert res["threads"] == 4
    assert ("gdb" if cap.tool == "gcore" else "arthur") in res["made_by"]
    assert "stacks_target.py" in res["command_line"]
    assert os.path.realpath(res["executable"]) == os.path.realpath(cap.truth["executable"])
    assert res["core_size"] == os.path.getsize(cap.core)


def test_kernel_crash_core_names_the_signal(cores, build, nsdebug):
    cap = cores.crash(build)
    r = nsdebug(cap.core, "-c", "info")
    assert r.returncode == 0, r.stderr
    assert "SIGSEGV" in r.stdout
    assert "fault address 0x8" in r.stdout
    assert "kernel" in r.stdout
    (res,) = jrun(nsdebug, cap.core, "-c", "info")
    sig = res["signal"]
    assert sig["name"] == "SIGSEGV" and sig["fault_address"] == 8
    assert sig["code_name"] == "SEGV_MAPERR"
    truth_tids = {t["native_id"] for t in cap.truth["threads"]}
    assert sig["thread"] in truth_tids


def test_core_of_a_non_python_program(cores, nsdebug):
    cap = cores.native()
    (info, threads) = jrun(nsdebug, cap.core, "-c", "info", "-c", "threads")
    assert info["threads"] == 1
    assert info["executable"].endswith("/sleep")
    assert info["command_line"] == "sleep 600"
    assert threads["threads"][0]["module"].startswith("libc")


def test_maps_say_where_bytes_come_from(cores, nsdebug, tmp_path):
    cap = cores.native()
    (res,) = jrun(nsdebug, cap.core, "-c", "maps")
    sources = {m["source"] for m in res["maps"]}
    assert "core" in sources
    assert any(m["file"] and m["file"].endswith("libc.so.6") for m in res["maps"])
    # With every file hidden behind an empty sysroot, read-only file bytes go missing,
    # each missing file is named once, and the command still works.
    empty = tmp_path / "empty"
    empty.mkdir()
    r = nsdebug(cap.core, "--sysroot", empty, "-c", "maps", "--json")
    assert r.returncode == 0
    assert "Traceback" not in r.stderr
    assert "libc.so.6: not found on this machine" in r.stderr
    assert "missing" in {m["source"] for m in json.loads(r.stdout)["maps"]}


def test_memory_reads_match_between_core_and_commands(cores, nsdebug):
    cap = cores.native()
    p = open_core(cap.core)
    t = p.threads[0]
    raw = p.memory.read(t.sp, 32)
    (res,) = jrun(nsdebug, cap.core, "-c", "x $sp 32")
    assert bytes.fromhex(res["data"]) == raw
    # A read-only page the core left out is served from the file on disk.
    libc = p.find_module("libc")
    seg = next(s for s in p.memory.segments
               if s.file is not None and s.file.path == libc.path and s.filesz == 0)
    with open(libc.disk_path, "rb") as f:
        f.seek(seg.file.offset)
        assert p.memory.read(seg.start, 64) == f.read(64)


def test_sym_and_disasm(cores, build, nsdebug):
    cap = cores.stacks(build)
    (res,) = jrun(nsdebug, cap.core, "-c", "sym Py_Initialize")
    assert res["symbol"] == "Py_Initialize" and res["offset"] == 0
    # In libpython (pyenv), or in the statically linked interpreter (Debian).
    assert os.path.basename(res["module"]).startswith(("libpython", "python3")), res
    (res,) = jrun(nsdebug, cap.core, "-c", "sym Py_Initialize+0x3")
    assert res["symbol"] == "Py_Initialize" and res["offset"] == 3
    (res,) = jrun(nsdebug, cap.core, "-c", "disasm Py_InitializeEx 60")
    insns = res["instructions"]
    assert len(insns) == 60
    calls = [i for i in insns if i["mnemonic"] == "call" and i["target_symbol"]]
    assert calls, insns
    r = nsdebug(cap.core, "-c", "disasm Py_InitializeEx 60")
    assert any(f"<{c['target_symbol']}>" in r.stdout for c in calls)
    # Default: at the selected thread's pc.
    (res,) = jrun(nsdebug, cap.core, "-c", "disasm")
    assert res["instructions"][0]["address"] == open_core(cap.core).threads[0].pc


def test_unmapped_address_is_a_clear_answer(cores, nsdebug):
    cap = cores.native()
    r = nsdebug(cap.core, "-c", "x 0x10 16")
    assert r.returncode == 0
    assert "address 0x10 is not mapped in the core" in r.stdout
    r = nsdebug(cap.core, "-c", "sym 0x10")
    assert "0x10 is not mapped" in r.stdout
    r = nsdebug(cap.core, "-c", "disasm 0x10")
    assert "not mapped" in r.stdout


def test_executable_argument_overrides_the_recorded_path(cores, nsdebug, tmp_path):
    cap = cores.native()
    exe = open_core(cap.core).executable_path
    moved = tmp_path / "moved-sleep"
    moved.write_bytes(open(exe, "rb").read())
    p = open_core(cap.core, executable=str(moved))
    assert p.executable.disk_path == str(moved)


def test_a_different_file_is_named_and_not_used(cores, nsdebug, tmp_path):
    """A file whose build-id differs from the one the core recorded is not read."""
    cap = cores.native()
    libdir = tmp_path / "libs"
    libdir.mkdir()
    # Any other ELF file under libc's name: its build-id cannot match.
    (libdir / "libc.so.6").write_bytes(open(shutil.which("sleep"), "rb").read())
    r = nsdebug(cap.core, "--lib-path", libdir, "-c", "threads", "--json")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    line = next(x for x in r.stderr.splitlines() if "libc.so.6" in x)
    assert "is not the file the process mapped" in line and "build-id" in line
    p = open_core(cap.core, lib_path=[str(libdir)])
    libc = p.find_module("libc")
    assert libc.file is None and "build-id differs" in libc.problem
    # The pc is named only from a debug file of the build-id the core recorded.
    row = json.loads(r.stdout)["threads"][0]
    bid = libc.core_build_id
    debug = f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug"
    assert row["symbol"] is None or (row["module"] == "libc.so.6" and os.path.exists(debug))
