"""arthur may die at any instant (SIGKILL, a dropped SSH session's SIGHUP): the target
lives on exactly as it was. The target (fixtures/victim_target.py) checks itself: its
threads still wake up in sleep, select, accept and Lock.acquire, its main thread still
reads stdin, and its FPU rounding mode, signal mask and alternate signal stack are its
own. Zombies a killed run leaves are reaped by the next capture or `arthur reap`."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import targets
from helpers import KillAimer, arthur_cmd, children, run_arthur, status

# Steps of a capture at which tests end arthur as SIGKILL would (faults.vanish_point).
STEPS = ["seize", "clone-set", "clone-done", "child-held", "thawed", "during-dump",
         "reap-set", "reap-done"]


class Victim:
    def __init__(self, tmp_path):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(targets.FIXTURES, "victim_target.py"),
             str(tmp_path / "truth.json")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, cwd=str(tmp_path))
        assert self.proc.stdout.readline().strip() == "ready"
        self.pid = self.proc.pid
        self.first = self.check()

    def check(self):
        """The target's own account of itself (it answers: its main thread is fine)."""
        self.proc.stdin.write("check\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def assert_as_it_was(self, zombies_ok=False):
        st = status(self.pid)
        assert st["TracerPid"] == "0" and st["State"][0] in "SR", st
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/status") as f:
                    t = f.read()
            except (FileNotFoundError, ProcessLookupError):   # the churner's short-lived threads come and go
                continue
            assert "TracerPid:\t0" in t and "(stopped)" not in t and "(tracing stop)" not in t
        before = self.check()["counts"]
        time.sleep(0.15)
        now = self.check()
        for key in ("round", "mask", "altstack", "float", "threads"):
            assert now[key] == self.first[key], key
        for kind, n in now["counts"].items():
            assert n > before[kind], f"the {kind} thread stopped waking up"
        if not zombies_ok:
            assert now["children"] == []
        return now

    def close(self):
        try:
            self.proc.stdin.write("exit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        targets.stop(self.proc)


@pytest.fixture
def victim(tmp_path):
    v = Victim(tmp_path)
    yield v
    v.close()


def reap(v):
    r = run_arthur("reap", v.pid)
    assert r.returncode == 0, r.stderr
    assert children(v.pid) == []


@pytest.mark.parametrize("step", STEPS)
def test_arthur_vanishing_at_each_step(victim, tmp_path, step):
    r = run_arthur("capture", victim.pid, "-o", tmp_path / "c.lz4",
                   env={"ARTHUR_VANISH": step})
    assert r.returncode == 137, r.stderr
    # The capture is whole once the dump is done (the reap comes after), else absent.
    assert os.path.exists(tmp_path / "c.lz4") == step.startswith("reap-")
    assert [f for f in os.listdir(tmp_path) if "partial" in f] == []
    victim.assert_as_it_was(zombies_ok=True)
    # The next capture reaps what this run left, and says so.
    r = run_arthur("capture", victim.pid, "-o", tmp_path / "d.lz4")
    assert r.returncode == 0, r.stderr
    # A child born while arthur lived is killed with it (or exits by itself) and stays a
    # zombie; an injected wait4 completes by itself and reaps.
    left = step in ("clone-set", "clone-done", "child-held", "thawed", "during-dump")
    assert ("left by an arthur run that was killed" in r.stderr) == left, r.stderr
    victim.assert_as_it_was()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP])
def test_arthur_killed_at_any_instant(victim, tmp_path, sig):
    """25 runs per signal: 15 aimed at the freeze and the injected clone (homing in by
    the timeline of each run), 10 at random instants of the whole capture."""
    aimer = KillAimer(victim.pid, tmp_path, seed=int(sig))
    landed = Counter()
    for k in range(25):
        last, rc, err = aimer.kill(sig, aimed=k % 5 < 3)
        landed[last] += 1
        assert "Traceback" not in err and "Exception ignored" not in err, err
        if sig == signal.SIGHUP and rc == -signal.SIGHUP:
            # Hung up while the interpreter started, before arthur's code ran.
            assert last == "(none)" and err == ""
            victim.assert_as_it_was()
        elif sig == signal.SIGHUP and rc != 0:
            # A hang-up is handled: one line, the target left as it was, no zombie.
            assert rc == 130 and err.strip().splitlines()[-1].startswith(
                "arthur: interrupted by SIGHUP"), err
            victim.assert_as_it_was()
        else:
            victim.assert_as_it_was(zombies_ok=True)
        assert [f for f in os.listdir(tmp_path) if "partial" in f] == []
    reap(victim)
    victim.assert_as_it_was()
    print(f"{sig.name}: ended at {dict(landed)}")


def test_reap_without_leftovers_says_so(victim):
    r = run_arthur("reap", victim.pid)
    assert r.returncode == 0 and "reaped 0" in r.stdout


def test_double_sigint_during_cleanup_leaves_no_traceback(victim, tmp_path):
    """SIGINT, then SIGINT again while arthur cleans up: one line, target fine."""
    for k in range(5):
        p = subprocess.Popen(arthur_cmd() + ["capture", str(victim.pid), "-o",
                                             str(tmp_path / f"i{k}.lz4"), "--level", "12"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.15 + 0.02 * k)
        p.send_signal(signal.SIGINT)
        time.sleep(0.001 * k)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        assert "Traceback" not in err and "Exception ignored" not in err, err
        victim.assert_as_it_was()


def test_capture_under_load_is_invisible(victim, tmp_path):
    """Captures while threads come and go and real-time signals pour in: every signal
    arrives once, every thread keeps waking up, nothing else changes."""
    import threading
    sent = [0]
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            os.kill(victim.pid, signal.SIGRTMIN)
            sent[0] += 1
            time.sleep(0.0005)

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        for k in range(15):
            r = run_arthur("capture", victim.pid, "-o", tmp_path / f"l{k}.lz4")
            assert r.returncode == 0, r.stderr
            os.unlink(tmp_path / f"l{k}.lz4")
    finally:
        stop.set()
        flooder.join()
    deadline = time.time() + 10
    while victim.check()["signals"] < sent[0] and time.time() < deadline:
        time.sleep(0.05)
    now = victim.assert_as_it_was()
    assert now["signals"] == sent[0] and sent[0] > 1000, (now["signals"], sent[0])
    assert now["counts"]["churn"] > 100


def test_captures_while_threads_come_and_go(victim, tmp_path):
    """The churner's threads exit all the time; one caught on its way out is refused by
    the kernel with EPERM, which must not read as 'not permitted' (nor as 'already
    traced' by arthur itself): it is left, and every capture succeeds."""
    for _ in range(40):
        r = run_arthur("capture", victim.pid, "-o", tmp_path / "c.lz4", "--force")
        assert r.returncode == 0, r.stderr
    victim.assert_as_it_was()
