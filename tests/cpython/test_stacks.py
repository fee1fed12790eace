"""bt --all --locals against the truth the target recorded about itself, on every version."""

import json

import pytest
import targets
from conftest import build_params

# Kinds whose nsdebug preview is exactly Python's repr (at the default bounds).
REPR_TYPES = {"int", "bool", "float", "complex", "str", "bytes", "bytearray", "NoneType",
              "range", "list", "tuple", "dict", "set", "frozenset", "slice", "ValueError",
              "builtin_function_or_method"}


def bt_json(nsdebug, core, *extra):
    r = nsdebug(core, *extra, "--max-string", 100000, "--max-items", 100000, "--max-depth", 50,
                "-c", "bt --all --locals", "--json")
    assert r.returncode == 0, r.stderr
    assert "Traceback (most recent call last)" not in r.stderr
    return json.loads(r.stdout)


def compare_stacks(result, truth, skip_idents=(), names=True, values=True):
    by_tid = {t["tid"]: t for t in result["threads"]}
    checked = 0
    for tt in truth["threads"]:
        if tt["ident"] in skip_idents:
            continue
        got = by_tid.get(tt["native_id"])
        assert got is not None, f"thread {tt['native_id']} missing; have {sorted(by_tid)}"
        assert got["thread_id"] == tt["ident"]
        if names:
            assert got["name"] == tt["name"]
        want_frames = tt["frames"]
        have = got["frames"]
        assert [(f["function"], f["file"], f["line"]) for f in have] == \
            [(f["function"], f["file"], f["line"]) for f in want_frames], tt["name"]
        for fw, fh in zip(want_frames, have):
            if not values and fw["function"] == "<module>":
                continue        # a module body's locals are a dict: they need a table
            have_locals = {loc["name"]: loc for loc in fh["locals"]}
            assert set(have_locals) == set(fw["locals"]), (fw["function"], fw["locals"].keys())
            for name, want in fw["locals"].items():
                h = have_locals[name]
                if not values and h["kind"] in ("cell", "free") and h["type"] == "cell":
                    continue        # the cell itself: its contents need a layout table
                assert h["address"] == want["id"], (fw["function"], name)
                if values:
                    assert h["type"] == want["type"], (fw["function"], name)
                else:       # a class's module is in its __dict__: needs a layout table
                    assert h["type"] == want["type"].rsplit(".", 1)[-1], (fw["function"], name)
                if values and want["type"] in REPR_TYPES and "<" not in want["repr"]:
                    assert h["value"] == want["repr"], (fw["function"], name)
                checked += 1
    return checked


def test_bt_matches_truth_on_gcore(cores, build, nsdebug):
    cap = cores.stacks(build)
    result = bt_json(nsdebug, cap.core)
    assert result["python"].startswith(build.version + ".")
    assert compare_stacks(result, cap.truth) > 40
    assert len(result["threads"]) == 4
    # Known locals of the main thread, checked by value.
    main = next(t for t in result["threads"] if t["thread_id"] == cap.truth["main_ident"])
    leaf = main["frames"][-1]
    assert leaf["function"] == "main_leaf"
    values = {loc["name"]: loc["value"] for loc in leaf["locals"]}
    assert values["ucs4_text"] == repr("snake \U0001F40D!")
    assert values["ucs2_text"] == repr("\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440")
    assert values["big_int"] == str(2 ** 100 + 12345)
    assert values["mapping"] == "{'a': 1, 'b': [1, 2], 3: 'c'}"
    assert values["error"] == "ValueError('bad record', 42)"
    assert values["func"].startswith("<function main_middle at 0x")
    assert values["bound"].startswith("<bound method ParkedJob.run of <__main__.ParkedJob at")
    assert values["klass"] == "<class '__main__.ParkedJob'>"
    assert values["module"] == "<module 'sys'>"
    assert values["code"].startswith("<code object main_leaf at 0x")
    assert values["job"].startswith("<__main__.ParkedJob at 0x")
    # Cell and free variables: cells in main_middle, free in its closure leaf_caller.
    kinds = {(f["function"], loc["name"]): loc["kind"] for f in main["frames"]
             for loc in f["locals"]}
    assert kinds[("main_middle", "n")] == "cell" or kinds[("main_middle", "n")] == "arg"
    assert kinds[("main_middle", "cache")] == "cell"
    caller = next(f for f in main["frames"] if f["function"].endswith("leaf_caller"))
    assert {loc["name"]: loc["kind"] for loc in caller["locals"]} == {"n": "free",
                                                                     "cache": "free"}
    # The coroutine-driven worker passes through a generator-owned frame (3.11+ marks it).
    co = next(t for t in result["threads"] if t["name"] == "worker-co")
    owners = {f["function"]: f["owner"] for f in co["frames"]}
    if build.key >= (3, 11):
        assert owners["co_leaf"] == "generator"


