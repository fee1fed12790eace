"""What users install: the wheel and sdist carry every file, and the installed tools run
from anywhere (`nsdebug`, `arthur`, `python -m ...`, `--version`)."""

import os
import subprocess
import sys
import tarfile
import zipfile

import pytest
import targets

import nsdebug

ROOT = targets.ROOT


def tracked_files():
    r = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("not a git work tree")
    return r.stdout.split()


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """A wheel and an sdist built from a clone of the committed tree."""
    tmp = tmp_path_factory.mktemp("dist")
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "-q", ROOT, str(clone)], check=True)
    out = tmp / "out"
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir",
                        str(out), str(clone)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    wheel = next(out.glob("nsdebug-*.whl"))
    sdist = next(out.glob("nsdebug-*.tar.gz"))
    return wheel, sdist


def test_wheel_carries_every_package_file(dists):
    wheel, _ = dists
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = [f for f in tracked_files() if f.startswith(("nsdebug/", "arthur/"))]
    assert any("/layouts/data/t3_" in f for f in wanted)  # the layout tables
    missing = [f for f in wanted if f not in names]
    assert not missing, missing
    assert f"nsdebug-{nsdebug.__version__}.dist-info/entry_points.txt" in names


def test_sdist_carries_the_package_tests_and_tools(dists):
    _, sdist = dists
    with tarfile.open(sdist) as tf:
        top = tf.getnames()[0].split("/")[0]
        names = {n[len(top) + 1:] for n in tf.getnames()}
    wanted = [f for f in tracked_files() if not f.startswith(".git")]
    missing = [f for f in wanted if f not in names]
    assert not missing, missing


def test_the_installed_wheel_runs_from_outside_the_work_tree(dists, cores, tmp_path):
    """A fresh venv with only the wheel (dependencies borrowed from this venv through a
    .pth, so nothing is downloaded); every entry point, run from an unrelated directory."""
    wheel, _ = dists
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    r = subprocess.run([sys.executable, "-m", "pip", "--python", py, "install", "-q",
                        "--no-deps", str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # Only now (pip would see this venv's nsdebug through it and install nothing); the
    # venv's own site-packages stays first on the path.
    here_site = os.path.dirname(os.path.dirname(nsdebug.__file__))
    with open(os.path.join(site, "zz-borrowed-deps.pth"), "w") as f:
        f.write(here_site + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*cmd):
        r = subprocess.run([str(c) for c in cmd], cwd=outside, capture_output=True,
                           text=True, env=env, timeout=120)
        assert r.returncode == 0, (cmd, r.stderr)
        return r.stdout

    version = nsdebug.__version__
    assert run(venv / "bin" / "nsdebug", "--version").strip() == f"nsdebug {version}"
    assert run(venv / "bin" / "arthur", "--version").strip() == f"arthur {version}"
    assert run(py, "-m", "nsdebug", "--version").strip() == f"nsdebug {version}"
    assert run(py, "-m", "arthur", "--version").strip() == f"arthur {version}"
    where = run(py, "-c", "import nsdebug, arthur; print(nsdebug.__file__, arthur.__file__)")
    assert str(venv) in where and ROOT not in where
    # The C modules are optional in setup.py (a build without a compiler still works,
    # slowly): one that fails to compile must not ship unnoticed.
    compiled = run(py, "-c", "import nsdebug.corefile._vector as v, nsdebug.corefile._symtab, "
                   "nsdebug.heap._graphc as g, nsdebug.heap._kernels as k, "
                   "nsdebug.native._dwarfc; print(v.__file__, g.__file__, k.__file__)")
    assert compiled.count(str(venv)) == 3, compiled
    # A Python command needs the layout tables: the data files the old wheel lacked.
    version_id = targets.default_build().id
    cap = cores.stacks(version_id)
    out = run(venv / "bin" / "nsdebug", cap.core, "-c", "bt")
    assert "Traceback (most recent call last)" in out
