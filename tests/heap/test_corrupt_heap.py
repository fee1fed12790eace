"""Corrupt heaps still give a histogram, with the bad objects counted and named."""

import json
import struct
import time

from corepatch import patch_core

from nsdebug.corefile import open_core
from nsdebug.cpython import attach


def test_garbage_keys_huge_list_and_bad_type_cycle(cores, build, nsdebug, tmp_path):
    cap = cores.heap(build)
    t = cap.truth["named"]
    p = open_core(cap.core)
    rt = attach(p)
    L = rt.layout
    table, tags, ring = t["table"]["id"], t["tags"]["id"], t["ring_a"]["id"]
    patches = {
        table + L.dict.ma_keys: struct.pack("<Q", 0xDEAD0000DEAD0000),   # keys: garbage
        tags + L.varobject.ob_size: struct.pack("<q", 1 << 40),          # a huge list
        ring + L.object.ob_type: struct.pack("<Q", ring),                # type = itself
    }
    bad = str(tmp_path / "corrupt.core")
    patch_core(cap.core, bad, patches)
    start = time.monotonic()
    r = nsdebug(bad, "-c", "objects --top 100000", "--json", timeout=300)
    assert time.monotonic() - start < 120
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    res = json.loads(r.stdout)
    rows = {row["type"]: row for row in res["rows"]}
    damaged = {a: (typ, why) for a, typ, why in res["damaged"]}
    assert table in damaged and damaged[table][0] == "dict"
    assert tags in damaged and damaged[tags][0] == "list"
    assert ring in damaged and damaged[ring][0] == "<invalid>"
    assert res["invalid"] >= 1 and "<invalid>" in rows
    # Everything else is still counted.
    assert rows["__main__.Widget"]["count"] == cap.truth["classes"]["__main__.Widget"]
    assert rows["__main__.Point"]["count"] == cap.truth["classes"]["__main__.Point"]
    text = nsdebug(bad, "-c", "objects --top 5").stdout
    assert "invalid objects; damaged objects" in text and f"{table:#x} dict" in text


def test_a_broken_gc_list_is_named_and_the_heap_still_counted(cores, build, nsdebug,
                                                               tmp_path):
    # The GC's lists are chased on a second thread while the roots' waves run: a list
    # cut in the middle must still come back as a warning, with every object found by
    # the other ways (roots, pymalloc's arenas).
    cap = cores.heap(build)
    p = open_core(cap.core)
    rt = attach(p)
    L = rt.layout
    table = cap.truth["named"]["table"]["id"]
    head = table - L.gchead.size                  # the dict's PyGC_Head
    patches = {head + L.gchead.gc_next: struct.pack("<Q", 0xDEAD0000DEAD0000)}
    bad = str(tmp_path / "gc-cut.core")
    patch_core(cap.core, bad, patches)
    r = nsdebug(bad, "-c", "objects --top 100000", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    res = json.loads(r.stdout)
    broken = [w for w in res["warnings"] if "GC list" in w and "is broken after" in w]
    assert len(broken) == 1, res["warnings"]
    rows = {row["type"]: row for row in res["rows"]}
    assert rows["__main__.Widget"]["count"] == cap.truth["classes"]["__main__.Widget"]
    assert rows["__main__.Point"]["count"] == cap.truth["classes"]["__main__.Point"]
