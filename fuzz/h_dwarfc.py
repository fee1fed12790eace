"""Harness: native/_dwarfc.c's entry points called directly (line_rows, chain, attrs,
holds) with DWARF built from the fuzz input: a line-number program of standard,
extended and special opcodes; an abbreviation table and a tree of entries in every form
the reader knows (addresses, ranges and range lists, address and string indices,
references, blocks, indirect forms, implicit constants), a .debug_addr table and
range lists of both versions. Valid most of the time; a length, an offset, an index, a
form or a unit field hostile some of the time. The whole-file harness (h_dwarf.py)
reaches these through dwarf.py's headers; this one reaches the forms and opcodes real
files rarely hold."""

from __future__ import annotations

import struct

try:
    from shape import Shape, fuzz_main
except ImportError:
    from fuzz.shape import Shape, fuzz_main
from nsdebug.native import _dwarfc

FORMS = [0x01, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
         0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
         0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
         0x29, 0x2a, 0x2b, 0x2c, 0x1f01, 0x1f02, 0x1f20, 0x1f21]
# (attribute, forms it comes in): names, extents, ranges, references, call sites.
ATTRS = [(0x03, [0x08, 0x0e, 0x1a, 0x25]), (0x11, [0x01, 0x1b, 0x29]),
         (0x12, [0x01, 0x07, 0x06, 0x0f, 0x1b]), (0x55, [0x17, 0x23, 0x06]),
         (0x31, [0x13, 0x10, 0x11, 0x1f20]), (0x47, [0x13, 0x15]), (0x01, [0x13, 0x12]),
         (0x58, [0x0b, 0x0f]), (0x59, [0x05, 0x21]), (0x02, [0x18, 0x0a, 0x03, 0x09]),
         (0x3f, [0x19, 0x0c]), (0x1c, [0x0d, 0x1e, 0x16, 0x20])]
TAGS = [0x2e, 0x1d, 0x0b, 0x39, 0x1e, 0x34, 0x05, 0x24]


def uleb(v):
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def sleb(v):
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        done = (v == 0 and not b & 0x40) or (v == -1 and b & 0x40)
        out.append(b | (0 if done else 0x80))
        if done:
            return bytes(out)


def value(s, form, version, offset_size, addr_size, lo):
    """The bytes of one attribute value in `form` (plausible unless hostile)."""
    if form == 0x01:
        return s.u64(lo + s.int(0, 256)).to_bytes(8, "little")[:addr_size]
    if form in (0x0b, 0x11, 0x0c, 0x25, 0x29):
        return bytes([s.int(0, 255)])
    if form in (0x05, 0x12, 0x26, 0x2a):
        return struct.pack("<H", s.int(0, 0xFFFF))
    if form in (0x27, 0x2b):
        return s.int(0, 1 << 24 - 1).to_bytes(3, "little")
    if form in (0x06, 0x13, 0x1c, 0x28, 0x2c):
        return struct.pack("<I", s.u64(s.int(0, 256)) & 0xFFFFFFFF)
    if form in (0x07, 0x14, 0x20, 0x24):
        return struct.pack("<Q", s.u64(s.int(0, 4096)))
    if form == 0x0d:
        return sleb(s.int(-1000, 1000))
    if form in (0x0f, 0x15, 0x1a, 0x1b, 0x22, 0x23, 0x1f01, 0x1f02):
        return uleb(s.u64(s.int(0, 8)))
    if form in (0x0e, 0x17, 0x1f, 0x1d, 0x1f20, 0x1f21):
        return s.u64(s.int(0, 64)).to_bytes(8, "little")[:offset_size]
    if form == 0x10:
        return s.u64(s.int(0, 64)).to_bytes(8, "little")[:addr_size if version <= 2
                                                             else offset_size]
    if form in (0x19, 0x21):
        return b""
    if form == 0x08:
        return s.bytes(s.int(0, 12)).replace(b"\0", b"x") + (b"" if s.hostile() else b"\0")
    if form in (0x0a, 0x03, 0x04, 0x09, 0x18, 0x1e):
        n = s.int(0, 16)
        head = {0x0a: bytes([n]), 0x03: struct.pack("<H", n), 0x04: struct.pack("<I", n),
                0x1e: b""}.get(form, uleb(n))
        if s.hostile():
            head = {0x0a: b"\xff", 0x03: b"\xff\xff", 0x04: b"\xff\xff\xff\x7f"}.get(
                form, uleb(1 << 40))
        return head + bytes(16 if form == 0x1e else n)
    if form == 0x16:                # indirect: the real form, then its value
        real = s.pick(FORMS)
        return uleb(real) + value(s, real, version, offset_size, addr_size, lo)
    return b""


