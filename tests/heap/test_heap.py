"""The heap model against what the target said about its own heap, on every version."""

import json

BUILTIN_TRACKED_MIN = 200     # types this common are compared with gc.get_objects()


def run_json(nsdebug, core, *cmds):
    args = []
    for c in cmds:
        args += ["-c", c]
    r = nsdebug(core, *args, "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


def test_counts_sizes_paths_refs(cores, build, nsdebug):
    cap = cores.heap(build)
    t = cap.truth
    named = t["named"]
    widget, shared = named["widget"]["id"], named["shared"]["id"]
    sizes_cmds = [f"inspect {v['id']:#x}" for v in named.values()]
    keyed_value = named["dict_keyed_value"]["id"]
    objs, path_w, refs_s, path_l, path_lb, refs_k, *inspected = run_json(
        nsdebug, cap.core, "objects --top 100000", f"path {widget:#x}", f"refs {shared:#x}",
        f"path {t['leaked_id']:#x}", f"path {t['leaked_bytes_id']:#x}",
        f"refs {keyed_value:#x}", *sizes_cmds)
    rows = {r["type"]: r for r in objs["rows"]}
    # User classes: exact.
    for cls, n in t["classes"].items():
        assert rows[cls]["count"] == n, cls
    # GC-tracked built-in types: within 1% of gc.get_objects().
    compared = 0
    for name, n in t["gc_counts"].items():
        if n < BUILTIN_TRACKED_MIN or name.startswith("__main__."):
            continue
        got = rows.get(name, {}).get("tracked", 0)
        assert abs(got - n) <= 0.01 * n, (name, got, n)
        compared += 1
    assert compared >= 4
    # A type's retained size is what its instances keep alive together: never more than
    # the heap, and nested dicts are not counted once per ancestor.
    for r in objs["rows"]:
        assert r["size"] <= r["retained"] <= objs["total_size"], r
    # Own sizes: exactly sys.getsizeof.
    for (key, v), doc in zip(named.items(), inspected):
        assert doc["size"] == v["size"], (key, doc["size"], v["size"])
        assert doc["type"] == v["type"], key
    # The path of an instance names the global that holds it.
    assert path_w["reachable"] and path_w["path"] == "sys.modules['__main__'].widgets[42]"
    # refs of a shared object lists all its holders.
    holders = {r["address"] for r in refs_s["referrers"]} | \
        {r["owner_address"] for r in refs_s["referrers"]}
    assert t["holders"]["holder_a"] in holders and t["holders"]["holder_b"] in holders
    assert t["holders"]["registry"] in holders
    # An entry whose key is a dict (a hashable dict subclass) is named by the key's
    # preview, a dict inside a dict (this once ended in an AttributeError).
    by_key = [r for r in refs_k["referrers"] if r["address"] == named["dict_keyed"]["id"]]
    assert by_key and by_key[0]["how"] == '["__main__.KeyDict({\'inner\': 1})"]', refs_k
    # Objects kept only by a leaked C reference are unreachable.
    assert not path_l["reachable"] and "unreachable __main__.Leaked" in path_l["path"]
    assert not path_lb["reachable"] and "unreachable bytes" in path_lb["path"]
    assert objs["unreachable_objects"] >= 2


def test_a_decimal_holds_no_reference_whatever_its_digits(cores, build, nsdebug):
    """A Decimal's struct holds numbers only (fields.NO_OBJECT_FIELDS): one whose digits
    are an object's address (its first limb is that number, as the target checked) is
    no referrer of that object, which its real holder still is; the Decimal itself is
    found with its own size."""
    cap = cores.heap(build)
    d = cap.truth["decimal_lookalike"]
    assert d["holds_address"]
    refs, shown = run_json(nsdebug, cap.core, f"refs {d['decoy']:#x}",
                           f"inspect {d['decimal']:#x}")
    holders = {r["address"] for r in refs["referrers"]} | \
        {r["owner_address"] for r in refs["referrers"]}
    assert d["decimal"] not in holders, refs
    assert holders, refs
    assert shown["type"] == d["type"] and shown["size"] == d["size"], shown


def test_a_datetime_holds_its_tzinfo_only_when_it_has_one(cores, build, nsdebug):
    """A naive datetime is allocated without the word of a tzinfo: what its block held
    there before (a freed list's item, as the target checked from inside) is no
    reference of it. An aware datetime and time hold their tzinfo, named so
    (fields.FLAGGED_FIELDS), in the walk and in the one object's view."""
    cap = cores.heap(build)
    d = cap.truth["datetime_tzinfo"]
    assert len(d["stale"]) > len(d["naive"]) // 2
    anchor, zone = run_json(nsdebug, cap.core, f"refs {d['anchor']:#x}",
                            f"refs {d['zone']:#x}")
    holders = {r["address"] for r in anchor["referrers"]} | \
        {r["owner_address"] for r in anchor["referrers"]}
    assert holders and not holders & set(d["stale"]), anchor
    named = {(r["address"], r["how"]) for r in zone["referrers"]}
    assert {(d["aware"], ".tzinfo"), (d["aware_time"], ".tzinfo")} <= named, zone
    from nsdebug import open as open_core        # (`nsdebug` here is the fixture)
    with open_core(cap.core) as c:              # one object's referents, read alone
        for addr in (d["aware"], d["aware_time"]):
            held = [(name, o.address) for name, o in c.object(addr).referents()]
            assert held == [("tzinfo", d["zone"])], held
        held = [(name, o.address) for name, o in c.object(d["stale"][0]).referents()]
        assert held == [], held

def test_text_commands(cores, build, nsdebug):
    cap = cores.heap(build)
    t = cap.truth
    table = t["named"]["table"]["id"]
    r = nsdebug(cap.core, "-c", "objects --top 5 --sort count", "-c", "instances Point -n 2",
                "-c", f"retained {table:#x}", "-c", "strings leaked-bytes",
                "-c", "largest -n 2", timeout=300)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "2,000 objects of type __main__.Point" in out
    assert "<__main__.Point at 0x" in out
    assert "retained" in out and "largest objects it keeps alive alone" in out
    assert "b'leaked-bytes-0123456789'" in out and "unreachable" in out
    assert "by retained size:" in out
    # table (5000 lists of 2 ints) retains far more than its own size.
    (doc,) = run_json(nsdebug, cap.core, f"retained {table:#x}")
    assert doc["retained"] > doc["size"] + 5000 * 72
