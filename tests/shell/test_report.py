"""nsdebug report on a kernel crash core: the crash, the stacks, the heap, secrets hidden."""

import json
import os

import targets


def test_report_json_on_a_crash_core(cores, build, nsdebug):
    cap = cores.crash(build)
    r = nsdebug("report", cap.core, "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    assert "tok-5ecret-value" not in r.stdout
    rep = json.loads(r.stdout)
    recorder = next(t for t in cap.truth["threads"] if t["ident"] == cap.truth["recorder_ident"])
    line = recorder["frames"][-1]["line"]
    assert f"Python: parse_record (stacks_target.py:{line})" in rep["crash"]["summary"]
    assert rep["crash"]["instructions"]["instructions"], "faulting instruction disassembled"
    # The crashed thread's C and Python stack: the faulting C function innermost.
    stack = rep["crash"]["stack"]["threads"][0]
    assert stack["crashed"] and stack["native"][-1]["function"] == "PyBytes_FromStringAndSize"
    assert "parse_record" in [r["function"] for r in stack["native"]]
    env = {e["name"]: e["value"] for e in rep["environment"]}
    assert env["NSDEBUG_FIXTURE_API_TOKEN"] == "<redacted>"
    assert env["NSDEBUG_FIXTURE_COLOR"] == "blue"
    crashed = [t for t in rep["threads"]["threads"] if t["crashed"]]
    assert crashed and crashed[0]["frames"][-1]["function"] == "parse_record"
    assert rep["heap"]["count"]["rows"] and rep["heap"]["retained"]["rows"]
    assert len(rep["gc"]["generations"]) == 3
    assert any(m["name"] == "threading" for m in rep["modules"])
    assert any(os.path.basename(lib["path"]).startswith(("libpython", "python3"))
               for lib in rep["libraries"])
    assert not rep["errors"]


def test_report_text(cores, nsdebug):
    cap = cores.crash(targets.default_build())
    r = nsdebug("report", cap.core, "--no-heap", timeout=600)
    assert r.returncode == 0, r.stderr
    for section in ("=== process", "=== crash", "=== threads", "=== gc",
                    "=== python modules", "=== shared libraries", "=== environment"):
        assert section in r.stdout
    assert "NSDEBUG_FIXTURE_API_TOKEN=<redacted>" in r.stdout
    assert "tok-5ecret-value" not in r.stdout
