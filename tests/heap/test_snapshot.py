"""Exported .heapsnapshot files, loaded by DevTools' own loader under Node."""

import json
import os
import signal
import subprocess
import sys

import browser
import pytest
import targets

DEVTOOLS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "devtools")


@pytest.fixture(scope="session")
def devtools():
    """DevTools' loader (npm heap-snapshot-toolkit), installed here by the test set-up."""
    browser.node_modules()

    def load(*files, ids=()):
        cmd = ["node", "check.mjs", *map(str, files)]
        if ids:
            cmd += ["--ids", ",".join(map(str, ids))]
        r = subprocess.run(cmd, cwd=DEVTOOLS, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(r.stdout)
    return load


def snapshot_id(addr):
    return ((addr >> 4) & 0x7FFFFFFF) * 2


def check_header_counts(path):
    """The counts in the header must match the arrays exactly."""
    with open(path) as f:
        doc = json.load(f)
    meta = doc["snapshot"]["meta"]
    nf, ef = len(meta["node_fields"]), len(meta["edge_fields"])
    nodes, edges = doc["nodes"], doc["edges"]
    assert list(doc) == ["snapshot", "nodes", "edges", "trace_function_infos", "trace_tree",
                         "samples", "locations", "strings"]
    assert len(nodes) == doc["snapshot"]["node_count"] * nf
    assert len(edges) == doc["snapshot"]["edge_count"] * ef
    assert sum(nodes[4::nf]) == doc["snapshot"]["edge_count"]
    assert all(t % nf == 0 and t < len(nodes) for t in edges[2::ef])
    assert max(nodes[1::nf]) < len(doc["strings"]) and doc["strings"][0] == ""
    ids = nodes[2::nf]
    assert len(set(ids)) == len(ids) and max(ids) < 2 ** 32
    return doc["snapshot"]["node_count"], doc["snapshot"]["edge_count"]


def test_snapshot_loads_in_devtools(cores, build, nsdebug, devtools, tmp_path):
    cap = cores.heap(build)
    out = tmp_path / "heap.heapsnapshot"
    r = nsdebug(cap.core, "--snapshot", out, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout
    nodes, edges = check_header_counts(out)
    objs = json.loads(nsdebug(cap.core, "-c", "objects --top 100000", "--json").stdout)
    widget = cap.truth["named"]["widget"]["id"]
    d = devtools(out, ids=[snapshot_id(widget)])
    assert d["nodeCount"] == nodes and d["edgeCount"] == edges
    counts = {row["type"]: row["count"] for row in objs["rows"]}
    for cls, n in cap.truth["classes"].items():
        assert d["aggregates"][cls]["count"] == counts[cls] == n, cls
    # Every object hangs from the root ((Unreachable) included): the root retains them all.
    assert d["rootRetained"] == objs["total_size"] == d["totalSize"]
    chain = d["chains"][str(snapshot_id(widget))]
    assert chain and chain[0] == {"edge": "42", "type": "element", "retainer": "list"}
    assert any(link["edge"] == "widgets" for link in chain)
    # The id DevTools shows opens the same object in nsdebug.
    r = nsdebug(cap.core, "-c", f"print @{snapshot_id(widget)}", "--json")
    assert json.loads(r.stdout)["address"] == widget


def test_comparison_of_two_cores_shows_the_growth(devtools, nsdebug, tmp_path):
    proc, truth_path = targets.start_target(sys.executable, "heap_target.py", str(tmp_path),
                                            "1", "--grow", "1000")
    try:
        first = targets.gcore(proc.pid, str(tmp_path / "one"))
        os.rename(first, tmp_path / "core1")
        proc.send_signal(signal.SIGUSR1)
        assert proc.stdout.readline().strip() == "grown"
        second = targets.gcore(proc.pid, str(tmp_path / "two"))
    finally:
        targets.stop(proc)
    a, b = tmp_path / "a.heapsnapshot", tmp_path / "b.heapsnapshot"
    assert nsdebug(tmp_path / "core1", "--snapshot", a).returncode == 0
    assert nsdebug(second, "--snapshot", b).returncode == 0
    d = devtools(a, b)
    w = d["diff"]["__main__.Widget"]
    assert w["addedCount"] == 1000 and w["removedCount"] == 0 and w["countDelta"] == 1000
    assert d["diff"].get("__main__.Point", {"countDelta": 0})["countDelta"] == 0


def test_snapshot_refuses_to_overwrite(cores, nsdebug, tmp_path):
    cap = cores.heap(targets.default_build())
    out = tmp_path / "x.heapsnapshot"
    out.write_text("keep")
    r = nsdebug(cap.core, "-c", f"snapshot {out}")
    assert r.returncode == 1 and "exists" in r.stderr
    assert out.read_text() == "keep"
    # The message says --force: the --snapshot shortcut takes it too.
    r = nsdebug(cap.core, "--snapshot", out)
    assert r.returncode == 1 and "use --force" in r.stderr and out.read_text() == "keep"
    r = nsdebug(cap.core, "--snapshot", out, "--force")
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith('{"snapshot":')


@pytest.mark.parametrize("small", [False, True])
def test_a_captures_snapshot_reads_its_core_in_windows_and_equals_the_plain_cores(
        small, cores, build, nsdebug, tmp_path, monkeypatch):
    """With the heap index made, a capture's snapshot still needs some of the core's
    bytes (str values, qualified names, keys): it reads them a window at a time
    (corefile.windows), no copy of the whole core made; or, a core no larger than
    windows.WHOLE_UP_TO (small: this one, as it is), from one copy of it all and no
    window. The file is byte for byte the one the same bytes give as a plain core,
    redacted or not."""
    from nsdebug import api
    from nsdebug.corefile import windows
    from nsdebug.corefile.lz4source import LZ4Source
    lz = tmp_path / "c.lz4"
    plain = tmp_path / "c.core"
    with open(cores.leak(build)[1].core, "rb") as src, open(lz, "wb") as dst:
        dst.write(src.read())                   # a copy: the index made here is its own
    subprocess.run(["lz4", "-q", "-d", str(lz), str(plain)], check=True)
    for core in (lz, plain):
        r = nsdebug(core, "-c", "objects")      # the index, for the commands below
        assert r.returncode == 0, r.stderr
    made, windowed = [], []
    make, window = LZ4Source._make_copy, windows.WindowedMemory._view
    monkeypatch.setattr(LZ4Source, "_make_copy",
                        lambda self, upto: made.append(upto) or make(self, upto))
    monkeypatch.setattr(windows.WindowedMemory, "_view", lambda self, buf, first, last:
                        windowed.append(first) or window(self, buf, first, last))
    monkeypatch.setattr(windows, "WINDOW_BYTES", 4 << 20)      # several windows
    if not small:
        monkeypatch.setattr(windows, "WHOLE_UP_TO", 0)
    for redact in (False, True):
        out = {}
        for core in (lz, plain):
            out[core] = tmp_path / f"{core.name}-{redact}.heapsnapshot"
            with api.open(str(core)) as c:
                assert c.target.has("heap") is False
                c.snapshot(str(out[core]), redact=redact)
                assert c.target.has("heap")
        assert out[lz].read_bytes() == out[plain].read_bytes()
    if small:
        size = os.path.getsize(plain)
        assert size <= windows.WHOLE_UP_TO and windowed == [], (size, len(windowed))
        assert len(made) == 2 and made[0] <= size, made      # once for each snapshot
    else:
        assert made == [] and len(windowed) > 2 * 6, len(windowed)


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 6, 1 << 16])
def test_rows_made_a_chunk_at_a_time_are_the_same_at_any_chunk(chunk, monkeypatch):
    """The snapshot's rows are made a chunk at a time: a native node's backing-store
    edge follows its owner's own edges whether the owner's last edge ends a chunk or
    the edges (5 and 6 here), its owner's size is less its bytes (never below 0), each
    edge is named as DevTools wants (a hidden edge by its index, a weak edge of
    (Unreachable) by its position as a string, a dict entry by its key's text)."""
    import numpy as np
    from nsdebug.heap import graph
    from nsdebug.heap import snapshot as S
    from nsdebug.heap.buffers import KINDS
    from nsdebug.heap.referents import ELEMENT, HIDDEN, PROPERTY
    from nsdebug.heap.string_table import StringTable
    monkeypatch.setattr(S, "CHUNK", chunk)
    g = graph.HeapGraph()
    g.n, g.n_synth = 4, 2
    g.synth_names = ["(root)", "(Unreachable)"]
    g.addr = np.array([0, 0, 0x7F0000001000, 0x7F0000002000], np.uint64)
    g.size = np.array([0, 0, 50, 60], np.uint64)
    g.edge_start = np.array([0, 2, 3, 5, 6], np.int64)
    g.e_to = np.array([2, 3, 2, 3, 3, 0], np.int32)
    g.e_kind = np.array([PROPERTY, ELEMENT, ELEMENT, PROPERTY, HIDDEN, PROPERTY], np.uint8)
    g.e_name = np.array([0, 5, 7, -1, 0, 1], np.int32)
    g.key_refs = np.array([0x7F0000003000], np.uint64)
    g.names = ["a", "b"]
    g.buffers = {"node": np.array([3, 2, 2]), "bytes": np.array([100, 10, 20], np.uint64),
                 "kind": np.array([0, 1, 0], np.uint8), "data": np.zeros(3, np.uint64)}
    strings = StringTable()
    assert S._used_key_refs(g).tolist() == [0]
    names = S._EdgeNames(g, strings, S._used_key_refs(g), ["key"])
    native = S._Natives(g, strings)
    s = {t: strings.add(t) for t in ("a", "b", "key", "7", "backing_store") + KINDS}
    edges = np.concatenate(list(S._edge_rows(g, names, native))).tolist()
    assert edges == [[2, s["a"], 14], [1, 5, 21], [6, s["7"], 14], [2, s["key"], 21],
                     [4, 4, 21], [3, s["backing_store"], 35], [3, s["backing_store"], 42],
                     [2, s["b"], 0], [3, s["backing_store"], 28]]
    nodes = np.concatenate(list(S._node_rows(g, np.array([9, 9, 3, 3]),
                                             np.array([0, 0, 11, 12]), native))).tolist()
    ids = g.snapshot_ids().tolist()
    first = max(ids) + 2
    numpy_data, array_storage = s["numpy data"], s["array.array storage"]
    assert nodes == [[9, 0, ids[0], 0, 2, 0, 0], [9, 0, ids[1], 0, 1, 0, 0],
                     [3, 11, ids[2], 20, 4, 0, 0], [3, 12, ids[3], 0, 2, 0, 0],
                     [8, numpy_data, first, 100, 0, 0, 0],
                     [8, array_storage, first + 2, 10, 0, 0, 0],
                     [8, numpy_data, first + 4, 20, 0, 0, 0]]


