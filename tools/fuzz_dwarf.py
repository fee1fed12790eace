#!/usr/bin/env python3
"""Damaged DWARF against nsdebug's reader: mutants of a library's debug sections given
to `bt --all --native-all` as that library's debug file (found by build-id under
--debug-dir). Every run must exit 0 with no traceback: damaged DWARF costs file and line,
never the stack.

usage: python tools/fuzz_dwarf.py CORE LIBRARY [--mutants N] [--seed S]
  e.g. CORE of fixtures/stacks_target.py under pyenv's 3.11, LIBRARY its
  libpython3.11.so.1.0 (built with DWARF).

Mutations, each inside one of .debug_info, .debug_abbrev, .debug_line, .debug_rnglists,
.debug_aranges, .debug_str, .debug_line_str: up to 200 random bytes, a random span of up
to 4 KiB, or up to 64 KiB zeroed. Prints each failure (seed, mutation, exit status, the
end of stderr) and a count.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

SECTIONS = (".debug_info", ".debug_abbrev", ".debug_line", ".debug_rnglists",
            ".debug_aranges", ".debug_str", ".debug_line_str")


def sections(path):
    """{name: (file offset, size)} of the DWARF sections mutated here."""
    from nsdebug.corefile.symbols import ElfFile
    return {s.name: (s.sh_offset, s.sh_size) for s in ElfFile(path).sections
            if s.name in SECTIONS and s.sh_size}


def mutate(data, spans, rnd):
    b = bytearray(data)
    name = rnd.choice(sorted(spans))
    off, size = spans[name]
    how = rnd.choice(["bytes", "span", "zero"])
    if how == "bytes":
        for _ in range(rnd.randint(1, 200)):
            b[off + rnd.randrange(size)] = rnd.randrange(256)
    else:
        at = off + rnd.randrange(size)
        n = min(rnd.randint(1, 4096 if how == "span" else 65536), off + size - at)
        b[at:at + n] = rnd.randbytes(n) if how == "span" else bytes(n)
    return bytes(b), f"{how} in {name}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("core")
    ap.add_argument("library")
    ap.add_argument("--mutants", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    from nsdebug.corefile.symbols import ElfFile
    data = open(args.library, "rb").read()
    spans = sections(args.library)
    if not spans:
        sys.exit(f"{args.library} has no DWARF sections")
    bid = ElfFile(args.library).build_id
    # The nsdebug of this interpreter's environment (the one installed beside it).
    nsdebug = shutil.which("nsdebug", path=os.path.dirname(sys.executable)) or "nsdebug"
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        where = os.path.join(tmp, ".build-id", bid[:2])
        os.makedirs(where)
        target = os.path.join(where, bid[2:] + ".debug")
        for seed in range(args.seed, args.seed + args.mutants):
            mutant, how = mutate(data, spans, random.Random(seed))
            with open(target, "wb") as f:
                f.write(mutant)
            r = subprocess.run([nsdebug, args.core, "--debug-dir", tmp, "--no-cache",
                                "-c", "bt --all --native-all", "--json"],
                               capture_output=True, text=True, timeout=120)
            if r.returncode != 0 or "Traceback" in r.stderr:
                failures += 1
                print(f"seed {seed}: {how}: exit {r.returncode}: {r.stderr[-300:]}")
    print(f"{failures} failures in {args.mutants} mutants")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