def unit(s):
    """(sections, unit params, abbrev bytes, die offsets, pcs) of one compile unit."""
    version = s.pick([4, 5]) if not s.hostile() else s.int(0, 7)
    offset_size = 4 if not s.hostile() else s.pick([8, 2, 0])
    addr_size = 8 if not s.hostile() else s.pick([4, 1, 16])
    lo = 0x401000 + 16 * s.int(0, 64)
    abbrevs, kinds = bytearray(), []
    for code in range(1, s.int(1, 6) + 1):
        tag = 0x11 if code == 1 else s.pick(TAGS)
        specs = []
        for _ in range(s.int(0, 5)):
            at, forms = s.pick(ATTRS)
            form = s.pick(forms) if not s.hostile() else s.pick(FORMS + [0x7f, 0x3fff])
            specs.append((at, form, s.int(-100, 100) if form == 0x21 else None))
        children = code == 1 or s.flag()
        abbrevs += uleb(code) + uleb(tag) + bytes([children])
        for at, form, implicit in specs:
            abbrevs += uleb(at) + uleb(form) + (sleb(implicit) if implicit is not None else b"")
        abbrevs += b"\0\0"
        kinds.append((code, specs, children))
    abbrevs += b"\0"
    head = 4 + (2 + 1 + 1 + offset_size if version >= 5 else 2 + offset_size + 1)
    info, offsets, depth = bytearray(head), [], 0
    for k in range(s.int(1, 24)):
        if depth and s.int(0, 3) == 0:
            info += b"\0"
            depth -= 1
            continue
        code, specs, children = kinds[0] if k == 0 else s.pick(kinds)
        offsets.append(len(info))
        info += uleb(code if not s.hostile() else s.int(0, 9))
        for _at, form, _imp in specs:
            info += value(s, form, version, offset_size, addr_size, lo)
        depth += children
    info += b"\0" * depth
    struct.pack_into("<IH", info, 0, len(info) - 4, version)
    addr = b"".join(struct.pack("<Q", lo + 16 * i) for i in range(s.int(0, 8)))
    rng = bytearray()
    for _ in range(s.int(0, 4)):
        kind = s.int(0, 8)
        rng += bytes([kind])
        if kind in (1,):
            rng += uleb(s.int(0, 9))
        elif kind in (2, 3, 4):
            rng += uleb(s.int(0, 64)) + uleb(s.int(0, 64))
        elif kind in (5, 7):
            rng += struct.pack("<Q", lo) + (uleb(s.int(0, 64)) if kind == 7 else b"")
        elif kind == 6:
            rng += struct.pack("<QQ", lo, lo + s.int(0, 64))
    rng += b"\0"
    ranges = b"".join(struct.pack("<QQ", s.int(0, 64), s.int(0, 128))
                      for _ in range(s.int(0, 3))) + bytes(16)
    cu_end = len(info) if not s.hostile() else s.int(0, len(info) + 8)
    params = (0, cu_end, head, version, offset_size, addr_size, s.u64(lo),
              s.u64(0), s.u64(0))
    pcs = [lo + s.int(0, 300) for _ in range(3)]
    return ((bytes(info), addr, bytes(rng), ranges), params, bytes(abbrevs), offsets, pcs)


def program(s):
    """A line-number program and its header's numbers."""
    out = bytearray()
    opcode_base = 13 if not s.hostile() else s.int(-1, 300)
    for _ in range(s.int(0, 40)):
        op = s.int(0, 255)
        if op == 0:
            sub = s.pick([1, 2, 3, 4, 0x80])
            body = bytes([sub]) + (struct.pack("<Q", 0x401000 + s.int(0, 4096))
                                   if sub == 2 else uleb(s.int(0, 9)))
            n = len(body) if not s.hostile() else s.pick([0, len(body) + 5, 1 << 40])
            out += b"\0" + uleb(n) + body
        elif op in (2, 4, 5, 12):
            out += bytes([op]) + uleb(s.int(0, 1 << 20))
        elif op == 3:
            out += bytes([op]) + sleb(s.int(-500, 500))
        elif op == 9:
            out += bytes([op]) + struct.pack("<H", s.int(0, 0xFFFF))
        else:
            out += bytes([op])
    lengths = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
    if s.hostile():
        lengths = s.bytes(s.int(0, 20))
    start = 0 if not s.hostile() else s.int(-2, len(out) + 2)
    end = len(out) if not s.hostile() else s.int(-2, len(out) + 2)
    return (bytes(out), start, end, s.pick([1, 4]), s.int(-5, 0), s.int(-1, 14) if
            s.hostile() else 14, opcode_base, lengths)


def one(data):
    s = Shape(data)
    if s.flag():
        args = program(s)
        try:
            a, f, ln = _dwarfc.line_rows(*args)
        except (ValueError, OverflowError):
            return
        assert len(a) == 2 * len(f) == 2 * len(ln)
        return
    secs, params, abbrev, offsets, pcs = unit(s)
    abbrev_off = 0 if not s.hostile() else s.int(0, len(abbrev) + 4)
    for pc in pcs:
        try:
            found = _dwarfc.chain(secs, params, abbrev, abbrev_off, pc)
            assert all(params[2] <= off < params[1] for off, _tag in found)
        except (ValueError, OverflowError):
            pass
    for off in offsets[:6] + [s.u64(0)]:
        try:
            _dwarfc.attrs(secs, params, abbrev, abbrev_off, off)
        except (ValueError, OverflowError):
            pass
        try:
            _dwarfc.holds(secs, params, abbrev, abbrev_off, off, pcs[0])
        except (ValueError, OverflowError):
            pass


if __name__ == "__main__":
    fuzz_main(one)
