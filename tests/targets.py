"""Run fixture targets under each installed CPython and take cores of them.

Shared by the tests and the benchmarks. Every target prints "ready" once its
truth JSON is written; cores come from gcore (live, stopped for the dump),
from the kernel (a crash with RLIMIT_CORE unlimited) or from arthur.
"""

from __future__ import annotations

import glob
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures")
SUPPORTED = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]


def pyenv_root():
    env = os.environ.get("PYENV_ROOT")
    if env:
        return env
    try:
        return subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.path.expanduser("~/.pyenv")


def installed_pythons():
    """{'3.8': '/root/.pyenv/versions/3.8.18/bin/python3', ...} for what is installed."""
    found = {}
    for d in sorted(glob.glob(os.path.join(pyenv_root(), "versions", "*"))):
        name = os.path.basename(d)
        parts = name.split(".")
        if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        key = f"{parts[0]}.{parts[1]}"
        exe = os.path.join(d, "bin", "python3")
        if key in SUPPORTED and os.access(exe, os.X_OK):
            found[key] = exe
    return found


def missing_pythons():
    have = installed_pythons()
    return [v for v in SUPPORTED if v not in have]


@dataclass
class Capture:
    version: str
    python: str
    core: str
    truth: dict
    pid: int
    workdir: str


def _wait_ready(proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"target exited with {proc.wait()} before it was ready")
        if line.strip() == "ready":
            return
    raise RuntimeError("target never said ready")


def _wait_threads(pid, count, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(os.listdir(f"/proc/{pid}/task")) == count:
                return
        except FileNotFoundError:
            raise RuntimeError(f"target {pid} vanished") from None
        time.sleep(0.02)
    raise RuntimeError(f"target {pid} never had {count} threads")


def start_target(python, script, workdir, *args, env=None, threads=None):
    """Start a fixture and wait for "ready"; returns (Popen, truth path)."""
    truth_path = os.path.join(workdir, "truth.json")
    proc = subprocess.Popen([python, os.path.join(FIXTURES, script), truth_path, *args],
                            stdout=subprocess.PIPE, text=True, cwd=workdir,
                            env=env)
    try:
        _wait_ready(proc)
        if threads:
            _wait_threads(proc.pid, threads)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return proc, truth_path


def gcore(pid, out_prefix):
    r = subprocess.run(["gcore", "-o", out_prefix, str(pid)], capture_output=True, text=True,
                       timeout=600)
    path = f"{out_prefix}.{pid}"
    if r.returncode != 0 or not os.path.exists(path):
        raise RuntimeError(f"gcore failed: {r.stderr.strip()[-500:]}")
    return path


def stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def gcore_capture(version, python, script, workdir, *args, threads=None, env=None):
    os.makedirs(workdir, exist_ok=True)
    proc, truth_path = start_target(python, script, workdir, *args, env=env, threads=threads)
    try:
        core = gcore(proc.pid, os.path.join(workdir, "core"))
    finally:
        stop(proc)
    with open(truth_path) as f:
        truth = json.load(f)
    return Capture(version, python, core, truth, proc.pid, workdir)


def _unlimited_core():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def kernel_core_pattern_ok():
    try:
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
    except OSError:
        return False, "cannot read core_pattern"
    if pattern.startswith("|"):
        return False, f"core_pattern pipes cores to {pattern.split()[0][1:]}"
    return True, pattern


def crash_capture(version, python, script, workdir, *args, env=None, timeout=60):
    """Run a target that dies of a signal with cores enabled; the kernel's core file."""
    os.makedirs(workdir, exist_ok=True)
    for old in glob.glob(os.path.join(workdir, "core*")):
        os.unlink(old)
    truth_path = os.path.join(workdir, "truth.json")
    proc = subprocess.Popen([python, os.path.join(FIXTURES, script), truth_path, *args],
                            cwd=workdir, preexec_fn=_unlimited_core, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RuntimeError("crash target did not crash in time") from None
    if proc.returncode != -signal.SIGSEGV:
        raise RuntimeError(f"crash target exited with {proc.returncode}, expected SIGSEGV")
    cores = glob.glob(os.path.join(workdir, "core*"))
    if not cores:
        raise RuntimeError("the kernel wrote no core file")
    with open(truth_path) as f:
        truth = json.load(f)
    return Capture(version, python, cores[0], truth, proc.pid, workdir)


def nsdebug_cmd():
    """How to run nsdebug from tests: the installed script next to this interpreter."""
    exe = shutil.which("nsdebug", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "nsdebug"]
