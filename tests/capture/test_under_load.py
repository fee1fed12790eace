"""A threaded HTTP server under a bounded load on loopback keeps serving through 100
captures in a row: no request fails, and none that overlaps a pause takes longer than
the pause, plus the worst latency of the requests that overlap no pause (the machine's
own stalls: two cores shared by the server, the clients and arthur's compression), plus
10 ms for what the fork costs the target after it is thawed (copy-on-write faults on
the pages it writes while the child still maps them), on all but two of the hundred
pauses (a stall of the machine may fall on one), and none over 250 ms."""

import json
import os
import re
import sys
import threading
import time
import urllib.request

import targets
from helpers import assert_untouched, run_arthur

CAPTURES = 100
SLACK_NS = 10_000_000
GROSS_NS = 250_000_000
MAY_STALL = 2             # pauses of the hundred a stall of the machine may fall on


def test_http_server_serves_through_a_hundred_captures(tmp_path, nsdebug):
    proc, truth_path = targets.start_target(sys.executable, "http_target.py", str(tmp_path))
    try:
        port = json.load(open(truth_path))["port"]
        stop = threading.Event()
        done, failed = [], []          # (start ns, end ns) of each good request
        lock = threading.Lock()

        def client(cid):
            n = 0
            deadline = time.time() + 300            # bounded, whatever happens
            while not stop.is_set() and time.time() < deadline:
                n += 1
                key = f"{cid}-{n}"
                t0 = time.monotonic_ns()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{key}",
                                                timeout=10) as resp:
                        body = resp.read().decode()
                    good = resp.status == 200 and body == f"ok {key}"
                except OSError as e:
                    good, body = False, repr(e)
                t1 = time.monotonic_ns()
                with lock:
                    (done if good else failed).append((t0, t1) if good else (key, body))
                time.sleep(0.002)                   # a bounded load, not a flood

        clients = [threading.Thread(target=client, args=(i,)) for i in range(2)]
        for c in clients:
            c.start()
        time.sleep(0.3)
        pauses = []                    # (seize ns, thawed ns, reported pause ms)
        log = tmp_path / "timeline"
        for i in range(CAPTURES):
            out = tmp_path / "c.lz4"
            r = run_arthur("capture", proc.pid, "-o", out, "--force",
                           env={"ARTHUR_TIMELINE": str(log)})
            assert r.returncode == 0, r.stderr
            marks = dict(line.split() for line in log.read_text().splitlines())
            log.unlink()
            pauses.append((int(marks["seize"]), int(marks["thawed"]),
                           float(re.search(r"for ([\d.]+) ms", r.stderr).group(1))))
        time.sleep(0.3)
        stop.set()
        for c in clients:
            c.join()
        assert failed == []
        assert len(done) > 200                      # it really served meanwhile
        # The control group: requests that overlap no pause. A stall of the machine itself
        # (two cores shared by the server, the clients and arthur's compression) shows
        # there as well; a pause may add its own length to a request, and the fork's
        # copy-on-write faults up to SLACK_NS after it (a CI run saw 16.4 ms across a
        # 3.8 ms pause with 11.0 ms of noise), and no more.
        def overlaps(t0, t1):
            return any(t0 < thawed and t1 > seize for seize, thawed, _ms in pauses)
        control = [t1 - t0 for t0, t1 in done if not overlaps(t0, t1)]
        noise = max(control) if control else 0
        worst, over = [], []
        for k, (seize, thawed, _ms) in enumerate(pauses):
            hit = [t1 - t0 for t0, t1 in done if t0 < thawed and t1 > seize]
            if hit:
                if max(hit) > thawed - seize + SLACK_NS + noise:
                    over.append(f"capture {k}: a request took {max(hit) / 1e6:.1f} ms "
                                f"across a pause of {(thawed - seize) / 1e6:.1f} ms")
                # Whatever the machine does, no request is held a quarter of a second.
                assert max(hit) < GROSS_NS, over[-1]
                worst.append(max(hit) / 1e6)
        assert worst, "no request overlapped a pause"
        # One stall of the machine itself may fall on one pause of a hundred (CI saw a
        # 64 ms request across a 6.9 ms pause, against 12 ms of noise, in 2 of 6 runs,
        # each time on one capture only); a capture that harms its target does it on
        # every pause, and fails here.
        assert len(over) <= MAY_STALL, (
            f"{len(over)} of {len(worst)} pauses held requests longer than the pause, "
            f"{SLACK_NS / 1e6:.0f} ms and the {noise / 1e6:.1f} ms requests overlapping "
            f"no pause took: " + "; ".join(over))
        assert_untouched(proc.pid)
        r = nsdebug(out, "-c", "bt --all")
        assert r.returncode == 0 and "serve_forever" in r.stdout
        lat = sorted((t1 - t0) / 1e6 for t0, t1 in done)
        print(f"{len(done)} requests, median {lat[len(lat) // 2]:.2f} ms, worst "
              f"{lat[-1]:.2f} ms; {len(worst)} overlapped a pause, worst of those "
              f"{max(worst):.2f} ms; pauses {min(p[2] for p in pauses):.1f}-"
              f"{max(p[2] for p in pauses):.1f} ms")
        os.unlink(out)
    finally:
        targets.stop(proc)
