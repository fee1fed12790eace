"""Helpers for arthur tests: run arthur, and check a process is left as it was."""

import os
import shutil
import subprocess
import sys


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


def children(pid):
    """Pids whose parent is `pid` (a leftover fork child would be one)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            if int(raw[raw.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(d))
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
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            tstat = f.read()
        assert "TracerPid:\t0" in tstat
        assert "State:\tt" not in tstat and "State:\tT" not in tstat
