"""arthur on real processes: what it writes, what nsdebug and gdb read, what it leaves."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import targets
from helpers import assert_untouched, run_arthur

from arthur.cgroups import mounts as cgroup_mounts


@pytest.fixture
def stacks_target(build, tmp_path):
    proc, truth_path = targets.start_target(build.exe, "stacks_target.py",
                                            str(tmp_path), threads=4)
    yield proc, truth_path
    targets.stop(proc)


def test_capture_equals_gcore_and_gdb_reads_it(build, stacks_target, tmp_path, nsdebug):
    proc, _ = stacks_target
    out = tmp_path / "cap.lz4"
    r = run_arthur("capture", proc.pid, "-o", out)
    assert r.returncode == 0, r.stderr
    m = re.search(r"paused pid \d+ for ([\d.]+) ms", r.stderr)
    assert m, r.stderr
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"
    assert_untouched(proc.pid, threads=4)
    # The same frozen state read from the stopped process itself (gcore; for Debian's
    # builds, whose thread stacks gdb 13 cannot dump whole, arthur --stop, which reads
    # the process and not a forked copy): nsdebug must say exactly the same.
    if targets.live_capture_tool(build) == "gcore":
        gc = targets.gcore(proc.pid, str(tmp_path / "gc"))
    else:
        gc = targets.arthur(proc.pid, str(tmp_path / "stopped.core"), "--stop",
                            "--no-compress")
    args = ["--max-string", "1000", "-c", "bt --all --locals"]
    a, g = nsdebug(out, *args), nsdebug(gc, *args)
    assert a.returncode == 0 and g.returncode == 0, a.stderr + g.stderr
    assert a.stdout == g.stdout
    assert len(re.findall(r"^Thread \d+", a.stdout, re.M)) == 4
    info = json.loads(nsdebug(out, "-c", "info", "--json").stdout)
    assert info["made_by"] == "arthur" and info["threads"] == 4
    # The stock lz4 tool gives back a plain core that gdb reads, every thread with frames.
    plain = tmp_path / "plain.core"
    subprocess.run(["lz4", "-q", "-d", str(out), str(plain)], check=True)
    debug = ["-iex", f"set debug-file-directory {build.debug_dir}"] if build.debug_dir else []
    gdb = subprocess.run(["gdb", "-batch", "-nx", *debug, "-ex", "info threads", "-ex",
                          "thread apply all bt", os.path.realpath(build.exe),
                          str(plain)], capture_output=True, text=True, timeout=300)
    tids = {int(t) for t in os.listdir(f"/proc/{proc.pid}/task")}
    seen = {int(x) for x in re.findall(r"\(LWP (\d+)\)", gdb.stdout)}
    assert seen == tids, gdb.stdout[-2000:]
    assert gdb.stdout.count("\n#0 ") >= 4
    assert "?? ()" not in gdb.stdout.split("Thread")[1]
    # nsdebug reads the plain core the same as the container; so does pystack (elfutils
    # once took the empty segments' p_offset of 0 for the ELF header, and lost the
    # executable of statically linked builds).
    assert nsdebug(plain, *args).stdout == a.stdout
    pystack = shutil.which("pystack", path=os.path.dirname(sys.executable))
    ps = subprocess.run([pystack, "core", str(plain)], capture_output=True, text=True,
                        timeout=120)
    assert ps.returncode == 0, ps.stderr[-1000:]
    assert "in main_leaf" in ps.stdout
    assert_untouched(proc.pid, threads=4)


def test_info_and_decompress(stacks_target, tmp_path):
    proc, _ = stacks_target
    out = tmp_path / "c.lz4"
    assert run_arthur("capture", proc.pid, "-o", out).returncode == 0
    r = run_arthur("info", out, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["arthur"]["pid"] == proc.pid and d["threads"] == 4
    assert d["arthur"]["mode"] == "fork" and d["arthur"]["pause_ms"] > 0
    assert d["ratio"] > 1.5 and d["raw_size"] > d["file_size"]
    text = run_arthur("info", out).stdout
    assert "pause:" in text and "threads:    4" in text
    r = run_arthur("decompress", out, "-o", tmp_path / "d.core")
    assert r.returncode == 0, r.stderr
    subprocess.run(["lz4", "-q", "-d", str(out), str(tmp_path / "ref.core")], check=True)
    assert open(tmp_path / "d.core", "rb").read() == open(tmp_path / "ref.core", "rb").read()
    assert os.path.getsize(tmp_path / "d.core") == d["raw_size"]


def test_stop_mode_and_fork_fallback(stacks_target, tmp_path, nsdebug):
    proc, _ = stacks_target
    r = run_arthur("capture", "--stop", proc.pid, "-o", tmp_path / "s.lz4")
    assert r.returncode == 0, r.stderr
    assert "stopped for the whole dump" in r.stderr
    assert_untouched(proc.pid, threads=4)
    r2 = run_arthur("capture", proc.pid, "-o", tmp_path / "f.lz4",
                    env={"ARTHUR_FAULT": "fork-fails"})
    assert r2.returncode == 0, r2.stderr
    assert "fork failed" in r2.stderr and "falling back to --stop" in r2.stderr
    assert_untouched(proc.pid, threads=4)
    args = ["-c", "bt --all --locals"]
    assert nsdebug(tmp_path / "s.lz4", *args).stdout == \
        nsdebug(tmp_path / "f.lz4", *args).stdout
    info = json.loads(nsdebug(tmp_path / "f.lz4", "-c", "info", "--json").stdout)
    assert info["made_by"] == "arthur (stopped capture)"


def test_no_compress_writes_a_plain_core(stacks_target, tmp_path, nsdebug):
    proc, _ = stacks_target
    out = tmp_path / "plain"
    assert run_arthur("capture", "--no-compress", proc.pid, "-o", out).returncode == 0
    assert open(out, "rb").read(4) == b"\x7fELF"
    assert len(re.findall(r"^Thread \d+", nsdebug(out, "-c", "bt --all").stdout, re.M)) == 4


@pytest.fixture
def half_a_cpu(tmp_path):
    """A cpu cgroup with a quota of half a CPU, v1 or v2 (whichever this machine has);
    yields a function that moves the calling process into it."""
    mounts = cgroup_mounts()
    name = f"nsdebug-jobs-{os.getpid()}"
    if "cpu" in mounts:
        path, files = os.path.join(mounts["cpu"], name), {"cpu.cfs_period_us": "100000",
                                                           "cpu.cfs_quota_us": "50000"}
    elif "v2" in mounts:
        path, files = os.path.join(mounts["v2"], name), {"cpu.max": "50000 100000"}
    else:
        pytest.skip("no cpu cgroup hierarchy is mounted")
    try:
        os.mkdir(path)
    except OSError as e:
        pytest.skip(f"cannot make a cpu cgroup here: {e.strerror}")
    try:
        for f, v in files.items():
            with open(os.path.join(path, f), "w") as fh:
                fh.write(v)

        def enter():
            with open(os.path.join(path, "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))
        yield enter
    finally:
        os.rmdir(path)          # its processes have exited


def test_jobs_default_to_the_cpus_spare_and_can_be_given(stacks_target, tmp_path,
                                                         half_a_cpu):
    proc, _ = stacks_target
    spare = "from arthur.cgroups import spare_cpus; print(spare_cpus())"
    outside = subprocess.run([sys.executable, "-c", spare], capture_output=True, text=True)
    inside = subprocess.run([sys.executable, "-c", spare], capture_output=True, text=True,
                            preexec_fn=half_a_cpu)
    assert int(outside.stdout) == len(os.sched_getaffinity(0)), outside.stderr
    assert int(inside.stdout) == 1, inside.stderr
    runs = {"given": ["--jobs", "2"], "in the cgroup": [], "default": []}
    for how, extra in runs.items():
        out = tmp_path / f"{how}.lz4"
        r = run_arthur("capture", proc.pid, "-o", out, "--json", *extra,
                       preexec_fn=half_a_cpu if how == "in the cgroup" else None)
        assert r.returncode == 0, r.stderr
        runs[how] = json.loads(r.stdout)["jobs"]
        assert run_arthur("info", out).returncode == 0
    assert runs == {"given": 2, "in the cgroup": 1,
                    "default": min(4, len(os.sched_getaffinity(0)))}
    r = run_arthur("capture", proc.pid, "-o", tmp_path / "no.lz4", "--jobs", "0")
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "--jobs" in r.stderr
    assert not (tmp_path / "no.lz4").exists()
    assert_untouched(proc.pid)
