"""Symbol tables of a real libpython: lookup() by name (through .gnu.hash, else by
finding the name in the string tables) answers what decoding every symbol answers, and
symbolize() names addresses inside functions."""

import os
import random

import pytest


def libpython(build):
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(build.exe)))
    lib = os.path.join(prefix, "lib", f"libpython{build.version}.so.1.0")
    if not os.path.exists(lib):
        pytest.skip(f"{lib} is not there")
    return os.path.realpath(lib)


def test_lookup_by_name_matches_every_symbol_decoded():
    import targets
    from nsdebug.corefile.symbols import ElfFile
    build = targets.default_build()
    lib = libpython(build)
    every = {}
    for value, size, name in ElfFile(lib).symbols:      # sorted by address: first wins
        every.setdefault(name, (value, size))
    names = sorted(every)
    sample = random.Random(3).sample(names, min(400, len(names)))
    sample += ["interned", "_PyRuntime", "_PyEval_EvalFrameDefault"]
    f = ElfFile(lib)                                      # fresh: nothing decoded yet
    for name in sample:
        if name in every:
            assert f.lookup(name) == every[name], name
    assert f.lookup("no_such_symbol_anywhere") is None
    assert f.lookup("") is None


def test_symbolize_names_addresses_inside_functions():
    import targets
    from nsdebug.corefile.symbols import ElfFile
    f = ElfFile(libpython(targets.default_build()))
    value, size = f.lookup("_PyEval_EvalFrameDefault")
    assert f.symbolize(value + size // 2)[:2] == ("_PyEval_EvalFrameDefault", size // 2)
