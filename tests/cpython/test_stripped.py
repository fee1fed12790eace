"""Stripped builds, and each way of finding _PyRuntime, give the same stacks."""

import glob
import json
import os
import shutil
import subprocess

import pytest
from test_stacks import bt_json, compare_stacks


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
def test_stripped_build_gives_the_same_stacks(cores, version, nsdebug, tmp_path):
    cap = cores.stacks(version)
    libdir = stripped_copies(cap, str(tmp_path / "stripped"))
    r = nsdebug(cap.core, "--lib-path", libdir, "-c", "info", "--json")
    info = json.loads(r.stdout)
    assert info["python"]["library"].endswith(".so.1.0")
    result = bt_json(nsdebug, cap.core, "--lib-path", libdir)
    assert compare_stacks(result, cap.truth) > 40


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip not installed")
def test_stripped_build_on_a_crash_core(cores, version, nsdebug, tmp_path):
    cap = cores.crash(version)
    libdir = stripped_copies(cap, str(tmp_path / "stripped"))
    result = bt_json(nsdebug, cap.core, "--lib-path", libdir)
    assert compare_stacks(result, cap.truth) > 40


def test_every_way_of_finding_the_runtime_agrees(cores, version, nsdebug):
    cap = cores.stacks(version)
    want = None
    methods = ["symbol", "scan"]
    key = tuple(int(x) for x in version.split("."))
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


def test_debug_offsets_are_read_on_313(cores, nsdebug):
    if "3.13" not in __import__("conftest").PYTHONS:
        pytest.skip("CPython 3.13 is not installed")
    cap = cores.stacks("3.13")
    py = json.loads(nsdebug(cap.core, "-c", "info", "--json").stdout)["python"]
    assert py["found_by"] == "_Py_DebugOffsets"
    assert py["layout"].startswith("_Py_DebugOffsets of the process")