@pytest.mark.parametrize("chunk", [1, 2, 3, 1 << 20])
def test_used_key_refs_are_those_of_named_edges_only(monkeypatch, chunk):
    """The dict keys a snapshot reads: those a property-like edge names (e_name -k-1 for
    key_refs[k]); element and hidden edges' names are numbers, whatever their sign; in
    chunks of every size."""
    import numpy as np
    from nsdebug.heap import graph
    from nsdebug.heap import snapshot as S
    from nsdebug.heap.referents import ELEMENT, HIDDEN, INTERNAL, PROPERTY
    monkeypatch.setattr(S, "CHUNK", chunk)
    g = graph.HeapGraph()
    g.key_refs = np.arange(6, dtype=np.uint64) + np.uint64(0x7F0000003000)
    g.e_kind = np.array([ELEMENT, PROPERTY, HIDDEN, INTERNAL, PROPERTY, ELEMENT, PROPERTY],
                        np.uint8)
    g.e_name = np.array([-1, 3, -2, -4, -6, -5, -4], np.int32)
    g.e_to = np.zeros(len(g.e_name), np.int32)
    assert S._used_key_refs(g).tolist() == [3, 5]
    g.e_kind, g.e_name, g.e_to = g.e_kind[:0], g.e_name[:0], g.e_to[:0]
    assert S._used_key_refs(g).tolist() == []


