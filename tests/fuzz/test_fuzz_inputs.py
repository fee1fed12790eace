"""Every input the fuzz harnesses kept (fuzz/regressions: each finding's reproducer;
fuzz/corpus: the seeds and what long runs found worth keeping) through its harness once,
on the installed package: what failed once must not fail again, and the corpora stay
valid inputs as the code changes. (Under the sanitizers, `tools/fuzz.py replay` does the
same in CI.)"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUZZ = os.path.join(ROOT, "fuzz")
HARNESSES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(FUZZ, "h_*.py")))


def harness(name):
    if FUZZ not in sys.path:
        sys.path.insert(0, FUZZ)              # the harnesses import fuzz/shape.py
    spec = importlib.util.spec_from_file_location(name, os.path.join(FUZZ, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def inputs(kind):
    return [pytest.param(name, path, id=f"{name}/{os.path.basename(path)}")
            for name in HARNESSES
            for path in sorted(glob.glob(os.path.join(FUZZ, kind, name, "*")))]


@pytest.fixture(autouse=True, scope="module")
def scratch(tmp_path_factory):
    """The harnesses' scratch files in a directory of this run's (fuzz/shape.py), not
    left in /dev/shm."""
    old = os.environ.get("NSDEBUG_FUZZ_SCRATCH")
    os.environ["NSDEBUG_FUZZ_SCRATCH"] = str(tmp_path_factory.mktemp("fuzz-scratch"))
    yield
    if old is None:
        del os.environ["NSDEBUG_FUZZ_SCRATCH"]
    else:
        os.environ["NSDEBUG_FUZZ_SCRATCH"] = old


def test_every_harness_has_seeds_or_a_kept_corpus():
    for name in HARNESSES:
        assert glob.glob(os.path.join(FUZZ, "corpus", name, "*")), name


@pytest.mark.parametrize("name,path", inputs("regressions"))
def test_regression_reproducers_pass(name, path):
    with open(path, "rb") as f:
        harness(name).one(f.read())


@pytest.mark.parametrize("name", HARNESSES)
def test_corpus_inputs_pass(name):
    one = harness(name).one
    files = sorted(glob.glob(os.path.join(FUZZ, "corpus", name, "*")))
    for path in files:
        with open(path, "rb") as f:
            one(f.read())
