#!/usr/bin/env python3
"""Kill arthur at every instant of a capture, many times, and count what the target felt.

usage: python benchmarks/arthur_kill.py [--runs 500] [--signals KILL,HUP]

The target is fixtures/victim_target.py (it checks its own threads, FPU mode, signal
mask and alternate stack). Half the runs are aimed at the freeze and the injected clone
(homing in by the timeline each run records), half at random instants of the whole
capture. Prints, per signal, how many runs ended at each step of the capture (the last
one arthur reached), and the harm: targets dead, stopped, traced or changed, tracebacks,
zombies left after `arthur reap`.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "capture"))
from common import print_table, tool  # noqa: E402
from helpers import STEP_ORDER, KillAimer  # noqa: E402
from test_arthur_dies import Victim  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=500, help="runs per signal (default 500)")
    ap.add_argument("--signals", default="KILL,HUP")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        v = Victim(Path(tmp))
        try:
            for name in args.signals.split(","):
                sig = getattr(signal, "SIG" + name)
                aimer = KillAimer(v.pid, tmp, seed=int(sig))
                steps, harm = Counter(), Counter()
                for k in range(args.runs):
                    last, _rc, err = aimer.kill(sig, aimed=k % 2 == 0)
                    steps[last] += 1
                    if "Traceback" in err or "Exception ignored" in err:
                        harm["traceback"] += 1
                    try:
                        v.assert_as_it_was(zombies_ok=True)
                    except AssertionError as e:
                        harm[f"target changed: {e}"] += 1
                    except Exception as e:  # noqa: BLE001 - a dead target is the figure
                        harm[f"target gone: {type(e).__name__}"] += 1
                        break
                r = subprocess.run([tool("arthur"), "reap", str(v.pid)], capture_output=True,
                                   text=True)
                left = len(v.check()["children"])
                rows.append([name, sum(steps.values())] + [steps.get(s, 0) for s in STEP_ORDER]
                            + [sum(harm.values()), left])
                print(f"SIG{name}: {dict(steps)}; harm {dict(harm)}; {r.stdout.strip()}; "
                      f"zombies after reap: {left}", flush=True)
        finally:
            v.close()
    print("\nruns by the last step arthur reached before the signal ended it")
    print_table(["signal", "runs"] + STEP_ORDER + ["harmed", "zombies left"], rows)


if __name__ == "__main__":
    main()
