"""`locks` on every build against the truth fixtures/locks_target.py records from inside:
the lock each thread waits for, the locks it holds (RLock owners and counts, plain Locks
by their open `with`), the two deadlocks (Lock + RLock, a cycle of three) and no false
cycle (the Condition waiter, the queue consumer and the joiner wait without a cycle; a
core where threads wait on a lock nobody holds shows none)."""

import json

import targets


def _locks(nsdebug, core):
    r = nsdebug(core, "-c", "locks", "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout)


def test_locks_match_the_truth(cores, build, nsdebug):
    cap = cores.locks(build)
    truth = cap.truth
    got = _locks(nsdebug, cap.core)
    by_name = {t["name"]: t for t in got["threads"]}
    for name, want in truth["threads"].items():
        if want["waits_for"]:
            assert by_name[name]["waits_for"] == want["waits_for"], name
        assert sorted(by_name[name]["holds"]) == sorted(want["holds"]), name
    locks = {lock["address"]: lock for lock in got["locks"]}
    for addr, count in truth["rlock_counts"].items():
        assert locks[int(addr)]["count"] == count
        assert locks[int(addr)]["how_known"] == "RLock owner"
    tid_name = {t["tid"]: t["name"] for t in got["threads"]}
    cycles = sorted(sorted(tid_name[tid] for tid in d["threads"]) for d in got["deadlocks"])
    assert cycles == sorted(truth["cycles"])
    assert by_name["joiner"]["phrase"] == "joining thread 'hung'"
    assert "Condition._lock" in by_name["cond-waiter"]["phrase"]
    assert "held by thread 'cond-holder'" in by_name["cond-waiter"]["phrase"]
    assert "holder unknown" in by_name["consumer"]["phrase"]
    text = nsdebug(cap.core, "-c", "locks").stdout
    assert text.count("deadlock: ") == 2
    assert "thread 'holds-A' holds Lock at" in text


def test_no_false_cycle(cores, build, nsdebug):
    # Three workers blocked on one lock the main thread took without a `with`.
    got = _locks(nsdebug, cores.stacks(build).core)
    assert got["deadlocks"] == []
    waiting = [t for t in got["threads"] if t["waits_for"]]
    assert len(waiting) == 3 and len({t["waits_for"] for t in waiting}) == 1


def test_locks_without_python_is_one_clear_line(cores, nsdebug):
    r = nsdebug(cores.native().core, "-c", "locks")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "is this a core of a Python process?" in lines[0], lines


def test_damaged_locks_give_no_wrong_cycle(cores, nsdebug, tmp_path):
    # Every lock's body overwritten with garbage: no lock can be matched to a waiter,
    # so no deadlock may be claimed, and no traceback.
    from corepatch import patch_core
    cap = cores.locks(targets.default_build())
    bad = str(tmp_path / "core-bad-locks")
    patch_core(cap.core, bad, {int(a) + 16: b"\xa5" * 24 for a in cap.truth["locks"]})
    r = nsdebug(bad, "-c", "locks", "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    doc = json.loads(r.stdout)
    assert doc["deadlocks"] == []
    assert not any(t["waits_for"] in map(int, cap.truth["locks"]) for t in doc["threads"])
