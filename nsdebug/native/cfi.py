"""Call frame information: for a code address, the rule that recovers the caller's
registers (DWARF's CIE/FDE programs, as .eh_frame and .debug_frame hold them).

An FDE is found through .eh_frame_hdr's sorted table (a binary search, no parse of the
whole section), else in .debug_frame, indexed once per module. Only the FDE and CIE of
the address are decoded, and their program is run up to the address.
"""

from __future__ import annotations

import struct
from bisect import bisect_right

from ..errors import NsdebugError

PT_LOAD, PT_GNU_EH_FRAME = 1, 0x6474E550
RA = 16                     # DWARF column of the return address (rip) on x86-64
MAX_PROGRAM = 1 << 16       # bytes of CFA program run at most
MAX_EXPR_STEPS = 256


class CfiError(NsdebugError):
    pass


class Reader:
    """Little-endian DWARF values from `data`, which sits at virtual address `base`."""

    def __init__(self, data, base=0, pos=0):
        self.data, self.base, self.pos = data, base, pos

    def need(self, n):
        if self.pos + n > len(self.data):
            raise CfiError("call frame information runs past its section")

    def u8(self):
        self.need(1)
        self.pos += 1
        return self.data[self.pos - 1]

    def fixed(self, fmt):
        n = struct.calcsize("<" + fmt)
        self.need(n)
        (v,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += n
        return v

    def uleb(self):
        out = shift = 0
        while True:
            b = self.u8()
            out |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80 or shift > 63:
                return out & ((1 << 64) - 1)

    def sleb(self):
        out = shift = 0
        while True:
            b = self.u8()
            out |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                if b & 0x40:
                    out -= 1 << shift
                return out
            if shift > 63:
                return out

    def cstr(self):
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise CfiError("unterminated augmentation string")
        s = bytes(self.data[self.pos:end])
        self.pos = end + 1
        return s

    def encoded(self, enc, datarel=0, funcrel=0):
        """A pointer in DW_EH_PE encoding `enc`."""
        if enc == 0xFF:
            return None
        at = self.base + self.pos
        fmt = enc & 0x0F
        if fmt == 0x00:
            v = self.fixed("Q")
        elif fmt == 0x01:
            v = self.uleb()
        elif fmt == 0x09:
            v = self.sleb()
        else:
            v = self.fixed({0x02: "H", 0x03: "I", 0x04: "Q", 0x0A: "h", 0x0B: "i",
                            0x0C: "q"}.get(fmt) or self._bad(enc))
        app = enc & 0x70
        if app == 0x10:
            v += at
        elif app == 0x30:
            v += datarel
        elif app == 0x40:
            v += funcrel
        elif app not in (0x00,):
            self._bad(enc)
        return v & ((1 << 64) - 1)

    @staticmethod
    def _bad(enc):
        raise CfiError(f"unsupported pointer encoding {enc:#x}")


class Cie:
    def __init__(self, r, end, eh):
        self.version = r.u8()
        self.aug = r.cstr()
        if self.version >= 4:
            r.u8()          # address size
            r.u8()          # segment size
        self.code_align = r.uleb()
        self.data_align = r.sleb()
        self.ra = r.u8() if self.version == 1 else r.uleb()
        self.fde_enc = 0x00          # absolute 8-byte pointers unless 'R' says
        self.signal = False
        self.has_z = self.aug.startswith(b"z")
        if self.has_z:
            length = r.uleb()
            after = r.pos + length
            for c in self.aug[1:]:
                if c == ord("R"):
                    self.fde_enc = r.u8()
                elif c == ord("P"):
                    r.encoded(r.u8() & 0x7F)
                elif c == ord("L"):
                    r.u8()
                elif c == ord("S"):
                    self.signal = True
            r.pos = after
        elif self.aug not in (b"",):
            raise CfiError(f"unknown CIE augmentation {self.aug!r}")
        self.program = bytes(r.data[r.pos:end])


class Row:
    """The rules at one address: CFA = reg + offset (or an expression), and per register
    ('u' undefined, 's' same value, 'o' at CFA+n, 'v' is CFA+n, 'r' in register n,
    'e' at the address an expression computes, 'x' the expression's value)."""

    __slots__ = ("cfa_reg", "cfa_off", "cfa_expr", "rules")

    def __init__(self):
        self.cfa_reg, self.cfa_off, self.cfa_expr, self.rules = 7, 8, None, {}

    def copy(self):
        r = Row()
        r.cfa_reg, r.cfa_off, r.cfa_expr = self.cfa_reg, self.cfa_off, self.cfa_expr
        r.rules = dict(self.rules)
        return r


def run_program(program, cie, row, start, target, initial, trace=None):
    """Run a CFA program from address `start` until the row for `target` is known; with
    `trace` (a list), to its end, appending (address, Row) each time the address moves
    on: the row that holds from that address to the next one's."""
    r = Reader(program)
    loc = start
    stack = []
    ca, da = cie.code_align, cie.data_align
    steps = 0
    while r.pos < len(program):
        steps += 1
        if steps > MAX_PROGRAM:
            raise CfiError("call frame program too long")
        before = loc
        op = r.u8()
        hi, lo = op & 0xC0, op & 0x3F
        if hi == 0x40:                                # advance_loc
            loc += lo * ca
        elif hi == 0x80:                              # offset
            row.rules[lo] = ("o", r.uleb() * da)
        elif hi == 0xC0:                              # restore
            _restore(row, initial, lo)
        elif op == 0x00:
            pass
        elif op == 0x01:
            loc = r.fixed("Q")
        elif op in (0x02, 0x03, 0x04):
            loc += r.fixed({0x02: "B", 0x03: "H", 0x04: "I"}[op]) * ca
        elif op == 0x05:
            reg = r.uleb()
            row.rules[reg] = ("o", r.uleb() * da)
        elif op == 0x06:
            _restore(row, initial, r.uleb())
        elif op == 0x07:
            row.rules[r.uleb()] = ("u", 0)
        elif op == 0x08:
            row.rules[r.uleb()] = ("s", 0)
        elif op == 0x09:
            reg = r.uleb()
            row.rules[reg] = ("r", r.uleb())
        elif op == 0x0A:
            stack.append(row.copy())
        elif op == 0x0B:
            if not stack:
                raise CfiError("restore_state without remember_state")
            saved = stack.pop()
            row.cfa_reg, row.cfa_off, row.cfa_expr = saved.cfa_reg, saved.cfa_off, \
                saved.cfa_expr
            row.rules = saved.rules
        elif op == 0x0C:
            row.cfa_reg, row.cfa_off, row.cfa_expr = r.uleb(), r.uleb(), None
        elif op == 0x0D:
            row.cfa_reg, row.cfa_expr = r.uleb(), None
        elif op == 0x0E:
            row.cfa_off, row.cfa_expr = r.uleb(), None
        elif op == 0x0F:
            n = r.uleb()
            r.need(n)
            row.cfa_expr = bytes(program[r.pos:r.pos + n])
            r.pos += n
        elif op in (0x10, 0x16):
            reg, n = r.uleb(), r.uleb()
            r.need(n)
            row.rules[reg] = ("e" if op == 0x10 else "x", bytes(program[r.pos:r.pos + n]))
            r.pos += n
        elif op == 0x11:
            reg = r.uleb()
            row.rules[reg] = ("o", r.sleb() * da)
        elif op == 0x12:
            row.cfa_reg, row.cfa_off, row.cfa_expr = r.uleb(), r.sleb() * da, None
        elif op == 0x13:
            row.cfa_off, row.cfa_expr = r.sleb() * da, None
        elif op == 0x14:
            reg = r.uleb()
            row.rules[reg] = ("v", r.uleb() * da)
        elif op == 0x15:
            reg = r.uleb()
            row.rules[reg] = ("v", r.sleb() * da)
        elif op == 0x2E:                              # GNU_args_size
            r.uleb()
        elif op == 0x2F:                              # GNU_negative_offset_extended
            reg = r.uleb()
            row.rules[reg] = ("o", -r.uleb() * da)
        else:
            raise CfiError(f"unknown call frame instruction {op:#x}")
        if trace is not None and loc != before:
            trace.append((before, row.copy()))
        if loc > target:
            break
    if trace is not None:
        trace.append((loc, row.copy()))
    return row


def _restore(row, initial, reg):
    if initial is not None and reg in initial.rules:
        row.rules[reg] = initial.rules[reg]
    else:
        row.rules.pop(reg, None)


def eval_expr(expr, regs, read_u64, push=None):
    """A DWARF expression over the frame's registers (None where unknown)."""
    r = Reader(expr)
    stack = [] if push is None else [push]
    steps = 0
    while r.pos < len(expr):
        steps += 1
        if steps > MAX_EXPR_STEPS:
            raise CfiError("expression too long")
        op = r.u8()
        if 0x30 <= op <= 0x4F:
            stack.append(op - 0x30)
        elif 0x70 <= op <= 0x8F or op == 0x92:
            reg = op - 0x70 if op != 0x92 else r.uleb()
            if regs.get(reg) is None:
                raise CfiError(f"expression needs unknown register {reg}")
            stack.append(regs[reg] + r.sleb())
        elif op in (0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F):
            stack.append(r.fixed({0x08: "B", 0x09: "b", 0x0A: "H", 0x0B: "h", 0x0C: "I",
                                  0x0D: "i", 0x0E: "Q", 0x0F: "q"}[op]))
        elif op == 0x10:
            stack.append(r.uleb())
        elif op == 0x11:
            stack.append(r.sleb())
        elif op == 0x12:
            stack.append(stack[-1])
        elif op == 0x13:
            stack.pop()
        elif op == 0x14:
            stack.append(stack[-2])
        elif op == 0x15:
            stack.append(stack[-1 - r.u8()])
        elif op == 0x16:
            stack[-1], stack[-2] = stack[-2], stack[-1]
        elif op == 0x06:
            stack.append(read_u64(stack.pop()))
        elif op == 0x23:
            stack.append(stack.pop() + r.uleb())
        elif op in _BINARY:
            b, a = stack.pop(), stack.pop()
            stack.append(_BINARY[op](a, b))
        elif op == 0x1F:
            stack.append(-stack.pop())
        elif op == 0x20:
            stack.append(~stack.pop())
        elif op == 0x2F:
            n = r.fixed("h")
            r.pos += n
        elif op == 0x28:
            n = r.fixed("h")
            if stack.pop():
                r.pos += n
        elif op == 0x96:
            pass
        else:
            raise CfiError(f"unsupported expression operation {op:#x}")
        if stack:
            stack[-1] &= (1 << 64) - 1
    if not stack:
        raise CfiError("empty expression")
    return stack[-1]


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


_BINARY = {
    0x1A: lambda a, b: a & b, 0x1B: lambda a, b: (a // b) if b else 0,
    0x1C: lambda a, b: a - b, 0x1D: lambda a, b: (a % b) if b else 0,
    0x1E: lambda a, b: a * b, 0x21: lambda a, b: a | b, 0x22: lambda a, b: a + b,
    0x24: lambda a, b: a << b if b < 64 else 0, 0x25: lambda a, b: a >> b if b < 64 else 0,
    0x26: lambda a, b: _signed(a) >> min(b, 63), 0x27: lambda a, b: a ^ b,
    0x29: lambda a, b: int(a == b), 0x2A: lambda a, b: int(_signed(a) >= _signed(b)),
    0x2B: lambda a, b: int(_signed(a) > _signed(b)),
    0x2C: lambda a, b: int(_signed(a) <= _signed(b)),
    0x2D: lambda a, b: int(_signed(a) < _signed(b)), 0x2E: lambda a, b: int(a != b),
}


class ModuleCfi:
    """The call frame information of one ELF file (file addresses, not runtime)."""

    def __init__(self, elf_file, debug_file=None):
        self.elf = elf_file
        self._debug = debug_file         # the debug file, or a callable giving it
        self._cies = {}
        self._hdr = None
        self._debug_index = None
        self._rows = {}
        self._tables = {}           # FDE start -> None (run once) or ([address], [Row])
        self._initial = {}          # id(CIE) -> the row its initial instructions make

    # -- finding the FDE -----------------------------------------------------
    def _read_vaddr(self, f, vaddr, size):
        """Bytes at file virtual address `vaddr` of ELF file `f`, through its PT_LOADs."""
        for p in f.phdrs:
            if p.p_type == PT_LOAD and p.p_vaddr <= vaddr and vaddr + size <= \
                    p.p_vaddr + p.p_filesz:
                data = f.source.read(p.p_offset + vaddr - p.p_vaddr, size)
                if len(data) == size:
                    return data
        raise CfiError(f"call frame data at {vaddr:#x} is not in the file")

    def _header(self):
        if self._hdr is None:
            self._hdr = False
            ph = next((p for p in self.elf.phdrs if p.p_type == PT_GNU_EH_FRAME), None)
            if ph is not None and ph.p_filesz >= 12:
                data = self.elf.source.read(ph.p_offset, ph.p_filesz)
                if len(data) == ph.p_filesz and data[0] == 1:
                    r = Reader(data, ph.p_vaddr, 4)
                    r.encoded(data[1])                      # eh_frame_ptr
                    count = r.encoded(data[2])
                    enc = data[3]
                    if enc == 0x3B and count and r.pos + 8 * count <= len(data):
                        table = struct.unpack_from(f"<{2 * count}i", data, r.pos)
                        self._hdr = ([t + ph.p_vaddr for t in table[0::2]],
                                     [t + ph.p_vaddr for t in table[1::2]])
        return self._hdr

    def _eh_fde(self, pc):
        hdr = self._header()
        if not hdr:
            return None
        starts, fdes = hdr
        i = bisect_right(starts, pc) - 1
        if i < 0:
            return None
        return self._parse_fde(self.elf, fdes[i], eh=True)

    def _entry(self, f, vaddr, eh, section=None):
        """(data, base, length field end, end) of the CIE or FDE at vaddr."""
        if section is not None:
            data, base = section
            off = vaddr - base
            (length,) = struct.unpack_from("<I", data, off)
            if length == 0xFFFFFFFF:
                raise CfiError("64-bit DWARF call frame entries are not supported")
            return data, base, off + 4, off + 4 + length
        head = self._read_vaddr(f, vaddr, 4)
        (length,) = struct.unpack("<I", head)
        if length in (0, 0xFFFFFFFF) or length > 1 << 20:
            raise CfiError(f"call frame entry at {vaddr:#x} has length {length:#x}")
        data = self._read_vaddr(f, vaddr, 4 + length)
        return data, vaddr, 4, 4 + length

    def _cie(self, f, vaddr, eh, section=None):
        key = (id(f), vaddr, eh)
        if key not in self._cies:
            data, base, pos, end = self._entry(f, vaddr, eh, section)
            r = Reader(data, base, pos + 4)
            self._cies[key] = Cie(r, end, eh)
        return self._cies[key]

    def _parse_fde(self, f, vaddr, eh, section=None):
        data, base, pos, end = self._entry(f, vaddr, eh, section)
        r = Reader(data, base, pos)
        cie_ptr = r.fixed("I")
        if eh:
            cie_at = base + pos - cie_ptr
        else:
            cie_at = section[1] + cie_ptr
        cie = self._cie(f, cie_at, eh, section)
        if eh:
            pc_begin = r.encoded(cie.fde_enc)
            pc_range = r.encoded(cie.fde_enc & 0x0F)
        else:
            pc_begin, pc_range = r.fixed("Q"), r.fixed("Q")
        if cie.has_z:
            n = r.uleb()
            r.pos += n
        return cie, pc_begin, pc_range, bytes(data[r.pos:end])

    def _debug_fde(self, pc):
        if self._debug_index is None:
            self._debug_index = self._index_debug_frame()
        if not self._debug_index:
            return None
        starts, rows, section = self._debug_index
        i = bisect_right(starts, pc) - 1
        if i < 0:
            return None
        return self._parse_fde(section[2], rows[i], eh=False, section=section[:2])

    def _index_debug_frame(self):
        debug = self._debug() if callable(self._debug) else self._debug
        for f in (debug, self.elf):
            if f is None:
                continue
            try:
                sec = f.section(".debug_frame")
            except NsdebugError:
                sec = None
            if sec is None or not sec.sh_size or sec.sh_type == 8:
                continue
            data = f.source.read(sec.sh_offset, sec.sh_size)
            starts, rows = [], []
            off = 0
            while off + 12 <= len(data):
                (length,) = struct.unpack_from("<I", data, off)
                if length == 0 or length == 0xFFFFFFFF:
                    break
                (cie_id,) = struct.unpack_from("<I", data, off + 4)
                if cie_id != 0xFFFFFFFF and off + 4 + length <= len(data) and length >= 20:
                    (begin,) = struct.unpack_from("<Q", data, off + 8)
                    starts.append(begin)
                    rows.append(off)
                off += 4 + length
            order = sorted(range(len(starts)), key=starts.__getitem__)
            return ([starts[i] for i in order], [rows[i] for i in order], (data, 0, f))
        return False

    # -- the rule for an address ----------------------------------------------
    def row_for(self, pc):
        """(Row, CIE, start of the FDE's code) for file address `pc`, or None when no FDE
        covers it. The FDE's start names the function even where no symbol does."""
        hit = self._rows.get(pc)
        if hit is not None:
            return hit
        found = None
        for finder in (self._eh_fde, self._debug_fde):
            fde = finder(pc)
            if fde is not None and fde[1] <= pc < fde[1] + fde[2]:
                found = fde
                break
        if found is None:
            return None
        cie, begin, _rng, program = found
        initial = self._initial.get(id(cie))
        if initial is None:
            initial = self._initial[id(cie)] = run_program(cie.program, cie, Row(), begin,
                                                           1 << 64, None)
        table = self._tables.get(begin)
        if table is None and begin in self._tables:
            # A second pc in this function (the eval loop's, once per Python call
            # nesting): its program is run once to the end and its rows kept.
            trace = []
            run_program(program, cie, initial.copy(), begin, 1 << 64, initial, trace)
            table = self._tables[begin] = ([a for a, _r in trace], [r for _a, r in trace])
        if table is not None:
            row = table[1][max(0, bisect_right(table[0], pc) - 1)]
        else:
            self._tables[begin] = None
            row = run_program(program, cie, initial.copy(), begin, pc, initial)
        self._rows[pc] = (row, cie, begin)
        return row, cie, begin
