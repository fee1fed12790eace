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


def test_a_captures_snapshot_reads_its_core_in_windows_and_equals_the_plain_cores(
        cores, build, nsdebug, tmp_path, monkeypatch):
    """With the heap index made, a capture's snapshot still needs some of the core's
    bytes (str values, qualified names, keys): it reads them a window at a time
    (corefile.windows), no copy of the whole core made, and the file is byte for byte
    the one the same bytes give as a plain core, redacted or not."""
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
    for redact in (False, True):
        out = {}
        for core in (lz, plain):
            out[core] = tmp_path / f"{core.name}-{redact}.heapsnapshot"
            with api.open(str(core)) as c:
                assert c.target.has("heap") is False
                c.snapshot(str(out[core]), redact=redact)
                assert c.target.has("heap")
        assert out[lz].read_bytes() == out[plain].read_bytes()
    assert made == [] and len(windowed) > 2 * 6, len(windowed)
