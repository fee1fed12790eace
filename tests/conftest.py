"""Session fixtures: real cores of real targets, made once per test session."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "capture"))
import targets  # noqa: E402

if targets.SANITIZER_PRELOAD:
    # Loaded into this process already; only nsdebug's own processes get it again.
    os.environ.pop("LD_PRELOAD", None)

import nsdebug  # noqa: E402


def _guard_installed_package():
    """The suite tests what users install: the package in site-packages, never the work
    tree (an editable install once hid a wheel without its data files). Set
    NSDEBUG_TEST_WORKTREE=1 to test a work tree on purpose while developing."""
    here = os.path.realpath(nsdebug.__file__)
    source = os.path.join(targets.ROOT, "nsdebug") + os.sep
    if here.startswith(source) and not os.environ.get("NSDEBUG_TEST_WORKTREE"):
        raise pytest.UsageError(
            f"nsdebug is imported from the work tree ({here}), not from an installed "
            f"package: install it with `pip install .` and run `.venv/bin/pytest`, or set "
            f"NSDEBUG_TEST_WORKTREE=1 to test the work tree on purpose")


_guard_installed_package()


def _unit_only(config):
    """`pytest -m unit`: the fast tier needs no CPython build, so none is looked for
    (finding Debian's fetches them on a fresh machine)."""
    return (config.getoption("markexpr", "") or "").strip() == "unit"


UNIT_ONLY = False


def pytest_configure(config):
    global UNIT_ONLY
    UNIT_ONLY = _unit_only(config)


def pytest_report_header(config):
    if _unit_only(config):
        return ["unit tier: synthetic inputs only, no CPython build"]
    have = [b.id for b in targets.available_builds()]
    lines = [f"target CPython builds: {', '.join(have) or 'none'}"]
    for b in targets.missing_builds():
        lines.append(f"SKIPPING {b.id}: {b.why_missing}")
    return lines


def pytest_terminal_summary(terminalreporter):
    if _unit_only(terminalreporter.config):
        return
    for b in targets.missing_builds():
        terminalreporter.write_line(f"NOTE: build {b.id} not available here ({b.why_missing}); "
                                    f"its cases were skipped")


def build_params(source=None):
    """Every build the suite knows; those not available are skipped, saying why (none
    in the unit tier, whose tests take no build)."""
    if UNIT_ONLY:
        return []
    return [pytest.param(b, marks=pytest.mark.skipif(not b.exe, reason=b.why_missing or ""),
                         id=b.id if b.source == "debian" else f"py{b.id}")
            for b in targets.builds() if source is None or b.source == source]


def pytest_generate_tests(metafunc):
    """`build`: every CPython build (targets.Build), pyenv's and Debian's; not looked
    for at all in the unit tier."""
    if "build" not in metafunc.fixturenames or UNIT_ONLY:
        return
    if any("build" in m.args[0] for m in metafunc.definition.iter_markers("parametrize")):
        return                          # the test chose its builds itself
    metafunc.parametrize("build", build_params(), indirect=True)


@pytest.fixture
def build(request):
    """A CPython build (targets.Build): every pyenv version and Debian's builds."""
    return request.param


class CoreCache:
    """Cores made on first request and kept for the session."""

    def __init__(self, base):
        self.base = base
        self._cache = {}

    def _get(self, key, make):
        if key not in self._cache:
            try:
                self._cache[key] = make()
            except RuntimeError as e:
                self._cache[key] = e
        value = self._cache[key]
        if isinstance(value, Exception):
            pytest.fail(f"could not make core {key}: {value}")
        return value

    def stacks(self, build):
        """gcore of fixtures/stacks_target.py: 4 threads, known stacks."""
        build = _as_build(build)
        return self._get(("stacks", build.id), lambda: targets.gcore_capture(
            build, "stacks_target.py", os.path.join(self.base, f"stacks-{build.id}"),
            threads=4, tool=targets.live_capture_tool(build)))

    def heap(self, build):
        """gcore of fixtures/heap_target.py: a known heap and its truth."""
        build = _as_build(build)
        return self._get(("heap", build.id), lambda: targets.gcore_capture(
            build, "heap_target.py", os.path.join(self.base, f"heap-{build.id}"),
            tool=targets.live_capture_tool(build)))

    def asyncio(self, build):
        """A core of fixtures/asyncio_target.py: tasks parked in known awaits."""
        build = _as_build(build)
        return self._get(("asyncio", build.id), lambda: targets.gcore_capture(
            build, "asyncio_target.py", os.path.join(self.base, f"asyncio-{build.id}"),
            tool=targets.live_capture_tool(build)))

    def locks(self, build):
        """A core of fixtures/locks_target.py: two deadlocks, a Condition, a queue, a join."""
        build = _as_build(build)
        return self._get(("locks", build.id), lambda: targets.gcore_capture(
            build, "locks_target.py", os.path.join(self.base, f"locks-{build.id}"),
            threads=15, tool=targets.live_capture_tool(build)))

    def leak(self, build):
        """Two cores of fixtures/leak_target.py 4000 requests apart: (old, new)."""
        build = _as_build(build)
        return self._get(("leak", build.id), lambda: targets.leak_captures(
            build, os.path.join(self.base, f"leak-{build.id}")))

    def buffers(self, build, tool=None):
        """A core of fixtures/buffers_target.py (numpy and pandas when PyPI has wheels
        for the build): by the build's live capture tool, or `tool`."""
        build = _as_build(build)
        tool = tool or targets.live_capture_tool(build)

        def make():
            path = targets.science_path(build)
            env = dict(os.environ, PYTHONPATH=path) if path else None
            return targets.gcore_capture(
                build, "buffers_target.py", os.path.join(self.base, f"buffers-{tool}-{build.id}"),
                env=env, tool=tool)
        return self._get(("buffers", tool, build.id), make)

    def crash(self, build):
        """Kernel core of fixtures/stacks_target.py --crash: SIGSEGV at 0x8."""
        ok, why = targets.kernel_core_pattern_ok()
        if not ok:
            pytest.skip(f"kernel cores unavailable: {why}")
        env = dict(os.environ, NSDEBUG_FIXTURE_API_TOKEN="tok-5ecret-value",
                   NSDEBUG_FIXTURE_COLOR="blue")
        build = _as_build(build)
        return self._get(("crash", build.id), lambda: targets.crash_capture(
            build, "stacks_target.py", os.path.join(self.base, f"crash-{build.id}"),
            "--crash", env=env))

    def native_crash(self, build):
        """Kernel core of fixtures/native_target.py --crash: SIGSEGV in ctypes.memset."""
        ok, why = targets.kernel_core_pattern_ok()
        if not ok:
            pytest.skip(f"kernel cores unavailable: {why}")
        build = _as_build(build)
        return self._get(("native-crash", build.id), lambda: targets.crash_capture(
            build, "native_target.py", os.path.join(self.base, f"native-crash-{build.id}"),
            "--crash"))

    def native_parked(self, build):
        """A core of fixtures/native_target.py: threads parked in C."""
        build = _as_build(build)
        return self._get(("native-parked", build.id), lambda: targets.gcore_capture(
            build, "native_target.py", os.path.join(self.base, f"native-{build.id}"),
            threads=7, tool=targets.live_capture_tool(build)))

    def native(self):
        """gcore of `sleep`: a process with no Python in it."""
        def make():
            workdir = os.path.join(self.base, "sleep")
            os.makedirs(workdir, exist_ok=True)
            proc = subprocess.Popen(["sleep", "600"])
            try:
                import time
                time.sleep(0.2)
                core = targets.gcore(proc.pid, os.path.join(workdir, "core"))
            finally:
                targets.stop(proc)
            return targets.Capture(None, None, core, {}, proc.pid, workdir)
        return self._get(("native",), make)


@pytest.fixture(scope="session")
def cores(tmp_path_factory):
    return CoreCache(str(tmp_path_factory.mktemp("cores")))


def _as_build(b):
    return targets.build(b) if isinstance(b, str) else b


def run_nsdebug(*args, timeout=120, input=None):
    """Run the real nsdebug program; returns CompletedProcess with text output."""
    return subprocess.run(targets.nsdebug_cmd() + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, input=input,
                          env=targets.nsdebug_env())


@pytest.fixture
def nsdebug():
    return run_nsdebug
