"""Helpers for arthur tests: run arthur, check a process is left as it was, read a
spool's records."""

import glob
import json
import os
import random
import shutil
import subprocess
import sys
import time

from arthur.procfs import children


def arthur_cmd():
    exe = shutil.which("arthur", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "arthur.cli"]


def run_arthur(*args, env=None, timeout=300, preexec_fn=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(arthur_cmd() + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout, env=e, preexec_fn=preexec_fn)


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def assert_untouched(pid, threads=None):
    """Running (not stopped), not traced, no child left behind, all threads there."""
    st = status(pid)
    assert st["TracerPid"] == "0", st["TracerPid"]
    assert st["State"][0] in "SR", st["State"]
    assert children(pid) == []
    if threads is not None:
        assert len(os.listdir(f"/proc/{pid}/task")) == threads
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                tstat = f.read()
        except (FileNotFoundError, ProcessLookupError):   # a thread that ended meanwhile
            continue
        assert "TracerPid:\t0" in tstat
        assert "State:\tt" not in tstat and "State:\tT" not in tstat


# The steps of a capture in order (arthur's faults.vanish_point names), and two more:
# killed before the first, and finished.
STEP_ORDER = ["(none)", "seize", "clone-set", "clone-done", "child-held", "thawed",
              "during-dump", "reap-set", "reap-done", "(finished)"]
WINDOW = ("seize", "clone-set", "clone-done", "child-held")   # the target frozen


def sleep_until(ns):
    """Sleep, then spin the last 3 ms: a sleep's wake-up is late by up to a timer slack."""
    wait = (ns - time.monotonic_ns()) / 1e9 - 0.003
    if wait > 0:
        time.sleep(wait)
    while time.monotonic_ns() < ns:
        pass


class KillAimer:
    """Runs `arthur capture` and sends it a signal at a chosen instant; learns when the
    freeze happens (ARTHUR_TIMELINE) and homes in on it, as a benchmark would."""

    def __init__(self, pid, workdir, seed=1):
        self.pid, self.workdir = pid, str(workdir)
        self.rng = random.Random(seed)
        marks = self._run(None, None)[1]
        self.aim = marks["clone-set"]
        self.span = (marks["seize"] - 3_000_000, marks["reap-done"] + 3_000_000)

    def _run(self, sig, delay, out="aim.lz4"):
        """(last step reached, {step: ns from start}, return code, stderr)."""
        log = os.path.join(self.workdir, "timeline")
        if os.path.exists(log):
            os.unlink(log)
        out = os.path.join(self.workdir, out)
        env = dict(os.environ, ARTHUR_TIMELINE=log)
        start = time.monotonic_ns()
        p = subprocess.Popen(arthur_cmd() + ["capture", str(self.pid), "-o", out],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env=env)
        if sig is not None:
            sleep_until(start + delay)
            p.send_signal(sig)
        _, err = p.communicate(timeout=120)
        marks = {}
        if os.path.exists(log):
            with open(log) as f:
                for line in f:
                    name, ns = line.split()
                    marks.setdefault(name, int(ns) - start)
        if os.path.exists(out):
            os.unlink(out)
        last = "(finished)" if p.returncode == 0 else \
            max(marks, key=marks.get) if marks else "(none)"
        return last, marks, p.returncode, err

    def kill(self, sig, aimed):
        """One run, aimed at the freeze or at a random instant of the whole capture."""
        if aimed:
            delay = self.aim + self.rng.uniform(-1_000_000, 1_000_000)
        else:
            delay = self.rng.uniform(*self.span)
        last, _, rc, err = self._run(sig, delay)
        if aimed:                      # landed early: aim later; late: aim earlier
            k = STEP_ORDER.index(last)
            if k < STEP_ORDER.index("seize"):
                self.aim += 300_000
            elif k > STEP_ORDER.index("child-held"):
                self.aim -= 300_000
        return last, rc, err


def record_of(spool, pid, timeout=120):
    """The finished record of `pid`'s crash (the handler writes it last)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in glob.glob(os.path.join(spool, f"core.*.{pid}.*.json")):
            try:
                with open(path) as f:
                    rec = json.load(f)
            except ValueError:
                continue
            if "held_ms" in rec or rec.get("dropped"):
                return rec
        time.sleep(0.1)
    raise AssertionError(f"no record of pid {pid} in {os.listdir(spool)}")
