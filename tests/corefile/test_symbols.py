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


def test_symbolize_many_names_each_address_by_a_symbol_that_covers_it():
    """The bulk form the heap walk uses (thousands of words of data named at once):
    every answer is a real symbol of the file at the address minus the offset, one
    that covers the address whenever some symbol does, and nothing before the first."""
    import bisect

    import targets
    from nsdebug.corefile.symbols import ElfFile
    f = ElfFile(libpython(targets.default_build()))
    table = f.symbols
    starts = [v for v, _, _ in table]
    known = {(v, s, n) for v, s, n in table}
    rng = random.Random(4)
    addrs = [rng.randrange(starts[0] - 4096, starts[-1] + (2 << 20)) for _ in range(4000)]
    addrs += [v + rng.randrange(max(s, 1)) for v, s, _ in rng.sample(table, 1000)]
    answers = f.symbolize_many(addrs)
    assert len(answers) == len(addrs)
    covered = 0
    for a, hit in zip(addrs, answers):
        i = bisect.bisect_right(starts, a)
        covers = [r for r in table[max(i - 8, 0):i] if r[1] and r[0] <= a < r[0] + r[1]]
        if a < starts[0]:
            assert hit is None
            continue
        if covers:
            covered += 1
            assert hit is not None and hit[1] < hit[2], (hex(a), hit)
        if hit is not None:
            name, off, size = hit
            assert (a - off, size, name) in known, (hex(a), hit)
    assert covered > 1000
    assert f.symbolize_many([]) == []
