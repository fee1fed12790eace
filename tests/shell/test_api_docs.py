"""docs/api.md's examples, run in order on a real core of fixtures/heap_target.py; the
values they leave are checked against what the target recorded about itself."""

import os
import re
import sys

import targets

DOC = os.path.join(os.path.dirname(targets.FIXTURES), "docs", "api.md")


def examples():
    with open(DOC) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def test_api_examples_on_a_real_core(cores, tmp_path):
    cap = cores.heap(targets.default_build())
    truth = cap.truth
    widget = truth["named"]["widget"]
    ns = {"CORE": cap.core, "WIDGET_ADDRESS": widget["id"],
          "SNAPSHOT_PATH": str(tmp_path / "api.heapsnapshot")}
    blocks = examples()
    assert len(blocks) == 5
    for code in blocks:
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
    # The snapshot: written, private.
    assert ns["nodes"] > ns["total"] and ns["edges"] > ns["nodes"]
    assert os.stat(ns["SNAPSHOT_PATH"]).st_mode & 0o777 == 0o600
    assert "nsdebug" in sys.modules
