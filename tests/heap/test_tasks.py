"""asyncio post mortem on every build: tasks by name, state, await chain and what they
wait on; coroutine locals as the process saw them; inspect of a suspended coroutine."""

import json
import os

import pytest
import targets


@pytest.fixture
def asyncio_core(build, tmp_path):
    return targets.gcore_capture(build, "asyncio_target.py", str(tmp_path),
                                 tool=targets.live_capture_tool(build))


@pytest.fixture(params=["c", "pure"])
def any_task_core(build, tmp_path, request):
    """The C tasks (_asyncio), or asyncio's pure-Python Task (a class attribute holds a
    pending one's state; it awaits another task through Future.__await__)."""
    extra = ["--pure"] if request.param == "pure" else []
    return targets.gcore_capture(build, "asyncio_target.py", str(tmp_path), *extra,
                                 tool=targets.live_capture_tool(build))


def test_tasks_with_state_chain_and_locals(any_task_core, nsdebug):
    cap = any_task_core
    r = nsdebug(cap.core, "-c", "tasks --all --locals", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    by_name = {t["name"]: t for t in doc["tasks"]}
    assert len(doc["loops"]) == 1
    for name, want in cap.truth["tasks"].items():
        got = by_name[name]
        assert got["address"] == want["id"], name
        assert got["state"] == want["state"], name
        assert [(f["function"], f["file"], f["line"]) for f in got["chain"]] == \
            [(f["function"], f["file"], f["line"]) for f in want["chain"]], name
        for fg, fw in zip(got["chain"], want["chain"]):
            have = {row[0]: row for row in fg["locals"]}
            assert set(have) == set(fw["locals"]), (name, fg["function"])
            for var, v in fw["locals"].items():
                assert have[var][1] == v["id"] and have[var][2] == v["type"], (name, var)
    assert by_name["sleeper"]["waits_on"] == "a sleep"
    assert by_name["consumer"]["waits_on"] == "a queue get"
    assert by_name["waiter"]["waits_on"] == "task 'sleeper'"
    assert by_name["waiter"]["waits_on_address"] == cap.truth["tasks"]["sleeper"]["id"]
    assert by_name["finished"]["result"] == "42"
    # A gather's tasks, under the task that awaits the gather.
    assert by_name["gatherer"]["children"] == cap.truth["gathers"]["gatherer"]
    assert by_name["gatherer"]["waits_on"] == "a gather of 2"
    # Without --all, only the pending ones; the text names the chain, innermost last.
    r = nsdebug(cap.core, "-c", "tasks")
    assert "Task 'consumer' pending, waits on a queue get" in r.stdout
    assert "finished" not in r.stdout
    lines = r.stdout.splitlines()
    i = next(k for k, x in enumerate(lines) if x.startswith("Task 'consumer'"))
    assert lines[i + 1].strip().startswith("consumer (asyncio_target.py:")
    assert lines[i + 2].strip().startswith("Queue.get (queues.py:")
    g = next(k for k, x in enumerate(lines) if x.startswith("Task 'gatherer'"))
    assert lines[g].startswith("Task 'gatherer' pending, waits on a gather of 2")
    under = lines[g + 1:]
    at = under.index("  gathers:")
    kids = [x.strip() for x in under[at + 1:] if x.startswith("    Task ")]
    assert [k.split("'")[1] for k in kids[:2]] == ["gather-a", "gather-b"], under
    assert not any(x.startswith("Task 'gather-") for x in lines)   # not at top level


def test_task_retains_its_coroutine_and_inspect_shows_the_frame(asyncio_core, nsdebug):
    cap = asyncio_core
    task = cap.truth["tasks"]["consumer"]["id"]
    r = nsdebug(cap.core, "-c", f"retained {task:#x}", "--json", "-c", "tasks --json")
    assert r.returncode == 0, r.stderr
    ret, tasks = (json.loads(x) for x in r.stdout.splitlines())
    assert ret["retained"] > ret["size"] + 200          # the coroutine and its frame
    coro = next(t["coroutine"] for t in tasks["tasks"] if t["name"] == "consumer")
    r = nsdebug(cap.core, "-c", f"inspect {coro:#x}", "--json")
    doc = json.loads(r.stdout)
    fields = dict(doc["fields"])
    want = cap.truth["tasks"]["consumer"]["chain"][0]
    assert fields["frame"] == f"consumer ({want['file']}:{want['line']})"
    assert fields["consumer_local"] == "{'queue': 'jobs'}"
    assert "awaiting" in fields


def test_inspect_of_a_task_shows_its_coroutine_state_and_await(asyncio_core, nsdebug):
    cap = asyncio_core
    for name, waits in (("waiter", "task 'sleeper'"), ("gatherer", "a gather of 2")):
        task = cap.truth["tasks"][name]["id"]
        r = nsdebug(cap.core, "-c", f"inspect {task:#x}", "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)["task"]
        assert doc["name"] == name and doc["state"] == "pending"
        assert doc["waits_on"] == waits
        want = cap.truth["tasks"][name]["chain"]
        assert [(f["function"], f["line"]) for f in doc["chain"]] == \
            [(f["function"], f["line"]) for f in want]
        text = nsdebug(cap.core, "-c", f"inspect {task:#x}").stdout
        assert f"asyncio task '{name}': pending, waits on {waits}" in text
        assert f"  coroutine: {doc['coroutine']:#x}" in text
    gathered = cap.truth["gathers"]["gatherer"]
    assert doc["children"] == gathered


def test_report_lists_the_tasks(asyncio_core, nsdebug):
    r = nsdebug("report", asyncio_core.core, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "=== asyncio tasks" in r.stdout
    assert "Task 'waiter' pending, waits on task 'sleeper'" in r.stdout
    assert os.path.exists(asyncio_core.core)
