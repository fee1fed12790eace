#!/usr/bin/env python3
"""Run the coverage-guided fuzz harnesses of fuzz/ (atheris over libFuzzer, the C modules
built by clang with AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's
coverage counters: NSDEBUG_SANITIZE=fuzz), make their seed corpora, and replay inputs.

usage:
  python tools/fuzz.py build VENV                 a venv with atheris and the fuzz build
  python tools/fuzz.py run VENV [NAME...] [--time S] [--runs N] [--jobs J] [--out DIR]
        [--seed S]: each harness for S seconds or N executions, whichever comes first,
        from its corpus in fuzz/corpus/NAME (copied: the run's new inputs go to
        DIR/NAME/corpus); prints per harness the executions, the edges of the C module(s)
        it covers (libFuzzer's counters over the corpus at the end, replayed with
        -print_coverage), and the findings (kept in DIR/NAME/). Exit 1 on a finding.
  python tools/fuzz.py seed [NAME...]            (re)make fuzz/corpus/NAME from real cores
        and debug files of the builds the suite uses
  python tools/fuzz.py replay VENV [NAME...]     every file of fuzz/regressions/NAME and
        fuzz/corpus/NAME through its harness once, under the sanitizers

Harnesses: h_space (corefile/_vector.c), h_kernels (heap/_kernels.c), h_graph
(heap/_graphc.c), h_symtab (corefile/_symtab.c), h_dwarfc (native/_dwarfc.c's entry
points on DWARF built from the input), h_dwarf (native/dwarf.py and
_dwarfc.c on whole debug files), h_lz4 (the .lz4 container reader), h_notes (the note
parsers), h_index (the heap index read back and used), h_caches (the DWARF and place
caches read back).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "fuzz")
HARNESSES = ["h_space", "h_kernels", "h_graph", "h_symtab", "h_dwarfc", "h_dwarf", "h_lz4",
             "h_notes", "h_index", "h_caches"]
# The C modules each harness's counters are counted in (the rest is Python's).
C_MODULES = {"h_space": ["_vector.c"], "h_kernels": ["_kernels.c"], "h_graph": ["_graphc.c"],
             "h_symtab": ["_symtab.c"], "h_dwarfc": ["_dwarfc.c"], "h_dwarf": ["_dwarfc.c"],
             "h_lz4": [], "h_notes": [], "h_index": ["_graphc.c"], "h_caches": []}
MAX_LEN = {"h_dwarf": 262144, "h_lz4": 262144, "h_notes": 65536, "h_index": 262144,
           "h_caches": 65536}


def atheris_dir(venv):
    return subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                           "import atheris; print(atheris.path())"], capture_output=True,
                          text=True, check=True, cwd="/").stdout.strip()


_scratch = None
_scratch_lock = threading.Lock()


def scratch_dir():
    """A directory on tmpfs for this command's harness processes, made on first use (by
    one of `run`'s threads: one directory, whichever asks first)."""
    global _scratch
    with _scratch_lock:
        if _scratch is None:
            _scratch = tempfile.mkdtemp(prefix="nsdebug-fuzz-scratch-",
                                        dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        return _scratch


def fuzz_env(venv, fuzzing=True):
    env = dict(os.environ)
    env["LD_PRELOAD"] = os.path.join(atheris_dir(venv), "asan_with_fuzzer.so")
    env["ASAN_OPTIONS"] = "detect_leaks=0:allocator_may_return_null=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # The harnesses' scratch files: libFuzzer ends a run with exit(), past any cleanup
    # of theirs; this directory goes when the command ends (main).
    env["NSDEBUG_FUZZ_SCRATCH"] = scratch_dir()
    if fuzzing:
        env["NSDEBUG_FUZZING"] = "1"      # the harnesses' Python imports instrumented
    return env


def build(venv):
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pip = os.path.join(venv, "bin", "pip")
    subprocess.run([pip, "install", "-q", "atheris"], check=True)
    subprocess.run([pip, "install", "-q", ROOT], check=True,
                   env=dict(os.environ, NSDEBUG_SANITIZE="fuzz"))
    print(f"fuzz build in {venv}")


def _libfuzzer(venv, name, args, timeout):
    py = os.path.join(venv, "bin", "python")
    return subprocess.run([py, os.path.join(FUZZ, f"{name}.py"), *args], cwd="/",
                          env=fuzz_env(venv), capture_output=True, text=True,
                          timeout=timeout)


def coverage(venv, name, *corpora):
    """(edges covered, edges in all) of the harness's C modules, over the corpora."""
    mods = C_MODULES[name]
    if not mods:
        return None
    dirs = [d for d in corpora if os.path.isdir(d)]
    r = _libfuzzer(venv, name, ["-runs=0", "-print_coverage=1", *dirs], 1800)
    covered = total = 0
    for line in r.stderr.splitlines():
        m = re.match(r"(UN)?COVERED_FUNC: hits: \d+ edges: (\d+)/(\d+) \S+ (\S+):\d+", line)
        if m and any(os.path.basename(m.group(4)) == c for c in mods):
            covered += int(m.group(2))
            total += int(m.group(3))
    return covered, total


def run_one(venv, name, seconds, runs, out, seed):
    work = os.path.join(out, name)
    corpus = os.path.join(work, "corpus")
    os.makedirs(corpus, exist_ok=True)
    seeds = os.path.join(FUZZ, "corpus", name)
    args = [f"-max_total_time={seconds}", f"-artifact_prefix={work}/", "-print_final_stats=1",
            f"-seed={seed}", f"-max_len={MAX_LEN.get(name, 4096)}", "-timeout=20",
            "-rss_limit_mb=4096", corpus]
    if runs:
        args.insert(0, f"-runs={runs}")
    if os.path.isdir(seeds):
        args.append(seeds)
    start = time.time()
    r = _libfuzzer(venv, name, args, seconds + 600)
    with open(os.path.join(work, "log"), "w") as f:
        f.write(r.stdout + r.stderr)
    execs = re.findall(r"stat::number_of_executed_units: (\d+)", r.stderr)
    findings = [f for f in os.listdir(work) if re.match(r"(crash|leak|timeout|oom)-", f)]
    cov = coverage(venv, name, corpus, seeds)
    return {"name": name, "execs": int(execs[-1]) if execs else 0,
            "seconds": round(time.time() - start), "findings": findings,
            "status": r.returncode, "coverage": cov,
            "corpus": len(os.listdir(corpus))}


def run(args):
    names = args.names or HARNESSES
    out = args.out or tempfile.mkdtemp(prefix="nsdebug-fuzz-")
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda n: run_one(args.venv, n, args.time, args.runs, out,
                                                  args.seed), names))
    bad = False
    print(f"{'harness':10} {'executions':>11} {'seconds':>8} {'C edges':>14} "
          f"{'corpus':>7}  findings")
    for r in results:
        cov = "-" if r["coverage"] is None else f"{r['coverage'][0]}/{r['coverage'][1]}"
        print(f"{r['name']:10} {r['execs']:>11} {r['seconds']:>8} {cov:>14} "
              f"{r['corpus']:>7}  {', '.join(r['findings']) or 0}")
        bad |= bool(r["findings"]) or r["status"] not in (0,)
    print(f"(logs and findings under {out})")
    return 1 if bad else 0


