"""A healthy core shows no damage: on every build, every frame of every thread of cores
made by gcore and by arthur (main thread, `threading` threads, asyncio, a thread in a
Python callback that C code called) is either a Python frame with its code or left out
as what it is (the thread base frame of the newer releases, C entry shims); never an
`<invalid frame ...>`."""

import json


def _stacks(nsdebug, core, *extra):
    r = nsdebug(core, "-c", " ".join(("bt --all",) + extra), "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout)["threads"]


def _cores(cores, build):
    old, new = cores.leak(build)         # new: an arthur .lz4 capture on every build
    return {"stacks": cores.stacks(build), "asyncio": cores.asyncio(build),
            "callback": cores.native_parked(build), "arthur": new}


def test_no_invalid_frame_in_a_healthy_core(cores, build, nsdebug):
    for name, cap in _cores(cores, build).items():
        for extra in ((), ("--native",)):
            threads = _stacks(nsdebug, cap.core, *extra)
            assert threads, f"{name}: no thread"
            for t in threads:
                python = [f for f in t["frames"] if f.get("kind", "python") == "python"]
                bad = [f for f in python if f.get("error") or not f.get("function")]
                assert not bad, f"{name} {extra}: thread {t['name']}: {bad}"
            r = nsdebug(cap.core, "-c", " ".join(("bt --all",) + extra))
            assert "invalid frame" not in r.stdout, f"{name} {extra}:\n{r.stdout}"
