"""A threaded HTTP server under steady load keeps serving through 10 captures in a row."""

import json
import re
import sys
import threading
import time
import urllib.request

import targets
from helpers import assert_untouched, run_arthur


def test_http_server_serves_through_ten_captures(tmp_path, nsdebug):
    proc, truth_path = targets.start_target(sys.executable, "http_target.py", str(tmp_path))
    try:
        port = json.load(open(truth_path))["port"]
        stop = threading.Event()
        results = {"ok": 0, "failed": []}
        lock = threading.Lock()

        def client(cid):
            n = 0
            deadline = time.time() + 120            # bounded, whatever happens
            while not stop.is_set() and time.time() < deadline:
                n += 1
                key = f"{cid}-{n}"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{key}",
                                                timeout=10) as resp:
                        body = resp.read().decode()
                    good = resp.status == 200 and body == f"ok {key}"
                except OSError as e:
                    good, body = False, repr(e)
                with lock:
                    if good:
                        results["ok"] += 1
                    else:
                        results["failed"].append((key, body))

        clients = [threading.Thread(target=client, args=(i,)) for i in range(3)]
        for c in clients:
            c.start()
        time.sleep(0.5)
        pauses = []
        before = results["ok"]
        for i in range(10):
            out = tmp_path / f"c{i}.lz4"
            r = run_arthur("capture", proc.pid, "-o", out)
            assert r.returncode == 0, r.stderr
            pauses.append(float(re.search(r"for ([\d.]+) ms", r.stderr).group(1)))
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        for c in clients:
            c.join()
        assert results["failed"] == []
        assert results["ok"] - before > 100       # it really served during the captures
        assert_untouched(proc.pid)
        # Every capture is a readable core of the server.
        r = nsdebug(tmp_path / "c9.lz4", "-c", "bt --all")
        assert r.returncode == 0 and "serve_forever" in r.stdout
        print(f"pauses (ms): {pauses}; requests served: {results['ok']}")
    finally:
        targets.stop(proc)
