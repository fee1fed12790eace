"""Whatever fails, the target is left running, untraced, with no child, and no file half
written; every failure is one line."""

import os
import resource
import signal
import subprocess
import sys
import time

import pytest
import targets
from helpers import arthur_cmd, assert_untouched, children, run_arthur, status


@pytest.fixture
def target(tmp_path):
    proc, _ = targets.start_target(sys.executable, "stacks_target.py", str(tmp_path),
                                   threads=4)
    yield proc
    targets.stop(proc)


@pytest.fixture
def big_target(tmp_path):
    """A process big enough that a high-compression dump takes a few seconds."""
    proc, _ = targets.start_target(sys.executable, "big_target.py", str(tmp_path), "400",
                                   "random")
    yield proc
    targets.stop(proc)


def one_line_error(r):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.strip().splitlines() if not x.startswith("arthur: paused")]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("arthur: ")
    return lines[0]


def no_files(d):
    left = [f for f in os.listdir(d) if f.endswith((".lz4", ".partial")) or "arthur" in f]
    assert left == [], left


@pytest.mark.parametrize("step", ["after-seize", "before-fork", "after-fork", "during-dump"])
def test_an_exception_at_any_step(target, tmp_path, step):
    out = tmp_path / "out"
    out.mkdir()
    r = run_arthur("capture", target.pid, "-o", out / "c.lz4", env={"ARTHUR_FAULT": step})
    line = one_line_error(r)
    assert f"injected fault at {step}" in line
    assert_untouched(target.pid, threads=4)
    no_files(out)


def test_a_failure_while_reaping_is_retried(target, tmp_path):
    r = run_arthur("capture", target.pid, "-o", tmp_path / "c.lz4",
                   env={"ARTHUR_FAULT": "during-reap"})
    assert r.returncode == 0, r.stderr
    assert "retrying" in r.stderr
    assert_untouched(target.pid, threads=4)


def _start_and_wait_for_pause(pid, out, *extra):
    proc = subprocess.Popen(arthur_cmd() + ["capture", str(pid), "-o", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    assert "paused pid" in line, line + proc.stderr.read()
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_arthur_mid_dump(big_target, tmp_path, sig):
    out = tmp_path / "out"
    out.mkdir()
    proc = _start_and_wait_for_pause(big_target.pid, out / "c.lz4", "--level", "12")
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert f"interrupted by {signal.Signals(sig).name}" in err
    assert "Traceback" not in err
    assert_untouched(big_target.pid)
    no_files(out)


def test_target_exits_mid_dump(big_target, tmp_path, nsdebug):
    out = tmp_path / "c.lz4"
    proc = _start_and_wait_for_pause(big_target.pid, out, "--level", "12")
    time.sleep(0.3)
    child = [c for c in children(big_target.pid)]
    assert len(child) == 1 and status(child[0])["State"][0] == "t"
    big_target.kill()
    big_target.wait()
    _, err = proc.communicate(timeout=300)
    # The frozen copy outlives its parent: the capture completes and is whole.
    assert proc.returncode == 0, err
    r = nsdebug(out, "-c", "threads", "--json")
    assert r.returncode == 0
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            state = status(child[0])["State"][0]
        except FileNotFoundError:
            break
        if state == "Z":
            break          # dead, waiting for init to reap it
        time.sleep(0.05)
    else:
        pytest.fail("the frozen copy was left alive")


def test_child_dies_mid_dump(big_target, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = _start_and_wait_for_pause(big_target.pid, out / "c.lz4", "--level", "12")
    time.sleep(0.3)
    (child,) = children(big_target.pid)
    os.kill(child, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "died during the dump" in err and "Traceback" not in err
    assert_untouched(big_target.pid)
    no_files(out)


def test_no_such_pid():
    r = run_arthur("capture", 4_000_000)
    assert "no process 4000000" in one_line_error(r)


HOLD_TRACE = """
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
if libc.ptrace(0x4206, int(sys.argv[1]), None, None) != 0:   # PTRACE_SEIZE: no stop
    sys.exit("seize failed: %d" % ctypes.get_errno())
print("holding", flush=True)
time.sleep(60)
"""


def test_not_permitted(target, tmp_path):
    """A process already traced (by a debugger, strace, ...) may not be traced again."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_TRACE, str(target.pid)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        out = tmp_path / "out"
        out.mkdir()
        r = run_arthur("capture", target.pid, "-o", out / "c.lz4")
        line = one_line_error(r)
        assert "not permitted" in line or "already traced" in line
        assert f"already traced by pid {holder.pid}" in line
        assert status(target.pid)["State"][0] in "SR"
        no_files(out)
    finally:
        holder.kill()
        holder.wait()
    assert_untouched(target.pid, threads=4)


def test_existing_output_is_kept_without_force(target, tmp_path):
    out = tmp_path / "c.lz4"
    out.write_bytes(b"precious")
    r = run_arthur("capture", target.pid, "-o", out)
    assert "exists (use --force" in one_line_error(r)
    assert out.read_bytes() == b"precious"
    assert_untouched(target.pid, threads=4)
    r = run_arthur("capture", target.pid, "-o", out, "--force")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:4] == b"\x04\x22\x4d\x18"


def test_full_disk(target, tmp_path):
    out = tmp_path / "out"
    out.mkdir()

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    r = run_arthur("capture", target.pid, "-o", out / "c.lz4", preexec_fn=small_files)
    line = one_line_error(r)
    assert "cannot write" in line and "File too large" in line
    assert_untouched(target.pid, threads=4)
    no_files(out)
