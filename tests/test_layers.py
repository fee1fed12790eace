"""Layers only point upward: importing a layer pulls in nothing above it; arthur stays
within the standard library and lz4 (it runs on production hosts)."""

import json
import subprocess
import sys

import pytest

ABOVE = {
    "nsdebug.corefile": ["nsdebug.cpython", "nsdebug.heap", "nsdebug.commands",
                         "nsdebug.render", "nsdebug.repl", "nsdebug.cli", "numpy", "rich",
                         "prompt_toolkit", "capstone"],
    "nsdebug.native.disasm": ["nsdebug.cpython", "nsdebug.heap", "nsdebug.commands",
                              "nsdebug.render"],
    "nsdebug.cpython": ["nsdebug.heap", "nsdebug.commands", "nsdebug.render", "nsdebug.repl",
                        "nsdebug.cli", "rich", "prompt_toolkit"],
    "nsdebug.heap": ["nsdebug.commands", "nsdebug.render", "nsdebug.repl", "nsdebug.cli",
                     "rich", "prompt_toolkit"],
    "nsdebug.commands": ["nsdebug.render", "nsdebug.repl", "nsdebug.cli", "rich",
                         "prompt_toolkit", "numpy", "capstone"],
}


def imported_after(module):
    code = (f"import sys, json; import {module}; "
            f"print(json.dumps(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    return set(json.loads(r.stdout))


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_layer_imports_nothing_above_it(layer):
    mods = imported_after(layer)
    for above in ABOVE[layer]:
        assert not any(m == above or m.startswith(above + ".") for m in mods), \
            f"{layer} imports {above}"


def test_batch_commands_do_not_load_the_shell_or_rich():
    """A batch `bt` pays neither for the shell nor for rich (see design.md, imports)."""
    code = ("import sys, json; from nsdebug.commands import load_all; load_all(); "
            "import nsdebug.render, nsdebug.cli; print(json.dumps(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    mods = set(json.loads(r.stdout))
    for heavy in ("prompt_toolkit", "rich", "numpy", "capstone"):
        assert heavy not in mods, heavy


def test_arthur_uses_only_the_stdlib_and_lz4():
    code = ("import sys, json; import arthur.cli, arthur.capture, arthur.lz4core, "
            "arthur.corewriter, arthur.coreinfo; print(json.dumps(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    mods = json.loads(r.stdout)
    third_party = {m.split(".")[0] for m in mods} - set(sys.stdlib_module_names) - \
        {"arthur", "lz4", "__main__", "_distutils_hack", "_virtualenv"}
    assert not {m for m in third_party if not m.startswith("_")}, third_party