@pytest.mark.parametrize("compiled", [True, False])
def test_rows_are_written_as_the_numbers_python_prints(compiled, monkeypatch):
    """The rows' text: every number as Python's str gives it (the C formatter writes two
    digits at a time: each count of digits, both signs, both ends of int64), a row a
    line, and in the file's order with the text written before and after them, whether
    the file has a binary buffer under it (the rows go there) or not."""
    import io

    import numpy as np
    from nsdebug.heap import snapshot as S
    if not compiled:
        monkeypatch.setattr(S, "_graphc", None)
    assert S._graphc is not None or not compiled, "nsdebug.heap._graphc was not built"
    edge = [10 ** k + d for k in range(19) for d in (-1, 0, 1)] + [2 ** 63 - 1]
    values = np.array(edge + [-v for v in edge] + [-2 ** 63, 0, 7, 1], np.int64)
    blocks = [values[:30].reshape(-1, 3), values[30:].reshape(-1, 3)]
    rows = [values[k:k + 3].tolist() for k in range(0, len(values), 3)]
    want = "[" + ",\n".join(",".join(map(str, r)) for r in rows) + "]"
    binary = io.BytesIO()
    text = io.TextIOWrapper(binary, encoding="utf-8")
    plain = io.StringIO()
    for out in (text, plain):
        out.write("[")
        S._write_rows(out, iter(blocks), None, 0)
        out.write("]")
        out.flush()
    assert binary.getvalue().decode() == want
    assert plain.getvalue() == want
