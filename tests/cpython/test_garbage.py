"""Garbage in the interpreter's memory: the stack is still printed, the bad part marked."""

import json
import struct
import time

from corepatch import patch_core

from nsdebug.corefile import open_core
from nsdebug.cpython import attach


def test_loops_bad_code_and_absurd_strings(cores, build, nsdebug, tmp_path):
    cap = cores.stacks(build)
    p = open_core(cap.core)
    rt = attach(p)
    L = rt.layout
    by_name = {t.name: t for t in rt.threads}
    py311 = rt.version.key >= (3, 11)
    back_off = L.iframe.previous if py311 else L.frameobject.f_back
    code_off = L.iframe.code if py311 else L.frameobject.f_code
    # worker-3: its third frame points back to its first: a loop.
    w3 = rt.frames(by_name["worker-3"])
    # worker-5: the code object of its second frame is in unmapped memory.
    w5 = rt.frames(by_name["worker-5"])
    # main: a str local claims 2**50 characters.
    main = rt.frames(by_name["MainThread"])
    text = next(loc for loc in rt.frame_walker.locals_of(main[0]) if loc.name == "ascii_text")
    patches = {
        w3[2].address + back_off: struct.pack("<Q", w3[0].address),
        w5[1].address + code_off: struct.pack("<Q", 0x10),
        text.address + L.ascii.length: struct.pack("<q", 1 << 50),
    }
    bad = str(tmp_path / "garbage.core")
    patch_core(cap.core, bad, patches)

    start = time.monotonic()
    r = nsdebug(bad, "-c", "bt --all --locals", "--json", timeout=60)
    elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert elapsed < 10
    res = json.loads(r.stdout)
    threads = {t["name"]: t for t in res["threads"]}

    w3_frames = threads["worker-3"]["frames"]
    assert any("loops back" in (f["error"] or "") for f in w3_frames)
    assert [f["function"] for f in w3_frames if not f["error"]][-3:] == ["recurse"] * 3

    w5_frames = threads["worker-5"]["frames"]
    bad_frames = [f for f in w5_frames if f["error"]]
    assert len(bad_frames) == 1 and "0x10" in bad_frames[0]["error"]
    # The walk went on past the bad frame to the thread's first frames.
    assert w5_frames[0]["function"].endswith("_bootstrap")

    leaf = threads["MainThread"]["frames"][-1]
    values = {loc["name"]: loc["value"] for loc in leaf["locals"]}
    assert values["ascii_text"].startswith("<invalid ")
    assert values["small_int"] == "42"

    text_out = nsdebug(bad, "-c", "bt --all --locals").stdout
    assert "<invalid frame" in text_out and "loops back" in text_out
