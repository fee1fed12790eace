"""`nsdebug demo`: start the sample service, load it, capture it with arthur, explore it."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

from .errors import NsdebugError
from .selfcmd import module_command

REQUESTS = 400
TOUR = ["info", "bt --all", "objects --top 10"]


def start_service():
    cmd, cwd = module_command("nsdebug.demo_app")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=cwd)
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "ready":
        proc.kill()
        raise NsdebugError("the demo service did not start")
    return proc, int(line[1])


def load(port, count):
    for i in range(count):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/orders/{i}", timeout=10) as r:
            r.read()


def main(argv):
    ap = argparse.ArgumentParser(prog="nsdebug demo",
                                 description="Capture a sample leaky service and explore it.")
    ap.add_argument("--keep", metavar="DIR", help="keep the capture in DIR")
    args = ap.parse_args(argv)
    from arthur.capture import capture
    workdir = tempfile.mkdtemp(prefix="nsdebug-demo-")
    proc, port = start_service()
    try:
        load(port, REQUESTS)
        print(f"demo service running as pid {proc.pid} on 127.0.0.1:{port}; "
              f"sent it {REQUESTS} requests", flush=True)
        result = capture(proc.pid, os.path.join(workdir, f"core.{proc.pid}.lz4"),
                         log=lambda m: print(m, flush=True))
        print(f"captured {result.path}: {result.raw_size >> 20} MiB core, "
              f"{result.file_size >> 20} MiB on disk; the service kept running", flush=True)
    finally:
        proc.kill()
        proc.wait()
    core = result.path
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        core = shutil.move(core, os.path.join(args.keep, os.path.basename(core)))
        print(f"kept {core}")
    try:
        return explore(core, interactive=sys.stdin.isatty() and sys.stdout.isatty())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def explore(core, interactive):
    from . import render
    from .batch import open_session, run_batch
    session = open_session(core)
    if interactive:
        print("opening the shell on the capture; try: bt --all, objects, "
              "instances RequestContext, path <address>, snapshot demo.heapsnapshot")
        from .repl import run_shell
        return run_shell(session)
    status = 0
    for line in TOUR:
        print(f"\n$ nsdebug {os.path.basename(core)} -c '{line}'", flush=True)
        status |= run_batch(session, [line], False)
    from .commands import run
    leaked = run(session, "instances RequestContext --limit 100")
    # Show one that only the leak holds: not the one a worker has in hand right now.
    g = session.target.heap
    held = [r for r in leaked.rows if not any(
        src < g.n_synth and g.synth_kinds[src] == "frame"
        for src, _k, _n in g.referrers(g.index_of(r.address)))]
    leaked.rows = (held or leaked.rows)[:1]
    print(f"\n$ nsdebug {os.path.basename(core)} -c 'instances RequestContext'")
    for text in render.to_lines(leaked):
        print(text)
    if leaked.rows:
        addr = leaked.rows[0].address
        print(f"\n$ nsdebug {os.path.basename(core)} -c 'path {addr:#x}'   "
              f"# who keeps the leaked objects alive?")
        status |= run_batch(session, [f"path {addr:#x}"], False)
    return status
