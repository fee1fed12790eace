"""Leak hunting on a service that leaks one record per request through a listener list
and keeps a bounded cache beside it: diff of two captures 4000 requests apart, leak
suspects, and the waste of duplicate values and empty containers, on every build."""

import json

LISTENERS = "sys.modules['__main__'].BUS.listeners"


def diff_json(nsdebug, old, new, *extra):
    r = nsdebug("diff", old, new, "--json", *extra, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)


def test_diff_names_the_growing_list_not_the_cache(cores, build, nsdebug):
    old, new = cores.leak(build)
    assert (old.tool, new.tool) in (("gcore", "arthur-lz4"), ("arthur", "arthur-lz4"))
    grown = new.truth["records"] - old.truth["records"]
    assert grown == 4000
    doc = diff_json(nsdebug, old.core, new.core, "--top", "40")
    d = doc["diff"]
    types = {t["type"]: t for t in d["types"]}
    rec = types["__main__.AuditRecord"]
    assert (rec["count_before"], rec["count_after"]) == (old.truth["records"],
                                                         new.truth["records"])
    assert rec["count_change"] == grown
    assert types["function"]["count_change"] == grown
    # The cache churned (its entries replaced) but holds as many as before.
    assert "__main__.CacheEntry" not in types
    assert d["new_objects"] >= 3 * grown and d["gone_objects"] >= 500
    # Where they hang: the list, with indices folded; it is the biggest growth.
    first = d["locations"][0]
    assert first["path"] == LISTENERS + "[*]"
    by_type = {t: (c, s) for t, c, s in first["types"]}
    assert by_type["__main__.AuditRecord"][0] == grown
    assert by_type["function"][0] == grown
    # The bounded cache is not growing: what is new there is what is gone from there.
    for loc in d["locations"]:
        if "CACHE" in loc["path"]:
            assert loc["count"] < 0.01 * grown, loc
    # The shell's form, on the later core, says the same.
    r = nsdebug(new.core, "-c", f"diff {old.core} --top 40", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["diff"] == d
    # The text names the list and the record type.
    r = nsdebug("diff", old.core, new.core, timeout=300)
    assert f": {LISTENERS}[*]" in r.stdout and "+4,000 __main__.AuditRecord" in r.stdout


def test_diff_refuses_what_it_cannot_compare(cores, build, nsdebug, tmp_path):
    old, new = cores.leak(build)
    r = nsdebug("diff", old.core, old.core)
    assert r.returncode != 0 and "already open" in r.stderr
    missing = tmp_path / "nothing"
    r = nsdebug("diff", missing, new.core)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_suspects_put_the_listener_list_first(cores, build, nsdebug):
    _, new = cores.leak(build)
    r = nsdebug(new.core, "-c", "suspects", "--json", "-c", "objects --top 1", timeout=300)
    assert r.returncode == 0, r.stderr
    doc, objs = (json.loads(x) for x in r.stdout.splitlines())
    s = doc["suspects"][0]
    assert s["path"] == LISTENERS and s["type"] == "list"
    assert s["address"] == new.truth["listeners_id"]
    assert (s["children"], s["child_type"]) == (new.truth["listeners"], "function")
    assert s["each_keeps"] == "__main__.AuditRecord"
    # What it retains is what only the list keeps alive, as the process measured it.
    want = new.truth["listeners_retained"]
    assert abs(s["retained"] - want) <= 0.03 * want, (s["retained"], want)
    assert doc["total_size"] == objs["total_size"]
    assert abs(s["share"] - s["retained"] / doc["total_size"]) < 1e-9
    assert s["share"] > 0.2
    pct = round(100 * s["share"])
    assert s["summary"] == (f"{LISTENERS} (list) holds 6,000 function objects, each keeping "
                            f"an AuditRecord: {s['summary'].split(': ')[-1]}")
    assert s["summary"].endswith(f"{pct}% of the heap")
    r = nsdebug("report", new.core, timeout=300)
    assert r.returncode == 0, r.stderr
    section = r.stdout.split("=== leak suspects", 1)[1]
    assert section.lstrip().startswith(f"suspect 1: {s['summary']}")


def test_waste_finds_the_duplicates_and_empty_containers(cores, build, nsdebug):
    cap = cores.heap(build)
    r = nsdebug(cap.core, "-c", "waste --top 200", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    for kind, want in cap.truth["duplicates"].items():
        quote = "'" if kind == "str" else "b'"
        rows = [d for d in doc["duplicates"]
                if d["type"] == kind and d["preview"].startswith(quote + want["prefix"])]
        assert len(rows) == want["values"], kind
        for d in rows:
            assert (d["count"], d["size"]) == (want["copies"], want["size"]), d
        assert sum(d["wasted"] for d in rows) == want["wasted"], kind
    everything = sum(w["wasted"] for w in cap.truth["duplicates"].values())
    assert doc["duplicate_bytes"] >= everything
    dicts = next(s for s in doc["sparse"] if s["type"] == "dict")
    assert dicts["empty"] >= cap.truth["empty_dicts"]
    assert dicts["sparse"] >= cap.truth["sparse_dicts"]
    assert dicts["unused_bytes"] > 0 and dicts["empty_bytes"] > 0


def test_a_captures_waste_is_read_in_windows_and_equals_the_plain_cores(
        cores, build, nsdebug, tmp_path, monkeypatch):
    """`waste` (and so `suspects`) on a capture with its heap index reads the values and
    the containers' fill a window of the core at a time (corefile.windows), no copy of
    the whole core made, and finds what the same bytes give as a plain core. (This core
    is small enough to be copied whole instead, windows.WHOLE_UP_TO: the bound is set to
    0 here; the snapshot's test checks the copy.)"""
    import subprocess

    from nsdebug import api
    from nsdebug.corefile import windows
    from nsdebug.corefile.lz4source import LZ4Source
    monkeypatch.setattr(windows, "WHOLE_UP_TO", 0)
    lz, plain = tmp_path / "c.lz4", tmp_path / "c.core"
    with open(cores.leak(build)[1].core, "rb") as src, open(lz, "wb") as dst:
        dst.write(src.read())                   # a copy: the index made here is its own
    subprocess.run(["lz4", "-q", "-d", str(lz), str(plain)], check=True)
    made = []
    make = LZ4Source._make_copy
    monkeypatch.setattr(LZ4Source, "_make_copy",
                        lambda self, upto: made.append(upto) or make(self, upto))
    found = {}
    for core in (lz, plain):
        r = nsdebug(core, "-c", "objects")      # the index
        assert r.returncode == 0, r.stderr
        with api.open(str(core)) as c:
            found[core] = c.heap.waste(top=200)
    assert made == []
    assert found[lz].duplicates and found[lz].sparse
    assert repr(found[lz]) == repr(found[plain])      # records: every field, in order
