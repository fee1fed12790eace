"""Hostile bytes under the memory accounting: a huge shape, a garbage data pointer, a
corrupt malloc chunk, a numpy version of another layout. Each gives a warning or a
damaged object and an honest "not attributed", never a crash, a hang or a size made up
from the bad field."""

import json
import struct

import numpy as np
import pytest

import nsdebug as nsd
import targets
from corepatch import patch_core
from nsdebug.corefile.vector import VectorMemory
from nsdebug.heap.mallocheap import MallocHeap


@pytest.fixture(scope="module")
def base(cores):
    cap = cores.buffers(targets.default_build())
    if cap.truth["numpy"] is None:
        pytest.fail("the default build has no numpy wheels")
    return cap


def word(core, addr):
    with nsd.open(core) as c:
        return struct.unpack("<Q", c.process.memory.read(addr, 8))[0]


def sizes_of(core, truth, *names):
    with nsd.open(core) as c:
        g = c.heap.graph
        return [int(g.size[g.index_of(truth["named"][n]["id"])]) for n in names], \
            g.warnings, g.problems


def run_ok(nsdebug_cli, core, *cmds):
    for cmd in cmds:
        r = nsdebug_cli(core, "-c", cmd)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (cmd, r.stderr)


def test_huge_shape_and_garbage_data(base, tmp_path, nsdebug):
    named = base.truth["named"]
    f64, i32 = named["owned_f64"]["id"], named["owned_i32"]["id"]
    dims = word(base.core, f64 + 32)
    bad = str(tmp_path / "core.bad")
    patch_core(base.core, bad, {dims: struct.pack("<q", 1 << 60),
                                i32 + 16: struct.pack("<Q", 0x7ffdead00000)})
    (s_f64, s_i32), _, problems = sizes_of(bad, base.truth, "owned_f64", "owned_i32")
    assert s_f64 == 96 + 16 and s_i32 == 96 + 32         # struct and shape, no data
    assert "shape" in problems[f64] and "not in the core" in problems[i32]
    run_ok(nsdebug, bad, "objects", "memory", "suspects")


def test_corrupt_malloc_chunk(base, tmp_path, nsdebug):
    with nsd.open(base.core) as c:
        heap = MallocHeap(VectorMemory(c.process), c.process.mappings())
        main = next(i for i, r in enumerate(heap.regions) if r.kind == "main heap")
        chunks = np.nonzero(heap.region == main)[0]
        victim = int(heap.addr[chunks[len(chunks) // 2]])
    bad = str(tmp_path / "core.chunk")
    patch_core(base.core, bad, {victim + 8: struct.pack("<Q", 0x8)})
    with nsd.open(bad) as c:
        g = c.heap.graph
        assert any(f"{victim:#x}" in w and "damaged chunk" in w for w in g.warnings), \
            g.warnings
    r = nsdebug(bad, "-c", "memory", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert sum(row["bytes"] for row in doc["rows"]) == doc["total"]
    by = {row["category"]: row["bytes"] for row in doc["rows"]}
    # The heap past the damaged chunk is unwalked, shown as such.
    assert by["malloc overhead and unwalked"] > 0


def test_unknown_numpy_version(base, tmp_path, nsdebug):
    version = base.truth["numpy"].encode()
    with nsd.open(base.core) as c:
        rt = c.target.runtime
        o = rt.objects
        md = o.ptr(rt.module_object("numpy") + rt.layout.module.md_dict)
        s = o.dict_get_str(md, "__version__")
        raw = c.process.memory.read(s, 128)
    at = s + raw.index(version)
    bad = str(tmp_path / "core.numpy")
    patch_core(base.core, bad, {at: b"9" + version[1:]})
    (s_f64,), warnings, _ = sizes_of(bad, base.truth, "owned_f64")
    assert s_f64 == 96                                   # its struct only
    assert any("numpy 9" in w and "not attributed" in w for w in warnings), warnings
    r = nsdebug(bad, "-c", "memory", "--json")
    assert r.returncode == 0, r.stderr
    by = {row["category"]: row["bytes"] for row in json.loads(r.stdout)["rows"]}
    assert by["buffers owned by objects (in malloc)"] < 10 << 20
    assert by["native blocks not attributed"] >= 20 << 20
