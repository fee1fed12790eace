"""docs/api.md's examples, run in order on a real core of fixtures/heap_target.py; the
values they leave are checked against what the target recorded about itself."""

import os
import re
import sys

import pytest
import targets

from nsdebug.errors import NsdebugError

DOC = os.path.join(os.path.dirname(targets.FIXTURES), "docs", "api.md")


def examples():
    with open(DOC) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def test_api_examples_on_a_real_core(cores, tmp_path):
    build = targets.default_build()
    cap = cores.heap(build)
    old, new = cores.leak(build)
    tasks_cap = cores.asyncio(build)
    locks_cap = cores.locks(build)
    truth = cap.truth
    widget = truth["named"]["widget"]
    ns = {"CORE": cap.core, "WIDGET_ADDRESS": widget["id"], "OLD_CORE": old.core,
          "NEW_CORE": new.core, "TASKS_CORE": tasks_cap.core,
          "LOCKS_CORE": locks_cap.core,
          "SNAPSHOT_PATH": str(tmp_path / "api.heapsnapshot")}
    blocks = examples()
    assert len(blocks) == 11
    # Every block in order; what they leave is checked before the last one, which
    # writes the snapshot and closes the core.
    for code in blocks[:-1]:
        exec(compile(code, DOC, "exec"), ns)
    # The interpreter and the process.
    assert ns["version"].startswith(cap.build.version) and ns["pid"] == cap.pid
    # The main thread's innermost frame is the fixture's park().
    assert ns["where"][0] == "park" and ns["where"][1].endswith("heap_target.py")
    assert "state" in ns["local_names"] and ns["state"] == "'heap ready'"
    # The object, as the target saw it.
    assert ns["kind"] == widget["type"] and ns["size"] == widget["size"]
    assert ns["name"] == "'widget-42'" and {"name", "value", "tags"} <= set(ns["fields"])
    # The heap: the class's count, the path of the named widget.
    assert len(ns["widgets"]) == truth["classes"]["__main__.Widget"]
    assert ns["first_path"] == "sys.modules['__main__'].widgets[42]"
    assert ns["kept"] >= ns["size"] and ns["total"] > len(ns["widgets"])
    sizes = [r.size for r in ns["top"]]
    assert len(ns["top"]) == 5 and sizes == sorted(sizes, reverse=True)
    counts = {r.type: r.count for r in ns["by_count"]}
    assert counts["__main__.Widget"] == truth["classes"]["__main__.Widget"]
    # What the process was: a gcore of a live process, no crash.
    assert ns["made_by"].startswith("gdb") and ns["crash"] is None
    assert ns["info"].pid == cap.pid
    # A global, found as the frame's code would find it.
    assert ns["widgets_global"].address == truth["named"]["widgets"]["id"]
    # The C frames merged in: the main thread sleeps in a system call, under the eval
    # loop's frames shown as the Python ones.
    assert "in system call" in ns["doing"] and ns["c_functions"]
    assert any(not isinstance(r, ns["NativeRow"]) and r.function == "park"
               for r in ns["rows"])
    assert len(ns["threads"].threads) == len(ns["bt"].threads)
    assert ns["whole"].type == widget["type"] and ns["whole"].size == widget["size"]
    # Who holds the widget, and what it keeps.
    assert [r.how for r in ns["holders"]] == ["[42]"]
    assert sum(o.size for o in ns["kept_objects"]) <= ns["kept"]
    assert len(ns["by_size"]) == 3 and ns["by_retained"][0].type
    assert ns["texts"] and all("widget-4" in t.preview() for t in ns["texts"])
    assert ns["table"].sort == "retained" and len(ns["table"].rows) == 10
    # Suspects and waste.
    assert ns["first"].retained > 0 and ns["first"].path
    dup = {d.type for d in ns["waste"].duplicates}
    assert dup <= {"str", "bytes"} and ns["waste"].duplicate_bytes >= 0
    # The leak: the records grew by what the service served between the captures.
    grown = new.truth["records"] - old.truth["records"]
    assert ns["growth"]["__main__.AuditRecord"] == grown
    assert ns["where_new"] == "sys.modules['__main__'].BUS.listeners[*]"
    # Triage of the two captures: no crash; the records grow, held at the listeners.
    assert ns["crash_groups"] == [] and ns["leak_type"] == "__main__.AuditRecord"
    assert ns["leak_path"] == "sys.modules['__main__'].BUS.listeners"
    # The asyncio tasks, as the target saw them.
    want = tasks_cap.truth["tasks"]
    assert ns["task_states"] == {k: v["state"] for k, v in want.items()} | \
        {k: v for k, v in ns["task_states"].items() if k not in want}
    assert ns["awaits"]["consumer"] == "a queue get"
    # The locks, as the target saw them: two deadlocks, each thread's lock.
    assert len(ns["deadlocks"]) == 2 and all(d.startswith("deadlock: ") for d in ns["deadlocks"])
    for name, want in locks_cap.truth["threads"].items():
        if want["waits_for"]:
            assert ns["waiting"][name] == want["waits_for"], name
    exec(compile(blocks[-1], DOC, "exec"), ns)
    # A closed core says so, as one of our errors.
    with pytest.raises(NsdebugError, match="was closed"):
        ns["widgets"][0].type
    # The snapshot: written, private.
    assert ns["nodes"] > ns["total"] and ns["edges"] > ns["nodes"]
    assert os.stat(ns["SNAPSHOT_PATH"]).st_mode & 0o777 == 0o600
    assert "nsdebug" in sys.modules
