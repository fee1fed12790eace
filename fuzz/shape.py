"""Fuzz bytes read as the choices of a structure-aware generator, and the mutations the
file harnesses share.

A harness of a C entry point does not hand the fuzzer's bytes to the C code as they
come: it reads them as choices (`Shape`) that build arguments of the shapes nsdebug
passes (sorted segment arrays over a buffer, addresses inside them, CSR graphs), valid
most of the time and hostile in one field some of the time (a huge length, an offset
past the end, an address outside every segment, an index out of range). That keeps the
C code past its argument checks, where the reads that matter are, while every check
still meets the values it guards against.
"""

from __future__ import annotations

import random
import struct

import atheris
import numpy as np

# Values that break arithmetic: signs, widths, wrap-around.
HOSTILE = [0, 1, 7, 8, 15, 16, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF,
           0x80000000, 0xFFFFFFFF, 1 << 32, 1 << 40, 1 << 62, (1 << 63) - 1, 1 << 63,
           (1 << 64) - 8, (1 << 64) - 1]


class Shape:
    """Choices read from fuzz bytes: plausible values, and hostile ones one time in
    `odds` (a different field each time)."""

    def __init__(self, data, odds=8):
        self.p = atheris.FuzzedDataProvider(data)
        self.odds = odds

    def int(self, lo, hi):
        return self.p.ConsumeIntInRange(lo, hi)

    def flag(self):
        return self.p.ConsumeBool()

    def hostile(self):
        return self.p.ConsumeIntInRange(0, self.odds - 1) == 0

    def pick(self, seq):
        return seq[self.p.ConsumeIntInRange(0, len(seq) - 1)]

    def bytes(self, n):
        return self.p.ConsumeBytes(n)

    def rest(self):
        return self.p.ConsumeBytes(self.p.remaining_bytes())

    def u64(self, plausible):
        """plausible, or a hostile 64-bit value, or plausible off by a hostile amount."""
        if not self.hostile():
            return plausible & ((1 << 64) - 1)
        how = self.int(0, 2)
        if how == 0:
            return self.pick(HOSTILE)
        if how == 1:
            return self.p.ConsumeIntInRange(0, (1 << 64) - 1)
        return (plausible + self.pick(HOSTILE)) & ((1 << 64) - 1)

    def i64(self, plausible):
        v = self.u64(plausible)
        return v - (1 << 64) if v >= 1 << 63 else v

    def space(self, max_bytes=4096, max_segments=6):
        """A core in miniature: (buffer, starts, ends, offsets) as VectorMemory gives
        them (numpy uint8 and uint64 arrays), the buffer's bytes from the fuzz input.
        Segments are sorted, disjoint and inside the buffer unless a field is hostile."""
        size = self.int(0, max_bytes)
        nseg = self.int(0, max_segments)
        starts, ends, offs = [], [], []
        addr = 0x7F0000000000 + self.int(0, 255) * 0x1000
        for _ in range(nseg):
            off = self.int(0, max(size - 1, 0)) & ~7
            length = self.int(0, max(size - off, 0))
            starts.append(self.u64(addr))
            ends.append(self.u64(addr + length))
            offs.append(self.u64(off))
            addr += max(length, 8) + self.int(0, 4) * 0x1000
        if self.hostile():
            random.Random(self.int(0, 1 << 16)).shuffle(starts)
        buf = np.frombuffer(self.bytes(size).ljust(size, b"\0"), dtype=np.uint8).copy()
        return (buf, np.array(starts, np.uint64), np.array(ends, np.uint64),
                np.array(offs, np.uint64))

    def addresses(self, space, n, align=8):
        """n addresses, most inside the space's segments and aligned to `align`."""
        _, starts, ends, _ = space
        out = []
        for _ in range(n):
            if len(starts) and not self.hostile():
                i = self.int(0, len(starts) - 1)
                lo, hi = int(starts[i]), int(ends[i])
                a = lo + self.int(0, max(hi - lo, 0))
                out.append(a - a % align if self.int(0, 7) else a)
            else:
                out.append(self.u64(0))
        return np.array(out, np.uint64)

    def pointer_words(self, space, count):
        """Words that point into the space (object memory full of pointers), as bytes."""
        return self.addresses(space, count).tobytes()


def read_oracle(space, addr, width):
    """The bytes at addr as the C readers must see them: inside one segment that lies in
    the buffer, else None (the reference for _space.h's locate())."""
    buf, starts, ends, offs = space
    i = int(np.searchsorted(starts, np.uint64(addr), side="right")) - 1
    if i < 0 or addr >= int(ends[i]) or addr + width > int(ends[i]):
        return None
    o = int(offs[i]) + addr - int(starts[i])
    if o + width > len(buf):
        return None
    return bytes(buf[o:o + width])


# -- mutations of whole files ------------------------------------------------------
def overwrite(data, at, value, fmt):
    """data with struct `fmt` written at `at` (inside data), else data unchanged."""
    size = struct.calcsize(fmt)
    if at < 0 or at + size > len(data):
        return data
    return data[:at] + struct.pack(fmt, value & ((1 << (8 * size)) - 1)) + \
        data[at + size:]


def field_mutation(data, rnd, fields):
    """One structural mutation: a field of `fields` ((offset, fmt) of lengths, offsets,
    counts the file holds) set to a hostile value, or moved by a small amount."""
    if not fields:
        return data
    at, fmt = rnd.choice(fields)
    size = struct.calcsize(fmt)
    if at < 0 or at + size > len(data):
        return data
    old = struct.unpack_from(fmt, data, at)[0]
    new = rnd.choice(HOSTILE) if rnd.random() < 0.6 else old + rnd.randint(-64, 64)
    return overwrite(data, at, new, fmt)


def instrumented():
    """Context for a harness's imports of nsdebug: its Python code instrumented for
    coverage when the fuzzer runs (NSDEBUG_FUZZING=1, set by tools/fuzz.py), plain
    imports when the regression tests replay the inputs."""
    import contextlib
    import os
    if os.environ.get("NSDEBUG_FUZZING") == "1":
        return atheris.instrument_imports(include=["nsdebug", "arthur"])
    return contextlib.nullcontext()


# -- what every harness's file and main do -------------------------------------------
def scratch_path(kind):
    """Where a file harness writes its input for the reader under test: in
    $NSDEBUG_FUZZ_SCRATCH when set (tools/fuzz.py and the tests give a directory they
    remove: libFuzzer ends with exit(), past fuzz_main's cleanup), else on tmpfs."""
    import os
    base = os.environ.get("NSDEBUG_FUZZ_SCRATCH") or "/dev/shm"
    return os.path.join(base, f"nsdebug-fuzz-{kind}-{os.getpid()}")


def put(path, data):
    """The input as a private file (a reader of our own files wants mode 600)."""
    import os
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def fuzz_main(one, mutate=None, scratch=None):
    """Run the harness under libFuzzer (with its structure-aware mutator, if any),
    removing its scratch file at the end."""
    import os
    import sys
    if mutate is None:
        atheris.Setup(sys.argv, one)
    else:
        atheris.Setup(sys.argv, one, custom_mutator=mutate)
    try:
        atheris.Fuzz()
    finally:
        if scratch and os.path.exists(scratch):
            os.unlink(scratch)
