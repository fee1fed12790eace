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
    for name, want in truth["imports"].items():
        lock = by_name[name]["waits_for"]
        assert by_name[name]["phrase"] == (f"waiting for the import lock {lock:#x} of "
                                           f"module {want['module']!r} held by thread "
                                           f"{want['held_by']!r}"), name
    assert "Condition._lock" in by_name["cond-waiter"]["phrase"]
    assert "held by thread 'cond-holder'" in by_name["cond-waiter"]["phrase"]
    for name, (call, obj) in truth["waits_in"].items():
        assert by_name[name]["phrase"].startswith(f"waiting in {call} on "), name
        assert by_name[name]["phrase"].endswith(f" {obj:#x}"), name
    text = nsdebug(cap.core, "-c", "locks").stdout
    assert text.count("deadlock: ") == 2
    assert "thread 'holds-A' holds Lock at" in text


def test_threads_and_bt_say_what_each_thread_waits_for(cores, build, nsdebug):
    # The same phrases in `threads` and `bt --all`, with no native unwind; one spinner
    # holds the GIL and the other waits for it, told by the futex it sleeps on.
    cap = cores.locks(build)
    truth = cap.truth
    got = _locks(nsdebug, cap.core)
    by_tid = {t["tid"]: t for t in got["threads"]}
    r = nsdebug(cap.core, "-c", "threads", "-c", "bt --all", "--json")
    assert r.returncode == 0, r.stderr
    threads, bt = (json.loads(line) for line in r.stdout.splitlines())
    state = {t["tid"]: t["state"] or "" for t in threads["threads"]}
    bt_state = {t["tid"]: t["state"] or "" for t in bt["threads"]}
    for name, want in truth["threads"].items():
        tid = want["native_id"]
        if tid is None:
            continue
        lock, phrase = by_tid[tid]["waits_for"], by_tid[tid]["phrase"] or ""
        assert bt_state[tid] == state[tid], name
        if phrase.startswith("waiting for "):
            # Named as the frames hold it (`locks` looks deeper for a name to give it).
            assert state[tid].startswith(f"waiting for ") and f" {lock:#x}" in state[tid]
            assert phrase.partition(" held by ")[2] == \
                state[tid].partition(" held by ")[2].partition(";")[0], name
        elif phrase:
            assert state[tid].startswith(phrase + "; in system call futex"), name
        if name in ("holds-A", "holds-B", "ring-0"):
            assert " held by thread '" in state[tid], (name, state[tid])
    spinners = [state[truth["threads"][n]["native_id"]] for n in truth["spinners"]]
    assert any(s.startswith("waiting for the GIL") for s in spinners), spinners
    for name, want in truth["threads"].items():
        if name not in truth["spinners"] and want["native_id"]:
            assert "waiting for the GIL" not in state[want["native_id"]], name


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


def test_the_value_stack_of_a_frame(cores, build, nsdebug):
    # holds-A waits in `with B:` inside `with A:`: both locks (and, up to 3.13, their
    # bound __exit__) are on its frame's value stack; 3.14+ records the stack pointer,
    # so they show as live there.
    cap = cores.locks(build)
    truth = cap.truth
    want = {int(a) for a, kind in truth["locks"].items()
            if int(a) in truth["threads"]["holds-A"]["holds"] or
            int(a) == truth["threads"]["holds-A"]["waits_for"]}
    tid = truth["threads"]["holds-A"]["native_id"]
    r = nsdebug(cap.core, "-c", f"thread {tid}", "-c", "locals --stack", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.splitlines()[-1])
    assert result["frame"]["function"].endswith("holds_a")
    on_stack = {}
    for row in result["stack"]:
        on_stack.setdefault(row["address"], row["kind"])
        if "__exit__ of _thread." in row["value"]:          # a with's bound __exit__
            at = int(row["value"].rsplit(" at ", 1)[1].rstrip(">"), 16)
            on_stack.setdefault(at, row["kind"])
    assert want <= set(on_stack), (want, result["stack"])
    if tuple(truth["version"][:2]) >= (3, 14):
        assert all(on_stack[a] == "stack" for a in want)
    else:
        assert all(on_stack[a] == "stack (top unknown)" for a in want)
    text = nsdebug(cap.core, "-c", f"thread {tid}", "-c", "frame 0").stdout
    assert "value stack (bottom first):" in text


def test_report_leads_with_the_deadlock(cores, build, nsdebug):
    cap = cores.locks(build)
    r = nsdebug("report", cap.core, "--no-heap")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "=== deadlock"
    assert sum(x.startswith("deadlock: ") for x in lines[1:3]) == 2
    assert "=== locks" in lines
    rep = json.loads(nsdebug("report", cap.core, "--no-heap", "--json").stdout)
    assert len(rep["locks"]["deadlocks"]) == 2
    calm = nsdebug("report", cores.stacks(build).core, "--no-heap")
    assert calm.returncode == 0 and not calm.stdout.startswith("=== deadlock")