def test_bt_matches_truth_on_kernel_crash_core(cores, build, nsdebug):
    cap = cores.crash(build)
    result = bt_json(nsdebug, cap.core)
    assert compare_stacks(result, cap.truth) > 40
    crashed = [t for t in result["threads"] if t["crashed"]]
    assert len(crashed) == 1
    assert crashed[0]["thread_id"] == cap.truth["recorder_ident"]
    assert crashed[0]["frames"][-1]["function"] == "parse_record"
    # A stripped build names the C caller with its debug file (the -dbg package).
    debug = ["--debug-dir", build.debug_dir] if build.debug_dir else []
    r = nsdebug(cap.core, *debug, "-c", "info")
    line = next(x for x in r.stdout.splitlines() if x.startswith("crash:"))
    want_line = cap.truth["threads"][[t["ident"] for t in cap.truth["threads"]].index(
        cap.truth["recorder_ident"])]["frames"][-1]["line"]
    assert line.startswith("crash:       SIGSEGV at 0x8 in PyBytes_FromStringAndSize (")
    assert "), called from " in line
    assert f" in thread {crashed[0]['tid']}; Python: parse_record " \
           f"(stacks_target.py:{want_line})" in line


def test_thread_names_and_gil(cores, build, nsdebug):
    cap = cores.stacks(build)
    result = bt_json(nsdebug, cap.core)
    names = sorted(t["name"] for t in result["threads"])
    assert names == ["MainThread", "worker-3", "worker-5", "worker-co"]
    # Every thread is blocked in a call that released the GIL.
    assert not any(t["holds_gil"] for t in result["threads"])


def test_select_and_print(cores, build, nsdebug):
    cap = cores.stacks(build)
    main_tid = next(t["native_id"] for t in cap.truth["threads"]
                    if t["ident"] == cap.truth["main_ident"])
    r = nsdebug(cap.core, "-c", f"thread {main_tid}", "-c", "frame 2", "-c", "print cache",
                "-c", "up", "-c", "down", "-c", "locals", "-c", "list", "-c", "print n",
                "-c", "print PARKED", "-c", "print len", "--json")
    assert r.returncode == 0, r.stderr
    docs = [json.loads(x) for x in r.stdout.splitlines()]
    assert docs[1]["frame"]["function"] == "main_middle"
    assert docs[2]["value"] == "{'k': [21, 21, 21]}"
    assert docs[3]["frame"]["function"] == "frames_gen"
    assert docs[4]["frame"]["function"] == "main_middle"
    assert {loc["name"] for loc in docs[5]["locals"]} == {"n", "cache", "leaf_caller"}
    listing = docs[6]
    assert listing["lines"][listing["line"] - listing["first"]].strip() == \
        "return leaf_caller()"
    assert docs[7]["value"] == "21"
    assert docs[8]["value"] == "[1]" and "global" in docs[8]["where"]
    assert docs[9]["value"] == "<built-in function len>" and docs[9]["where"] == "builtin"
    # inspect by address shows items and the size sys.getsizeof reports for a small dict.
    addr = docs[2]["address"]
    r = nsdebug(cap.core, "-c", f"inspect {addr:#x}", "--json")
    doc = json.loads(r.stdout)
    assert doc["type"] == "dict" and doc["fields"] == [["'k'", "[21, 21, 21]"]]


@pytest.mark.parametrize("build", build_params("debian"), indirect=True)
def test_gcore_of_guarded_thread_stacks_shows_the_break(build, tmp_path, nsdebug):
    """gdb 13's gcore zero-fills parts of thread stacks guarded by MADV_GUARD_INSTALL
    (the glibc of Debian's builds). Whatever it keeps, nsdebug shows right, and marks
    where the frame chain breaks: a frame is the truth's or an <invalid> one, never a
    wrong one."""
    cap = targets.gcore_capture(build, "stacks_target.py", str(tmp_path), threads=4)
    r = nsdebug(cap.core, "-c", "bt --all", "--json")
    assert r.returncode == 0, r.stderr
    by_tid = {t["tid"]: t for t in json.loads(r.stdout)["threads"]}
    for tt in cap.truth["threads"]:
        want = [(f["function"], f["file"], f["line"]) for f in tt["frames"]]
        have = by_tid[tt["native_id"]]["frames"]
        good = [(f["function"], f["file"], f["line"]) for f in have if not f["error"]]
        assert good == want[len(want) - len(good):], tt["name"]      # the newest frames
        broken = [f for f in have if f["error"]]
        assert len(broken) <= 1 and (not broken or have[0] is broken[0])
