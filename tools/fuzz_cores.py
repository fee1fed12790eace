#!/usr/bin/env python3
"""Fuzz nsdebug with mutants of real cores.

usage: python tools/fuzz_cores.py SEED_CORE... [--mutants N] [--seed S] [--jobs J]
                                  [--timeout SEC] [--memory MIB] [--out DIR]

Each mutant is one seed core (plain ELF, or an arthur .lz4) with one mutation:
  ehdr      an ELF header field set to an extreme value
  phdr      a program header field (type, offset, address, sizes) set likewise
  note      a note's header (name size, description size, type) or a word or bytes of
            its description (threads' registers, NT_FILE, auxv, the file extracts)
  memory    words of object memory: pointers re-aimed elsewhere, huge sizes, zero,
            self-references, random values (the words chosen are pointers in the seed)
  truncate  the file cut short
  lz4       (containers) the block index, a compressed block, or the footer damaged;
            or the core inside mutated as above and wrapped again

Every mutant is opened by nsdebug (in worker processes, with the time and memory
limits given) and runs COMMANDS, with --json on every other mutant; every EXTRA_EVERY-th
mutant, in turn, one of the whole-core outputs (EXTRAS, each a few times the cost of
the commands): the report with its HTML page, the DevTools
snapshot export, and triage's summary of a core (what `nsdebug triage` keeps per
core). An HTML page must be UTF-8 ending in </html>, a snapshot JSON, a summary a dict
that JSON can write. A result is a
failure when nsdebug ends in "internal error", prints a traceback, writes output that
is not valid UTF-8 or a JSON line that does not parse, exceeds the time limit (hang),
or dies of a signal (crash). Failures are grouped by signature; the first mutant of each
is kept in --out with a .json saying how it was made. Exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter

COMMANDS = ["info", "threads", "bt --all --locals", "objects --top 10", "tasks", "memory",
            "locks"]
EXTRAS = ["report --html", "--snapshot", "triage summary"]
EXTRA_EVERY = 5
INTERESTING = [0, 1, 7, 8, 0x7F, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF,
               1 << 32, 1 << 40, 1 << 62, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF]
EHDR_FIELDS = {"e_type": (16, "H"), "e_machine": (18, "H"), "e_phoff": (32, "Q"),
               "e_shoff": (40, "Q"), "e_phentsize": (54, "H"), "e_phnum": (56, "H"),
               "e_shentsize": (58, "H"), "e_shnum": (60, "H"), "ei_class": (4, "B"),
               "ei_data": (5, "B")}
PHDR_FIELDS = {"p_type": (0, "I"), "p_flags": (4, "I"), "p_offset": (8, "Q"),
               "p_vaddr": (16, "Q"), "p_filesz": (32, "Q"), "p_memsz": (40, "Q")}
LZ4_MAGIC = b"\x04\x22\x4d\x18"


# -- the seed's structure ----------------------------------------------------------
class Seed:
    """A seed core as bytes, with where its headers, notes and memory are."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            raw = f.read()
        self.container = raw[:4] == LZ4_MAGIC
        self.packed = raw if self.container else None
        self.core = self._unpack(raw) if self.container else raw
        c = self.core
        self.phoff, = struct.unpack_from("<Q", c, 32)
        self.phnum, = struct.unpack_from("<H", c, 56)
        self.phdrs = [struct.unpack_from("<IIQQQQQQ", c, self.phoff + 56 * i)
                      for i in range(self.phnum)]
        self.notes = []          # (header offset, desc offset, desc size)
        for p_type, _f, off, _va, _pa, filesz, _ms, _al in self.phdrs:
            if p_type == 4:
                pos, end = off, off + filesz
                while pos + 12 <= end:
                    namesz, descsz, _t = struct.unpack_from("<III", c, pos)
                    desc = pos + 12 + (namesz + 3) // 4 * 4
                    self.notes.append((pos, desc, descsz))
                    pos = desc + (descsz + 3) // 4 * 4
        self.loads = [(va, off, filesz) for t, fl, off, va, _pa, filesz, _ms, _al
                      in self.phdrs if t == 1 and filesz and fl & 2]

    @staticmethod
    def _unpack(raw):
        import lz4.frame
        return lz4.frame.decompress(raw)

    def pointer_words(self, rng, want):
        """File offsets of words in writable memory that hold a pointer into the core's
        mapped memory: the fields of objects, mostly."""
        if not self.loads:
            return []
        lo = min(va for va, _o, _n in self.loads)
        hi = max(va + n for va, _o, n in self.loads)
        out = []
        for _ in range(8):
            va, off, n = rng.choice(self.loads)
            start = off + rng.randrange(0, max(1, n - 65536)) // 8 * 8
            window = self.core[start:start + min(65536, n)]
            words = struct.unpack_from(f"<{len(window) // 8}Q", window)
            out += [start + 8 * i for i, w in enumerate(words) if lo <= w < hi]
            if len(out) >= want:
                break
        rng.shuffle(out)
        return out[:want]


