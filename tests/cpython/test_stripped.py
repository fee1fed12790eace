"""Stripped builds, and each way of finding _PyRuntime, give the same stacks."""

import glob
import json
import os
import shutil
import subprocess

import pytest
from conftest import build_params
from test_stacks import bt_json, compare_stacks

# Debian's builds are stripped already; these cases strip pyenv's own.
PYENV_ONLY = pytest.mark.parametrize("build", build_params("pyenv"), indirect=True)


def stripped_copies(cap, dest):
    """Strip copies of the executable and libpython the core mapped into `dest`."""
    os.makedirs(dest, exist_ok=True)
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(cap.python)))
    files = glob.glob(os.path.join(prefix, "lib", "libpython3*.so.1.0")) + \
        [os.path.realpath(cap.python)]
    for f in files:
        out = os.path.join(dest, os.path.basename(f))
        shutil.copyfile(f, out)
        subprocess.run(["strip", "--strip-all", out], check=True)
        r = subprocess.run(["readelf", "-S", out], capture_output=True, text=True, check=True)
        assert ".symtab" not in r.stdout and ".debug_info" not in r.stdout
    return dest


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip not installed")
@PYENV_ONLY
def test_stripped_build_gives_the_same_stacks(cores, build, nsdebug, tmp_path):
    cap = cores.stacks(build)
    libdir = stripped_copies(cap, str(tmp_path / "stripped"))
    r = nsdebug(cap.core, "--lib-path", libdir, "-c", "info", "--json")
    info = json.loads(r.stdout)
    assert info["python"]["library"].endswith(".so.1.0")
    result = bt_json(nsdebug, cap.core, "--lib-path", libdir)
    assert compare_stacks(result, cap.truth) > 40


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip not installed")
@PYENV_ONLY
def test_stripped_build_on_a_crash_core(cores, build, nsdebug, tmp_path):
    cap = cores.crash(build)
    libdir = stripped_copies(cap, str(tmp_path / "stripped"))
    result = bt_json(nsdebug, cap.core, "--lib-path", libdir)
    assert compare_stacks(result, cap.truth) > 40


def test_every_way_of_finding_the_runtime_agrees(cores, build, nsdebug):
    cap = cores.stacks(build)
    want = None
    methods = ["symbol", "scan"]
    key = build.key
    if key >= (3, 12):
        methods.append("section")      # the .PyRuntime section exists from 3.12
    if key >= (3, 13):
        methods.append("cookie")       # _Py_DebugOffsets from 3.13
    for m in methods:
        r = nsdebug(cap.core, "--runtime-method", m, "-c", "info", "--json")
        assert r.returncode == 0, (m, r.stderr)
        py = json.loads(r.stdout)["python"]
        assert py["runtime_found_by"] == m
        want = want or py["runtime"]
        assert py["runtime"] == want, m
    result = bt_json(nsdebug, cap.core, "--runtime-method", "scan")
    assert compare_stacks(result, cap.truth) > 40


@pytest.mark.parametrize("build", [b for b in build_params() if b.values[0].key >= (3, 13)],
                         indirect=True)
def test_debug_offsets_are_read_on_313_and_later(cores, build, nsdebug):
    cap = cores.stacks(build)
    py = json.loads(nsdebug(cap.core, "-c", "info", "--json").stdout)["python"]
    assert py["found_by"] == "_Py_DebugOffsets"
    assert py["layout"].startswith("_Py_DebugOffsets of the process")
