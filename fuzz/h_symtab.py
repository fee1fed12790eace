"""Harness: corefile/_symtab.c (sorted_symbols), the symbol tables of a file as one
array sorted by address. Tables of Elf64_Sym rows built from the fuzz input (defined
functions and objects most of the time; any type, binding, section, name offset or
value some of the time, and a length not a multiple of a row), checked against the
order symbols.py's pure-Python loop gives."""

from __future__ import annotations

import struct
from array import array

try:
    from shape import Shape, fuzz_main
except ImportError:
    from fuzz.shape import Shape, fuzz_main
from nsdebug.corefile import _symtab

SYM = struct.Struct("<IBBHQQ")
RANK = [0, 2, 1, 0]


def tables(s):
    out = []
    for _ in range(s.int(0, 4)):
        strlen = s.int(0, 512)
        rows = b"".join(
            SYM.pack(s.u64(s.int(1, max(strlen, 1))) & 0xFFFFFFFF,
                     s.int(0, 255) if s.hostile() else s.pick([0x12, 0x11, 0x22, 0x02]),
                     0, s.int(0, 0xFFFF) if s.hostile() else s.pick([0, 13, 14]),
                     s.u64(0x1000 + 16 * s.int(0, 64)), s.u64(s.int(0, 256)))
            for _ in range(s.int(0, 40)))
        if s.hostile():
            rows = rows[:len(rows) - s.int(0, min(len(rows), 23))]
        out.append((rows, s.i64(strlen)))
    return out


def reference(tabs):
    rows = []
    for t, (data, limit) in enumerate(tabs):
        data = data[:len(data) // 24 * 24]
        for st_name, info, _o, shndx, value, size in SYM.iter_unpack(data):
            if shndx and value and (info & 0xF) <= 2 and 0 < st_name < limit:
                rows.append((value, RANK[min(info >> 4, 3)], -len(rows), size, st_name, t))
    rows.sort()
    return ([r[0] for r in rows], [r[3] for r in rows], [r[4] for r in rows],
            [r[5] for r in rows])


def one(data):
    s = Shape(data)
    tabs = tables(s)
    try:
        values, sizes, names, which = _symtab.sorted_symbols(tabs)
    except (ValueError, OverflowError):
        return
    got = (array("Q", values).tolist(), array("Q", sizes).tolist(),
           array("I", names).tolist(), list(which))
    assert got == reference(tabs)


if __name__ == "__main__":
    fuzz_main(one)
