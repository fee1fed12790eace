#!/usr/bin/env python3
"""The crash handler against the kernel writing a plain core file: how long a crashing
process is held, the handler's time per GiB and its peak memory.

usage: python benchmarks/crash_handler.py [--sizes 256,1024] [--runs 3]   (root)

For each size, a CPython process fills that much memory (a repeated byte, then random
bytes: the two ends of compressibility) and dies of SIGSEGV. Held: from the crash (the
target's own clock, written just before it) to its parent's waitpid() returning, which
the kernel delays until the core is written, or until the handler closes its pipe
(core_pipe_limit). core_pattern is put back however the script ends.
"""

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, byte_compile_nsdebug, print_table, targets, tool  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "capture"))
from helpers import record_of  # noqa: E402

PATTERN = "/proc/sys/kernel/core_pattern"
PIPE_LIMIT = "/proc/sys/kernel/core_pipe_limit"
SCRIPT = os.path.join(targets.FIXTURES, "crash_target.py")


def _rw(path, text=None):
    if text is None:
        with open(path) as f:
            return f.read().strip()
    with open(path, "w") as f:
        f.write(text)


def crash(work, mode, mib):
    """Seconds the crashed process was held after its crash."""
    import resource
    truth = os.path.join(work, "truth.json")
    p = subprocess.Popen([targets.default_build().exe, SCRIPT, truth, mode, str(mib)],
                         cwd=work, stderr=subprocess.DEVNULL, preexec_fn=lambda:
                         resource.setrlimit(resource.RLIMIT_CORE, (-1, -1)))
    p.wait()
    ended = time.monotonic()
    with open(truth) as f:
        at = json.load(f)["at"]
    return p.pid, ended - at


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,1024")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not os.access(PATTERN, os.W_OK):
        sys.exit(f"{PATTERN} is not writable: run as root")
    byte_compile_nsdebug()
    arthur = tool("arthur")
    saved = _rw(PATTERN), _rw(PIPE_LIMIT)
    rows = []
    try:
        for mib in (int(x) for x in args.sizes.split(",")):
            for mode in ("big", "random"):
                kernel, ours, per_gib, peak, ratio = [], [], [], [], []
                with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
                    spool = os.path.join(tmp, "spool")
                    for i in range(args.runs):
                        _rw(PATTERN, os.path.join(tmp, "kcore.%p"))
                        pid, held = crash(tmp, mode, mib)
                        kernel.append(held)
                        os.unlink(os.path.join(tmp, f"kcore.{pid}"))
                        subprocess.run([arthur, "crash-handler", "install", "--spool", spool,
                                        "--min-free", "1G", "--rate", "1000/60"],
                                       check=True, stdout=subprocess.DEVNULL)
                        pid, held = crash(tmp, mode, mib)
                        ours.append(held)
                        rec = record_of(spool, pid, timeout=300)
                        if rec.get("dropped"):
                            sys.exit(f"the handler dropped the core: {rec['dropped']}")
                        per_gib.append(rec["held_ms"] / 1000 / (rec["raw_size"] / 2**30))
                        peak.append(rec["handler_peak_rss_kb"] / 1024)
                        ratio.append(rec["raw_size"] / rec["file_size"])
                        subprocess.run([arthur, "crash-handler", "uninstall"], check=True,
                                       stdout=subprocess.DEVNULL)
                        for f in glob.glob(os.path.join(spool, "core.*")):
                            os.unlink(f)
                med = statistics.median
                rows.append((f"{mib} MiB", "repeated" if mode == "big" else "random",
                             f"{med(kernel) * 1000:.0f} ms", f"{med(ours) * 1000:.0f} ms",
                             f"{med(ours) / med(kernel):.2f}x", f"{med(per_gib):.2f} s",
                             f"{max(peak):.0f} MiB", f"{med(ratio):.1f}x"))
    finally:
        _rw(PATTERN, saved[0])
        _rw(PIPE_LIMIT, saved[1])
    print_table(["process", "bytes", "held: kernel file", "held: arthur",
                 "arthur/kernel", "handler s/GiB", "handler peak RSS", "compression"],
                rows)


if __name__ == "__main__":
    main()
