"""hash() of a str as the process computed it, and the dict probe built on it: the
process's own answers are the truth (hash() under a random secret read by ctypes, and
every key of sys.modules in a real core)."""

import json
import subprocess

import pytest
from conftest import build_params

from nsdebug.cpython.objects import _ABSENT
from nsdebug.cpython.strhash import StrHasher
from nsdebug.model import open_target

TEXTS = ["threading", "", "a", "abcdefgh", "abcdefghi", "_active", "h\xe9llo", "\u65e5\u672c",
         "\U0001F600x", "x" * 100, "__main__", "\udc80"]

# Inside the target: its secret (a random seed each run) and its own hashes.
PROBE = """
import ctypes, json, struct, sys
secret = bytes((ctypes.c_ubyte * 16).in_dll(ctypes.pythonapi, "_Py_HashSecret"))
texts = json.loads(sys.argv[1])
print(json.dumps({"key": struct.unpack("<QQ", secret), "version": sys.version_info[:2],
                  "hashes": [hash(t) for t in texts]}))
"""


@pytest.mark.parametrize("build", build_params(), indirect=True)
def test_hash_matches_the_interpreter_under_a_random_secret(build):
    out = subprocess.run([build.exe, "-c", PROBE, json.dumps(TEXTS)], capture_output=True,
                         text=True, env={"PYTHONHASHSEED": "random"}, timeout=60)
    assert out.returncode == 0, out.stderr
    truth = json.loads(out.stdout)
    assert truth["key"] != [0, 0]
    hasher = StrHasher(lambda: tuple(truth["key"]), tuple(truth["version"]))
    assert [hasher(t) for t in TEXTS] == truth["hashes"]


def test_no_secret_means_no_hash():
    assert StrHasher(lambda: None, (3, 12))("threading") is None


@pytest.mark.parametrize("build", build_params(), indirect=True)
def test_probe_finds_every_module_as_the_scan_does(cores, build):
    """Every key of sys.modules found by its hash gives the value the scan of all keys
    gives. A name not there is None (left to the scan) until the hash has found a key;
    from then on it is surely absent, and dict_get_str answers without the scan."""
    target = open_target(cores.stacks(build).core)
    try:
        rt = target.runtime
        o, modules = rt.objects, rt.main_interpreter.modules
        items = [(o.read_str(k), v) for k, v in o.dict_items(modules)]
        assert len(items) > 20
        assert o._probe_str(modules, "no such module") is None
        assert not o.str_hash.confirmed
        for name, value in items:
            assert o._probe_str(modules, name) == value, name
        assert o.str_hash.confirmed
        assert o._probe_str(modules, "no such module") is _ABSENT
        scanned = o.dict_items
        o.dict_items = lambda *a, **k: pytest.fail("an absent key scanned for")
        assert o.dict_get_str(modules, "no such module") is None
        o.dict_items = scanned
        assert o.str_hash.key, "the core's _Py_HashSecret was not read"
        names = {t.name for t in rt.threads}
        assert "MainThread" in names
    finally:
        target.close()


@pytest.mark.parametrize("build", build_params(), indirect=True)
def test_a_wrong_hash_leaves_every_answer_to_the_scan(cores, build):
    """Keyed by a secret not the process's, the probe finds nothing and is never
    trusted to say a key is absent: dict_get_str still finds every module by scanning."""
    target = open_target(cores.stacks(build).core)
    try:
        rt = target.runtime
        o, modules = rt.objects, rt.main_interpreter.modules
        o.str_hash = StrHasher(lambda: (1, 2), rt.version.key)
        items = [(o.read_str(k), v) for k, v in o.dict_items(modules)]
        for name, value in items:
            assert o._probe_str(modules, name) is None, name
        assert not o.str_hash.confirmed
        assert o._probe_str(modules, "no such module") is None
        for name, value in items:
            assert o.dict_get_str(modules, name) == value, name
        assert o.dict_get_str(modules, "no such module") is None
    finally:
        target.close()
