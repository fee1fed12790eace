#!/usr/bin/env python3
"""Record what nsdebug prints on a fixed set of cores, and check later that it is the same.

usage: python tools/golden.py make DIR       make the cores (every available build)
       python tools/golden.py record DIR     run the commands, keep their output
       python tools/golden.py check DIR      run them again; list what differs

For a refactoring that must not change output: `make` and `record` before the first
move, `check` after each. The cores stay in DIR (about 100 MB per build), so every
check reads the very same bytes. Per build: a 4-thread stacks target, the heap target,
two captures of the leaky service (gcore/arthur then .lz4) and the asyncio target.
Commands run with --no-cache (every heap command walks) in text and in --json; the
snapshot is compared byte for byte.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import targets  # noqa: E402


NAMED = ("widget", "widget_dict", "tags", "name_str", "table_value", "shared", "closure",
         "ring_a", "generator")


def make(base):
    manifest = {}
    for b in targets.available_builds():
        d = os.path.join(base, b.id)
        tool = targets.live_capture_tool(b)
        stacks = targets.gcore_capture(b, "stacks_target.py", os.path.join(d, "stacks"),
                                       threads=4, tool=tool)
        heap = targets.gcore_capture(b, "heap_target.py", os.path.join(d, "heap"), tool=tool)
        old, new = targets.leak_captures(b, os.path.join(d, "leak"))
        tasks = targets.gcore_capture(b, "asyncio_target.py", os.path.join(d, "asyncio"),
                                      tool=tool)
        manifest[b.id] = {
            "stacks": stacks.core, "heap": heap.core, "leak_old": old.core,
            "leak_new": new.core, "tasks": tasks.core,
            # Objects named by the heap target, for path/refs/retained.
            "objects": {k: heap.truth["named"][k]["id"] for k in NAMED},
        }
        print(f"made cores for {b.id}", file=sys.stderr)
    with open(os.path.join(base, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def cases(manifest):
    """(name, argv) of every recorded run."""
    for build, m in sorted(manifest.items()):
        heap = m["heap"]
        named = m["objects"]
        runs = [
            ("bt", [m["stacks"], "-c", "bt --all --locals"]),
            ("threads", [m["stacks"], "-c", "threads", "-c", "info"]),
            ("objects", [heap, "-c", "objects", "-c", "objects --sort retained -n 40"]),
            ("suspects", [m["leak_new"], "-c", "suspects --waste"]),
            ("tasks", [m["tasks"], "-c", "tasks --all --locals"]),
            ("largest", [heap, "-c", "largest", "-c", "instances Widget -n 5"]),
        ]
        for name in sorted(named):
            addr = hex(named[name])
            runs.append((f"path-{name}", [heap, "-c", f"path {addr}", "-c", f"refs {addr}",
                                          "-c", f"retained {addr} -n 5"]))
        for name, argv in runs:
            yield f"{build}/{name}", argv + ["--no-cache"]
            yield f"{build}/{name}.json", argv + ["--no-cache", "--json"]
        yield f"{build}/diff", ["diff", m["leak_old"], m["leak_new"], "--no-cache"]
        yield f"{build}/diff.json", ["diff", m["leak_old"], m["leak_new"], "--no-cache",
                                     "--json"]
        yield f"{build}/snapshot", [heap, "--no-cache", "--snapshot", "SNAPSHOT", "--force"]


def run(argv, scratch):
    snap = os.path.join(scratch, "golden.heapsnapshot")
    argv = [snap if a == "SNAPSHOT" else a for a in argv]
    r = subprocess.run(targets.nsdebug_cmd() + argv, capture_output=True, timeout=900)
    out = r.stdout
    if "SNAPSHOT" in argv or snap in argv:
        with open(snap, "rb") as f:
            data = f.read()
        os.unlink(snap)
        out = f"sha256 {hashlib.sha256(data).hexdigest()} bytes {len(data)}\n".encode()
    return out + f"-- exit {r.returncode}\n".encode() + r.stderr


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["make", "record", "check"])
    p.add_argument("dir")
    args = p.parse_args()
    base = os.path.abspath(args.dir)
    os.makedirs(base, exist_ok=True)
    if args.action == "make":
        make(base)
        return 0
    with open(os.path.join(base, "manifest.json")) as f:
        manifest = json.load(f)
    out_dir = os.path.join(base, "recorded")
    differ = 0
    for name, argv in cases(manifest):
        got = run(argv, base)
        path = os.path.join(out_dir, name)
        if args.action == "record":
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(got)
            continue
        with open(path, "rb") as f:
            want = f.read()
        if got != want:
            differ += 1
            print(f"DIFFERS {name}")
            diff = difflib.unified_diff(want.decode(errors="replace").splitlines(),
                                        got.decode(errors="replace").splitlines(),
                                        "before", "after", lineterm="", n=1)
            for line in list(diff)[:40]:
                print("   " + line)
        else:
            print(f"same    {name}")
    print(f"{differ} outputs differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