def replay(args):
    """Every kept input through its harness once (libFuzzer's replay of files)."""
    bad = 0
    for name in args.names or HARNESSES:
        files = []
        for kind in ("regressions", "corpus"):
            d = os.path.join(FUZZ, kind, name)
            if os.path.isdir(d):
                files += [os.path.join(d, f) for f in sorted(os.listdir(d))]
        if not files:
            continue
        r = subprocess.run([os.path.join(args.venv, "bin", "python"),
                            os.path.join(FUZZ, f"{name}.py"), "-runs=1", *files], cwd="/",
                           env=fuzz_env(args.venv, fuzzing=False), capture_output=True,
                           text=True, timeout=1800)
        ok = r.returncode == 0
        bad += not ok
        print(f"{name}: {len(files)} inputs {'ok' if ok else 'FAILED'}")
        if not ok:
            print(r.stderr[-3000:])
    return 1 if bad else 0


def main(argv=None):
    try:
        return _main(argv)
    finally:
        if _scratch is not None:
            shutil.rmtree(_scratch, ignore_errors=True)


def _main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("venv")
    r = sub.add_parser("run")
    r.add_argument("venv")
    r.add_argument("names", nargs="*")
    r.add_argument("--time", type=int, default=60)
    r.add_argument("--runs", type=int, default=0)
    r.add_argument("--jobs", type=int, default=1)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--out")
    s = sub.add_parser("seed")
    s.add_argument("names", nargs="*")
    rp = sub.add_parser("replay")
    rp.add_argument("venv")
    rp.add_argument("names", nargs="*")
    args = p.parse_args(argv)
    if args.cmd == "build":
        return build(os.path.abspath(args.venv))
    if args.cmd == "run":
        args.venv = os.path.abspath(args.venv)
        return run(args)
    if args.cmd == "replay":
        args.venv = os.path.abspath(args.venv)
        return replay(args)
    sys.path.insert(0, FUZZ)
    from seeds import make_seeds
    return make_seeds(args.names or HARNESSES)


if __name__ == "__main__":
    sys.exit(main())
