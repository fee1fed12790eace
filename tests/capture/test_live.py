"""`nsdebug --pid`: a running process read through arthur's frozen fork, no core written.
It gives what `arthur capture` + nsdebug give of the same quiescent process (stacks with
locals, the heap by type, the DevTools snapshot), on every build; and nsdebug killed at
any step of the freeze, or in the middle of a heap walk, leaves the target running."""

import json
import os
import signal
import subprocess
import time

import pytest
import targets
from helpers import children, run_arthur
from test_arthur_dies import STEPS, Victim

COMMANDS = ["bt --all --locals", "objects -n 40", "threads"]


def nsdebug(*args, env=None, timeout=300):
    return subprocess.run([*targets.nsdebug_cmd(), *map(str, args)], capture_output=True,
                          text=True, env=targets.nsdebug_env(env), timeout=timeout)


def batch(*source):
    args = [*source]
    for c in COMMANDS:
        args += ["-c", c]
    r = nsdebug(*args, "--no-cache")
    assert r.returncode == 0, r.stderr
    return r


def snapshot(path, *source):
    r = nsdebug(*source, "--no-cache", "--snapshot", path)
    assert r.returncode == 0, r.stderr
    with open(path) as f:
        snap = json.load(f)
    return {k: snap[k] for k in ("nodes", "edges", "strings")}


def test_live_equals_capture(build, tmp_path):
    proc, _truth = targets.start_target(build.exe, "stacks_target.py", str(tmp_path),
                                        threads=4)
    try:
        live = batch("--pid", proc.pid)
        cap = tmp_path / "c.lz4"
        r = run_arthur("capture", proc.pid, "-o", cap)
        assert r.returncode == 0, r.stderr
        captured = batch(cap)
        assert live.stdout == captured.stdout
        assert "recurse" in live.stdout and "objects" in live.stdout
        # The pause and the child's lifetime are said, on stderr.
        assert f"pid {proc.pid} paused " in live.stderr and "for the fork" in live.stderr
        assert f"released the frozen copy of pid {proc.pid} after " in live.stderr
        assert snapshot(tmp_path / "live.heapsnapshot", "--pid", proc.pid) == \
            snapshot(tmp_path / "cap.heapsnapshot", cap)
        assert [f for f in os.listdir(tmp_path) if f.startswith("core")] == []
        st = open(f"/proc/{proc.pid}/status").read()
        assert "TracerPid:\t0" in st and "State:\tS" in st
        r = run_arthur("reap", proc.pid)
        assert "reaped 0" in r.stdout, "a live session left a zombie behind"
    finally:
        targets.stop(proc)


@pytest.fixture
def victim(tmp_path):
    v = Victim(tmp_path)
    yield v
    v.close()


LIVE_STEPS = [s for s in STEPS if s != "during-dump"]


@pytest.mark.parametrize("step", LIVE_STEPS)
def test_nsdebug_vanishing_at_each_step(victim, step):
    r = nsdebug("--pid", victim.pid, "-c", "bt", env={"ARTHUR_VANISH": step})
    assert r.returncode == 137, r.stderr
    victim.assert_as_it_was(zombies_ok=True)
    run_arthur("reap", victim.pid)
    victim.assert_as_it_was()


def test_nsdebug_killed_during_a_heap_walk(victim):
    """SIGKILL while the frozen copy is read: the copy dies with nsdebug (EXITKILL), the
    target runs on; SIGTERM there releases the copy itself, leaving no zombie."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        p = subprocess.Popen([*targets.nsdebug_cmd(), "--pid", str(victim.pid), "--no-cache",
                              "-c", "objects", "-c", "suspects"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=targets.nsdebug_env())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:      # the fork made: the copy is held
            if children(victim.pid) or p.poll() is not None:
                break
            time.sleep(0.005)
        time.sleep(0.05)
        p.send_signal(sig)
        _out, err = p.communicate(timeout=60)
        assert p.returncode == (143 if sig == signal.SIGTERM else -9), err
        assert "Traceback" not in err, err
        victim.assert_as_it_was(zombies_ok=sig == signal.SIGKILL)
    run_arthur("reap", victim.pid)
    victim.assert_as_it_was()


def test_bad_pid_is_one_line(tmp_path):
    r = nsdebug("--pid", "999999999", "-c", "bt")
    assert r.returncode == 2 and "no process 999999999" in r.stderr
    assert "Traceback" not in r.stderr
    r = nsdebug(tmp_path / "x", "--pid", "1", "-c", "bt")
    assert r.returncode == 2 and "one of them" in r.stderr