def _put(buf, off, fmt, value):
    size = struct.calcsize("<" + fmt)
    if 0 <= off and off + size <= len(buf):
        struct.pack_into("<" + fmt, buf, off, value & ((1 << (8 * size)) - 1))


def _value(rng, seed):
    r = rng.random()
    if r < 0.6:
        return rng.choice(INTERESTING)
    if r < 0.8:
        return len(seed.core) + rng.randrange(-2, 3)
    return rng.getrandbits(64)


# -- mutations -------------------------------------------------------------------
def mutate_core(rng, seed, kind):
    """(bytes of the mutated plain core, description)."""
    buf = bytearray(seed.core)
    if kind == "ehdr":
        name = rng.choice(sorted(EHDR_FIELDS))
        off, fmt = EHDR_FIELDS[name]
        v = _value(rng, seed)
        _put(buf, off, fmt, v)
        return buf, f"ehdr {name}={v:#x}"
    if kind == "phdr":
        i = rng.randrange(seed.phnum)
        name = rng.choice(sorted(PHDR_FIELDS))
        off, fmt = PHDR_FIELDS[name]
        v = _value(rng, seed) if name != "p_type" else rng.choice([0, 1, 4, 6, 0x6474E550])
        _put(buf, seed.phoff + 56 * i + off, fmt, v)
        return buf, f"phdr {i} {name}={v:#x}"
    if kind == "note":
        hdr, desc, size = rng.choice(seed.notes)
        r = rng.random()
        if r < 0.3:
            field = rng.randrange(3)
            v = rng.choice(INTERESTING + [size + 1, size - 1, rng.getrandbits(32)])
            _put(buf, hdr + 4 * field, "I", v)
            return buf, f"note at {hdr} header field {field}={v:#x}"
        if r < 0.7 and size >= 8:
            at = desc + rng.randrange(size // 8) * 8
            v = _value(rng, seed)
            _put(buf, at, "Q", v)
            return buf, f"note at {hdr} word at {at}={v:#x}"
        n = rng.randint(1, 16)
        at = desc + rng.randrange(max(1, size - n))
        buf[at:at + n] = bytes(rng.getrandbits(8) for _ in range(n))[:max(0, len(buf) - at)]
        return buf, f"note at {hdr} {n} random bytes at {at}"
    if kind == "memory":
        n = rng.choice([1, 4, 32, 256])
        spots = seed.pointer_words(rng, n)
        how = rng.choice(["aim", "huge", "zero", "self", "random"])
        for at in spots:
            vaddr = _vaddr_of(seed, at)
            v = {"aim": lambda: struct.unpack_from("<Q", seed.core, rng.choice(spots))[0]
                 + rng.choice([-16, -8, 0, 8, 24]),
                 "huge": lambda: rng.choice(INTERESTING[7:]),
                 "zero": lambda: 0,
                 "self": lambda: vaddr + rng.choice([-16, 0]),
                 "random": lambda: rng.getrandbits(64)}[how]()
            _put(buf, at, "Q", v)
        return buf, f"memory {len(spots)} words {how}"
    if kind == "truncate":
        r = rng.random()
        if r < 0.3 and seed.notes:
            hdr, desc, size = rng.choice(seed.notes)
            cut = desc + rng.randrange(max(1, size))
        else:
            cut = rng.randrange(1, len(buf))
        return buf[:cut], f"truncate at {cut}"
    raise ValueError(kind)


def _vaddr_of(seed, off):
    for va, foff, n in seed.loads:
        if foff <= off < foff + n:
            return va + off - foff
    return 0


def mutate_container(rng, seed):
    """(bytes of a damaged container, description)."""
    buf = bytearray(seed.packed)
    index_at, = struct.unpack_from("<Q", buf, len(buf) - 16)
    count, = struct.unpack_from("<Q", buf, index_at + 8 + 24)
    r = rng.random()
    if r < 0.3:
        row = index_at + 8 + 32 + 16 * rng.randrange(count)
        field, fmt = rng.choice([(0, "Q"), (8, "I"), (12, "I")])
        v = _value(rng, seed)
        _put(buf, row + field, fmt, v)
        return buf, f"lz4 index row {row} +{field}={v:#x}"
    if r < 0.45:
        at = rng.choice([index_at + 8 + 8, index_at + 8 + 12, index_at + 8 + 16,
                         index_at + 8 + 24, len(buf) - 16, index_at + 4])
        v = _value(rng, seed)
        _put(buf, at, "I" if at in (index_at + 8 + 8, index_at + 8 + 12, index_at + 4)
             else "Q", v)
        return buf, f"lz4 index header at {at}={v:#x}"
    if r < 0.75:
        row = index_at + 8 + 32 + 16 * rng.randrange(count)
        coff, stored = struct.unpack_from("<QI", buf, row)
        n = rng.randint(1, 8)
        for _ in range(n):
            at = coff + 4 + rng.randrange(max(1, stored))
            if at < len(buf):
                buf[at] = rng.getrandbits(8)
        return buf, f"lz4 block at {coff}: {n} bytes changed"
    if r < 0.85:
        cut = rng.randrange(1, len(buf))
        return buf[:cut], f"lz4 truncated at {cut}"
    from arthur.lz4core import ContainerWriter
    kind = rng.choice(["ehdr", "phdr", "note", "memory"])
    core, what = mutate_core(rng, seed, kind)
    out = io.BytesIO()
    w = ContainerWriter(out, workers=1)
    w.write(bytes(core))
    w.close()
    return bytearray(out.getvalue()), f"lz4 of ({what})"


def make_mutant(rng, seed):
    if seed.container and rng.random() < 0.6:
        return mutate_container(rng, seed)
    kind = rng.choice(["ehdr", "phdr", "note", "note", "memory", "memory", "truncate"])
    return mutate_core(rng, seed, kind)


# -- running nsdebug -------------------------------------------------------------
def worker(memory_mib):
    """Run mutants named on stdin, one JSON result per line on stdout."""
    import resource
    limit = memory_mib << 20
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        # (AddressSanitizer maps terabytes of shadow memory: no address-space limit
        # under it; its own allocator reports what would exceed one.)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from nsdebug.cli import main
    real_out = sys.stdout
    for line in sys.stdin:
        task = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        argv = [task["path"], "--no-cache"] + sum((["-c", c] for c in COMMANDS), [])
        if task["json"]:
            argv.append("--json")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(argv)
            except SystemExit as e:
                status = e.code
            except BaseException as e:  # noqa: BLE001 - what escaped main() is the finding
                status = f"escaped {type(e).__name__}"
        extra = _extra(task, main)
        real_out.write(json.dumps({"status": status, "out": out.getvalue(),
                                   "err": err.getvalue(), "extra": extra},
                                  ensure_ascii=True) + "\n")
        real_out.flush()


def _extra(task, main):
    """One whole-core output of the mutant (EXTRAS, by turn): {"name", "status", "out",
    "err", "problem"} where problem names output that is not what it must be."""
    if task["i"] % EXTRA_EVERY:
        return None
    name = EXTRAS[task["i"] // EXTRA_EVERY % len(EXTRAS)]
    if name.startswith("report") and "libasan" in os.environ.get("LD_PRELOAD", ""):
        # The report disassembles (capstone), whose dlopen(RTLD_DEEPBIND) the sanitizer
        # runtime aborts on: not ours to test under it.
        name = "--snapshot"
    out, err, problem = io.StringIO(), io.StringIO(), None
    target = task["path"] + (".html" if name.startswith("report") else ".heapsnapshot")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if name == "triage summary":
                from nsdebug.errors import NsdebugError
                from nsdebug.fleet.summary import summarize
                try:
                    doc = summarize(task["path"], heap=True)
                except NsdebugError:         # a file that is no core: refused, as it must
                    doc = {}
                status = 0
                if not isinstance(doc, dict):
                    problem = "summary is not a dict"
                else:
                    json.dumps(doc)
            elif name == "--snapshot":
                status = main([task["path"], "--no-cache", "--snapshot", target, "--force"])
            else:
                status = main(["report", task["path"], "--html", target, "--force"])
        except SystemExit as e:
            status = e.code
        except BaseException as e:  # noqa: BLE001 - what escaped is the finding
            status = f"escaped {type(e).__name__}"
    if status == 0 and os.path.exists(target):
        with open(target, "rb") as f:
            data = f.read()
        try:
            text = data.decode("utf-8")
            if name == "--snapshot":
                json.loads(text)
            elif not text.rstrip().endswith("</html>"):
                problem = "HTML page is cut short"
        except ValueError:
            problem = f"{name} output is not {'JSON' if name == '--snapshot' else 'UTF-8'}"
    if os.path.exists(target):
        os.unlink(target)
    return {"name": name, "status": status, "out": out.getvalue(), "err": err.getvalue(),
            "problem": problem}


def verdict(result, as_json):
    """A failure signature, or None when nsdebug behaved."""
    sig = _verdict(result, as_json)
    extra = result.get("extra")
    if sig is None and extra:
        sig = extra["problem"] or _verdict(extra, False)
        if sig:
            sig = f"{extra['name']}: {sig}"
    return sig


def _verdict(result, as_json):
    out, err, status = result["out"], result["err"], result["status"]
    if isinstance(status, str):
        return status
    for name, text in (("stdout", out), ("stderr", err)):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return f"invalid UTF-8 on {name}"
    if "Traceback (most recent call last)" in err:
        return "traceback"
    for ln in err.splitlines():
        if "internal error:" in ln:
            return "internal error: " + ln.split("internal error:", 1)[1].split(":")[0].strip()
        # A MemoryError, said in one line by the command line: a hostile core must not
        # make nsdebug allocate past the worker's address-space limit.
        if ln.startswith("nsdebug: out of memory"):
            return "out of memory"
    if as_json:
        for ln in out.splitlines():
            try:
                json.loads(ln)
            except ValueError:
                return "output line is not JSON"
    return None


class Worker:
    def __init__(self, memory_mib):
        self.memory = memory_mib
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", "--memory",
             str(self.memory)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, env=dict(os.environ, LC_ALL="C"))

    def send(self, task):
        self.proc.stdin.write(json.dumps(task) + "\n")
        self.proc.stdin.flush()
        self.deadline = time.monotonic() + task["timeout"]

    def restart(self):
        self.proc.kill()
        self.proc.wait()
        self.start()


def run(args):
    seeds = [Seed(p) for p in args.cores]
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm")
                            else None)
    workers = [Worker(args.memory) for _ in range(args.jobs)]
    busy = {}                      # worker index -> (task, description, seed path)
    failures, kinds = Counter(), Counter()
    kept = {}
    next_i, done = 0, 0
    started = time.monotonic()
    try:
        while done < args.mutants:
            for w_i, w in enumerate(workers):
                if w_i in busy or next_i >= args.mutants:
                    continue
                rng = random.Random(args.seed * 1_000_003 + next_i)
                seed = seeds[next_i % len(seeds)]
                data, what = make_mutant(rng, seed)
                path = os.path.join(work, f"m{w_i}" + (".lz4" if data[:4] == LZ4_MAGIC
                                                        else ".core"))
                with open(path, "wb") as f:
                    f.write(data)
                task = {"path": path, "json": next_i % 2 == 1, "timeout": args.timeout,
                        "i": next_i}
                kinds[what.split()[0]] += 1
                w.send(task)
                busy[w_i] = (task, what, seed.path)
                next_i += 1
            ready = select.select([workers[i].proc.stdout for i in busy], [], [], 0.5)[0]
            now = time.monotonic()
            for w_i in list(busy):
                w = workers[w_i]
                task, what, seed_path = busy[w_i]
                sig = None
                if w.proc.stdout in ready:
                    line = w.proc.stdout.readline()
                    if not line:
                        code = w.proc.wait()
                        sig = f"crash (exit {code})"
                        w.start()
                    else:
                        sig = verdict(json.loads(line), task["json"])
                elif now > w.deadline:
                    sig = "hang"
                    w.restart()
                else:
                    continue
                del busy[w_i]
                done += 1
                if sig:
                    failures[sig] += 1
                    if sig not in kept:
                        kept[sig] = _keep(args.out, len(kept), task, what, seed_path, sig)
                if args.progress and done % 500 == 0:
                    print(f"{done} mutants, {sum(failures.values())} failures, "
                          f"{done / (time.monotonic() - started):.1f}/s", file=sys.stderr)
    finally:
        for w in workers:
            w.proc.kill()
            w.proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(f"{done} mutants of {len(seeds)} seed(s) in {elapsed:.0f} s "
          f"({done / elapsed:.1f}/s), seed {args.seed}")
    print("mutations: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    if not failures:
        print("failures: 0 (no internal error, invalid UTF-8, bad JSON, hang or crash)")
        return 0
    print(f"failures: {sum(failures.values())} in {len(failures)} signature(s)")
    for sig, n in failures.most_common():
        print(f"  {n:6d}  {sig}  (reproducer: {kept[sig]})")
    return 1


def _keep(out_dir, n, task, what, seed_path, sig):
    base = os.path.join(out_dir, f"repro-{n}{os.path.splitext(task['path'])[1]}")
    shutil.copyfile(task["path"], base)
    with open(base + ".json", "w") as f:
        json.dump({"signature": sig, "mutation": what, "seed_core": seed_path,
                   "mutant": task["i"], "json": task["json"], "commands": COMMANDS,
                   "extra": None if task["i"] % EXTRA_EVERY else
                   EXTRAS[task["i"] // EXTRA_EVERY % len(EXTRAS)]}, f,
                  indent=1)
    return base


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cores", nargs="*", help="seed cores (ELF or arthur .lz4)")
    ap.add_argument("--mutants", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=float, default=60, help="seconds per mutant")
    ap.add_argument("--memory", type=int, default=4096, help="MiB of address space")
    ap.add_argument("--out", default="fuzz-out", help="where reproducers are kept")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.memory)
    if not args.cores:
        ap.error("give at least one seed core")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
