"""Layers only point upward (docs/architecture.md): importing a layer pulls in nothing
above it; the commands and the API are two faces over the model and never import each
other; batch commands load neither the shell nor the heap's numpy; arthur stays within
the standard library and lz4 (it runs on production hosts)."""

import ast
import json
import os
import subprocess
import sys

import pytest

import targets

pytestmark = pytest.mark.unit

FACES = ["nsdebug.api", "nsdebug.commands", "nsdebug.render", "nsdebug.formatters",
         "nsdebug.batch", "nsdebug.repl", "nsdebug.report", "nsdebug.demo", "nsdebug.cli",
         "nsdebug.triage_cli", "nsdebug.html"]
SHELL = ["rich", "prompt_toolkit"]

ABOVE = {
    "nsdebug.corefile": ["nsdebug.native", "nsdebug.cpython", "nsdebug.heap", "nsdebug.model",
                         *FACES, "numpy", "capstone", *SHELL],
    "nsdebug.native": ["nsdebug.cpython", "nsdebug.heap", "nsdebug.model", *FACES, *SHELL],
    "nsdebug.cpython": ["nsdebug.native", "nsdebug.heap", "nsdebug.model", *FACES, *SHELL],
    "nsdebug.heap": ["nsdebug.model", *FACES, *SHELL],
    "nsdebug.model": FACES + SHELL + ["nsdebug.fleet"],
    # Many cores at once: over the model, under the faces; Dask only when asked for.
    "nsdebug.fleet": FACES + SHELL + ["distributed", "dask"],
    # The two faces over the model: neither stands on the other.
    "nsdebug.commands": ["nsdebug.api", "nsdebug.render", "nsdebug.formatters",
                         "nsdebug.batch", "nsdebug.repl", "nsdebug.report", "nsdebug.cli",
                         "numpy", "capstone", *SHELL],
    "nsdebug.api": ["nsdebug.commands", "nsdebug.render", "nsdebug.formatters",
                    "nsdebug.batch", "nsdebug.repl", "nsdebug.report", "nsdebug.cli",
                    *SHELL],
    "nsdebug.formatters": ["nsdebug.commands", "nsdebug.model", "nsdebug.heap",
                           "nsdebug.api", "nsdebug.repl", "nsdebug.cli", "numpy", *SHELL],
    "nsdebug.render": ["nsdebug.commands", "nsdebug.api", "nsdebug.repl", "nsdebug.cli",
                       "numpy", *SHELL],
    "nsdebug.batch": ["nsdebug.repl", "nsdebug.report", "nsdebug.demo", "nsdebug.cli",
                      *SHELL],
}
# Where a layer's files are, for the static check of every import (lazy ones too).
ROOT = os.path.join(targets.ROOT, "nsdebug")


def imported_after(module):
    code = (f"import sys, json; import {module}; "
            f"print(json.dumps(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    return set(json.loads(r.stdout))


def _within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_layer_imports_nothing_above_it(layer):
    mods = imported_after(layer)
    for above in ABOVE[layer]:
        assert not any(_within(m, above) for m in mods), f"{layer} imports {above}"


def _imports_in(path, package):
    """Every module a file imports, at the top or inside a function, made absolute."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out += [base] + [f"{base}.{a.name}" for a in node.names]
    return out


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_no_file_of_a_layer_imports_above_it_even_lazily(layer):
    """The run-time check sees only what importing the layer loads; a function's own
    import (the way heavy modules are deferred) is checked here, in the source."""
    below = [a for a in ABOVE[layer] if a.startswith("nsdebug.")]
    rel = layer.split(".", 1)[1].replace(".", os.sep)
    base = os.path.join(ROOT, rel)
    files = [base + ".py"] if os.path.isfile(base + ".py") else [
        os.path.join(d, f) for d, _, fs in os.walk(base) for f in fs if f.endswith(".py")]
    bad = []
    for path in files:
        mod = "nsdebug." + os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        package = mod if path.endswith("__init__.py") else mod.rsplit(".", 1)[0]
        package = package.removesuffix(".__init__")
        for name in _imports_in(path, package):
            if any(_within(name, a) for a in below):
                bad.append(f"{os.path.relpath(path, ROOT)} imports {name}")
    assert not bad, bad


def test_batch_commands_do_not_load_the_shell_the_heap_or_capstone():
    """A batch `bt` pays neither for the shell, nor for rich, nor for the heap's numpy."""
    code = ("import sys, json; from nsdebug.commands import load_all; load_all(); "
            "import nsdebug.render, nsdebug.cli, nsdebug.batch; "
            "print(json.dumps(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    mods = set(json.loads(r.stdout))
    for heavy in ("prompt_toolkit", "rich", "numpy", "capstone", "nsdebug.heap.graph"):
        assert heavy not in mods, heavy


def test_corefile_c_code_knows_elf_not_python():
    """The corefile package's C knows ELF segments, not CPython: no CPython structure
    (dicts, pools, str, type flags) is read there; those kernels are heap/_kernels.c."""
    words = ("PyDict", "dict", "pool", "unicode", "ascii", "Py_TPFLAGS", "ob_refcnt",
             "keys", "str_")
    for name in ("_vector.c", "_space.h", "_symtab.c"):
        with open(os.path.join(ROOT, "corefile", name)) as f:
            text = f.read().lower()
        found = [w for w in words if w.lower() in text]
        assert not found, (name, found)


def test_arthur_uses_only_the_stdlib_and_lz4():
    code = ("import sys, json; import arthur.cli, arthur.capture, arthur.lz4core, "
            "arthur.corewriter, arthur.coreinfo, arthur.coreformat; "
            "print(json.dumps(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    mods = json.loads(r.stdout)
    third_party = {m.split(".")[0] for m in mods} - set(sys.stdlib_module_names) - \
        {"arthur", "lz4", "__main__", "_distutils_hack", "_virtualenv"}
    assert not {m for m in third_party if not m.startswith("_")}, third_party


def test_arthur_never_imports_nsdebug():
    """arthur is the base both tools stand on (the capture format, private outputs):
    it must not lean on the debugger."""
    base = os.path.join(targets.ROOT, "arthur")
    bad = []
    for f in os.listdir(base):
        if f.endswith(".py"):
            names = _imports_in(os.path.join(base, f), "arthur")
            bad += [f"{f}: {n}" for n in names if _within(n, "nsdebug")]
    assert not bad, bad
