"""Session fixtures: real cores of real targets, made once per test session."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "arthur"))
import targets  # noqa: E402

PYTHONS = targets.installed_pythons()
VERSIONS = [v for v in targets.SUPPORTED if v in PYTHONS]


def pytest_report_header(config):
    missing = targets.missing_pythons()
    lines = [f"target CPythons: {', '.join(VERSIONS) or 'none'}"]
    if missing:
        lines.append(f"SKIPPING target CPythons not installed: {', '.join(missing)}")
    return lines


def pytest_terminal_summary(terminalreporter):
    missing = targets.missing_pythons()
    if missing:
        terminalreporter.write_line(
            f"NOTE: CPython {', '.join(missing)} not installed here; their cases were skipped")


def version_params():
    """Every supported version; those not installed are skipped, saying why."""
    return [pytest.param(v, marks=pytest.mark.skipif(
        v not in PYTHONS, reason=f"CPython {v} is not installed"), id=f"py{v}")
        for v in targets.SUPPORTED]


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

    def stacks(self, version):
        """gcore of fixtures/stacks_target.py: 4 threads, known stacks."""
        return self._get(("stacks", version), lambda: targets.gcore_capture(
            version, PYTHONS[version], "stacks_target.py",
            os.path.join(self.base, f"stacks-{version}"), threads=4))

    def heap(self, version):
        """gcore of fixtures/heap_target.py: a known heap and its truth."""
        return self._get(("heap", version), lambda: targets.gcore_capture(
            version, PYTHONS[version], "heap_target.py",
            os.path.join(self.base, f"heap-{version}")))

    def crash(self, version):
        """Kernel core of fixtures/stacks_target.py --crash: SIGSEGV at 0x8."""
        ok, why = targets.kernel_core_pattern_ok()
        if not ok:
            pytest.skip(f"kernel cores unavailable: {why}")
        env = dict(os.environ, NSDEBUG_FIXTURE_API_TOKEN="tok-5ecret-value",
                   NSDEBUG_FIXTURE_COLOR="blue")
        return self._get(("crash", version), lambda: targets.crash_capture(
            version, PYTHONS[version], "stacks_target.py",
            os.path.join(self.base, f"crash-{version}"), "--crash", env=env))

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


@pytest.fixture(params=version_params())
def version(request):
    return request.param


def run_nsdebug(*args, timeout=120, input=None):
    """Run the real nsdebug program; returns CompletedProcess with text output."""
    return subprocess.run(targets.nsdebug_cmd() + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, input=input)


@pytest.fixture
def nsdebug():
    return run_nsdebug
