"""nsdebug's C modules let the GIL go around their loops (Py_BEGIN_ALLOW_THREADS). Inside
such a block no Python API may be called, directly or through a helper: the dominator
pass's DFS called PyErr_NoMemory there when its stack could not be had, and a walk under
a data limit died with SIGSEGV. This reads the sources and finds any such call."""

import glob
import os
import re

import pytest

pytestmark = pytest.mark.unit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCES = sorted(glob.glob(os.path.join(ROOT, "nsdebug", "**", "*.c"), recursive=True))

# A call of the Python C API (the buffer release macros and Py_ssize_t are not calls).
PY_API = re.compile(r"\b(Py[A-Z]\w*|_Py\w+)\s*\(")
DEFINITION = re.compile(r"^[A-Za-z_][\w \t\*]*?\b(\w+)\s*\([^;{}]*\)\s*\{", re.M)
CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
NOT_FUNCTIONS = {"if", "for", "while", "switch", "return", "sizeof"}


def functions(src):
    """name -> body of each function defined at the top level of `src`."""
    out = {}
    for m in DEFINITION.finditer(src):
        end = src.find("\n}", m.end())
        if m.group(1) not in NOT_FUNCTIONS and end > 0:
            out[m.group(1)] = src[m.end():end]
    return out


def python_callers(funcs):
    """The functions that call the Python API, themselves or through others here."""
    calls = {n: set(CALL.findall(body)) - NOT_FUNCTIONS for n, body in funcs.items()}
    found = {n for n, body in funcs.items() if PY_API.search(body)}
    while True:
        more = {n for n, c in calls.items() if n not in found and c & found}
        if not more:
            return found
        found |= more


def gil_free_calls(path):
    """(line, what) of each Python API use inside a block without the GIL."""
    src = open(path).read()
    funcs = functions(src)
    callers = python_callers(funcs)
    bad = []
    for m in re.finditer(r"Py_BEGIN_ALLOW_THREADS(.*?)Py_END_ALLOW_THREADS", src, re.S):
        line = src.count("\n", 0, m.start()) + 1
        block = m.group(1)
        direct = set(PY_API.findall(block))
        helpers = set(CALL.findall(block)) & callers
        if direct or helpers:
            bad.append((line, sorted(direct | helpers)))
    return bad


def test_the_sources_are_found():
    names = {os.path.basename(p) for p in SOURCES}
    assert {"_graphc.c", "_vector.c", "_kernels.c"} <= names, names


@pytest.mark.parametrize("path", SOURCES, ids=os.path.basename)
def test_no_python_api_is_called_without_the_gil(path):
    assert gil_free_calls(path) == []


def test_the_check_finds_a_helper_that_sets_an_error(tmp_path):
    """The check itself, on the shape of the bug it was written for."""
    c = tmp_path / "m.c"
    c.write_text(
        "static int grow(int n) {\n    void *p = malloc(n);\n"
        "    if (!p) { PyErr_NoMemory(); return -1; }\n    return 0;\n}\n"
        "static int outer(int n) {\n    return grow(n);\n}\n"
        "static PyObject *f(PyObject *self, PyObject *args) {\n    int r;\n"
        "    Py_BEGIN_ALLOW_THREADS\n    r = outer(4);\n    Py_END_ALLOW_THREADS\n"
        "    return PyLong_FromLong(r);\n}\n")
    assert gil_free_calls(str(c)) == [(11, ["outer"])]
