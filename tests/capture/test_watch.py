"""arthur watch on real processes: a threshold captures once per crossing (again only
after 25% more), a clock keeps exactly N, --match finds processes as they appear, and
a memory cgroup with a limit (made here, v1 or v2) is captured before the OOM killer
ends its process, the capture showing what grew."""

import glob
import json
import os
import subprocess
import time

import pytest
import targets
from helpers import arthur_cmd

from arthur.cgroups import mounts as cgroup_mounts
from arthur.watch import cgroup_memory

SCRIPT = os.path.join(targets.FIXTURES, "grow_target.py")


def start_grower(tmp_path, *extra):
    p = subprocess.Popen([targets.default_build().exe, SCRIPT, str(tmp_path / "truth.json"),
                          *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def grow(p, mib):
    p.stdin.write(f"grow {mib}\n")
    p.stdin.flush()
    return int(p.stdout.readline())


def watch(*args):
    return subprocess.Popen(arthur_cmd() + ["watch", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def captures(spool, pid=None):
    pattern = f"core.*.{pid}.*.lz4" if pid else "core.*.lz4"
    return sorted(glob.glob(os.path.join(spool, pattern)))


def wait_for(cond, timeout=60, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return False


def records(spool, pid):
    out = []
    for path in sorted(glob.glob(os.path.join(spool, f"core.*.{pid}.*.json"))):
        with open(path) as f:
            out.append(json.load(f))
    return sorted(out, key=lambda r: r["time"])


def test_rss_threshold_once_per_crossing(tmp_path):
    spool = str(tmp_path / "spool")
    p = start_grower(tmp_path)
    # Grown before watch starts: a capture taken while the pages are still being touched
    # would set its next mark (+25%) from a number the growth then passes by itself.
    assert grow(p, 110) > 100 << 20
    w = watch(p.pid, "--rss", "100M", "--spool", spool, "--interval", "0.05s")
    try:
        assert wait_for(lambda: len(captures(spool, p.pid)) == 1)
        grow(p, 10)                         # < 25% more: no capture
        time.sleep(1.0)
        assert len(captures(spool, p.pid)) == 1
        grow(p, 40)                         # > 25% over the first capture's RSS
        assert wait_for(lambda: len(captures(spool, p.pid)) == 2)
        time.sleep(0.5)
        assert len(captures(spool, p.pid)) == 2
    finally:
        p.stdin.write("exit\n")
        p.stdin.flush()
        p.wait(timeout=10)
    out, err = w.communicate(timeout=30)       # the process gone, watch ends by itself
    assert w.returncode == 0, err
    assert f"pid {p.pid} (python" in err and "exited; no longer watched" in err
    recs = [r for r in records(spool, p.pid) if r.get("mode") == "watch"]
    assert len(recs) == 2 and all(r["reason"].startswith("rss ") for r in recs)
    assert recs[0]["rss"] >= 100 << 20 and recs[1]["rss"] >= recs[0]["rss"] * 1.25
    assert recs[0]["python"] and recs[0]["pause_ms"] < 1000
    # The README's next step: what grew between the two, one command away.
    assert "what grew: nsdebug diff " in out
    line = next(ln for ln in out.splitlines() if "what grew:" in ln)
    diff = subprocess.run([*targets.nsdebug_cmd(), *line.split("nsdebug ", 1)[1].split(),
                           "--json"], capture_output=True, text=True,
                          env=targets.nsdebug_env(), timeout=300)
    assert diff.returncode == 0, diff.stderr
    assert "Growing" in diff.stdout


def test_every_keeps_n_and_match_finds_new_processes(tmp_path):
    spool = str(tmp_path / "spool")
    tag = f"watch-tag-{os.getpid()}"
    w = watch("--match", tag, "--every", "0.4s", "--keep", "2", "--spool", spool,
              "--interval", "0.05s", "--for", "4s")
    time.sleep(0.5)
    p = start_grower(tmp_path, tag)            # appears after watch started
    try:
        out, err = w.communicate(timeout=60)
        assert w.returncode == 0, err
    finally:
        p.stdin.write("exit\n")
        p.stdin.flush()
        p.wait(timeout=10)
    made = out.count(f": pid {p.pid} (every 0.4 s)")
    assert made >= 4, out
    assert len(captures(spool, p.pid)) == 2
    assert len(records(spool, p.pid)) == 2
    assert captures(spool) == captures(spool, p.pid)    # nothing else matched


@pytest.fixture
def memory_cgroup(tmp_path):
    """A memory cgroup with a 192 MiB limit, v1 or v2 (whichever this machine has)."""
    mounts = cgroup_mounts()
    name = f"nsdebug-watch-{os.getpid()}"
    if "memory" in mounts:
        path = os.path.join(mounts["memory"], name)
        limit_file = "memory.limit_in_bytes"
    elif "v2" in mounts:
        path = os.path.join(mounts["v2"], name)
        limit_file = "memory.max"
    else:
        pytest.skip("no memory cgroup hierarchy is mounted")
    try:
        os.mkdir(path)
    except OSError as e:
        pytest.skip(f"cannot make a memory cgroup here: {e.strerror}")
    try:
        with open(os.path.join(path, limit_file), "w") as f:
            f.write(str(192 << 20))
        yield path
    finally:
        for _ in range(100):
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.1)


def test_cgroup_captured_before_the_oom_killer(tmp_path, memory_cgroup):
    spool = str(tmp_path / "spool")
    procs = os.path.join(memory_cgroup, "cgroup.procs")

    def enter():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    p = subprocess.Popen([targets.default_build().exe, SCRIPT, str(tmp_path / "t.json"),
                          "--auto", "4", "40"], stdout=subprocess.PIPE, text=True,
                         preexec_fn=enter)
    assert p.stdout.readline().strip() == "ready"
    used, limit, version = cgroup_memory(p.pid)
    assert limit == 192 << 20
    w = watch(p.pid, "--cgroup-percent", "50", "--spool", spool, "--interval", "0.05s")
    p.wait(timeout=120)
    out, err = w.communicate(timeout=60)
    assert p.returncode == -9, "the OOM killer did not end the target"
    assert w.returncode == 0, err
    recs = records(spool, p.pid)
    assert recs and recs[0]["reason"].startswith(f"cgroup v{version} memory")
    first = os.path.join(spool, recs[0]["core"])
    r = subprocess.run([*targets.nsdebug_cmd(), first, "-c",
                        "objects --sort retained --json -n 10"],
                       capture_output=True, text=True, env=targets.nsdebug_env(),
                       timeout=300)
    assert r.returncode == 0, r.stderr
    rows = {row["type"]: row for row in json.loads(r.stdout)["rows"]}
    grown = rows["__main__.Growing"]
    # At 50% of 192 MiB, about 96 MiB were held in 4 MiB Growing objects.
    assert 15 <= grown["count"] <= 40, grown
    # Each holds its 4 MiB, but for one the capture may catch inside its __init__,
    # before its bytearray is made.
    assert grown["retained"] >= (grown["count"] - 1) * (4 << 20)


def test_bad_arguments_are_one_line(tmp_path):
    for args, words in ((["--rss", "1G"], "give PIDs or --match"),
                        (["999999999", "--rss", "1G"], "no process 999999999"),
                        (["1", "--rss", "lots"], "not a size"),
                        (["1", "--cgroup-percent", "0"], "between 0 and 100"),
                        (["1"], "needs --rss, --cgroup-percent or --every")):
        w = watch(*args, "--spool", tmp_path / "spool")
        out, err = w.communicate(timeout=30)
        assert w.returncode == 1 and words in err, (args, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
