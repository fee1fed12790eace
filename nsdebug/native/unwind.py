"""A thread's native stack from its registers: call frame information first, the signal
trampoline's saved context, and a frame-pointer or stack-scan guess only where no CFI
covers the code (marked so). Bounded: a corrupt stack ends the walk, never loops."""

from __future__ import annotations

import struct

from ..errors import NsdebugError
from ..record import record
from .cfi import RA, CfiError, ModuleCfi, Row, eval_expr

MAX_FRAMES = 512
SCAN_WORDS = 512
# DWARF register numbers of x86-64 and the names of user_regs_struct.
DWARF_REGS = ("rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
              "r11", "r12", "r13", "r14", "r15", "rip")
CALLEE_SAVED = (3, 6, 12, 13, 14, 15)          # rbx rbp r12-r15: kept across calls
# struct ucontext: uc_mcontext.gregs at +40, in this order (REG_R8 ... REG_RIP).
UC_GREGS = 40
GREG_ORDER = (8, 9, 10, 11, 12, 13, 14, 15, 5, 4, 6, 3, 1, 0, 2, 7, 16)
SIGRETURN = ("__restore_rt",)


@record
class NativeFrame:
    pc: int
    cfa: int                     # the frame's stack pointer on entry (its caller's rsp)
    regs: dict                   # DWARF number -> value, None when not recoverable
    how: str                     # "registers", "cfi", "signal", "frame pointer", "scan"
    function: str | None = None
    offset: int = 0
    module: str | None = None
    signal_frame: bool = False   # a signal handler's trampoline: the next is interrupted
    func_start: int | None = None  # where its function's code starts (its FDE), if known

    @property
    def guess(self):
        return self.how in ("frame pointer", "scan")

    def register(self, name):
        return self.regs.get(DWARF_REGS.index(name))


class Unwinder:
    def __init__(self, process, symbolizer, memo=None):
        self.process = process
        self.mem = process.memory
        self.sym = symbolizer
        self._cfi = {}
        # memo(module) -> (get(pc), put(pc, row)) of rows kept between runs, or None.
        self._memo = memo

    def _u64(self, addr):
        return struct.unpack("<Q", self.mem.read(addr, 8))[0]

    def _module_cfi(self, module):
        if module.path not in self._cfi:
            cfi = None
            if module.file is not None:
                cfi = ModuleCfi(module.file, lambda m=module: self.sym.debug_file(m))
            self._cfi[module.path] = cfi
        return self._cfi[module.path]

    def _is_code(self, addr):
        seg = self.mem.find_segment(addr)
        return seg is not None and "x" in seg.perms

    def unwind(self, thread):
        """Frames of a core thread, innermost first."""
        regs = {i: thread.regs.get(n) for i, n in enumerate(DWARF_REGS)}
        frames = []
        how, after_signal = "registers", True
        seen = set()
        while len(frames) < MAX_FRAMES:
            pc = regs.get(RA)
            if not pc or not self._is_code(pc):
                break
            lookup = pc if after_signal else pc - 1
            name, off, m = self.sym.symbolize(lookup)
            if not after_signal:
                off += 1
            frame = NativeFrame(pc, regs.get(7) or 0, regs, how, name, off,
                                m.name if m else None)
            frames.append(frame)
            key = (pc, regs.get(7))
            if key in seen:
                break
            seen.add(key)
            try:
                nxt = self._step(frame, m, after_signal)
            except (NsdebugError, CfiError, struct.error, IndexError, ZeroDivisionError):
                nxt = None
            if frame.signal_frame and not after_signal:
                # A signal trampoline's "return address" is its first instruction (its
                # CIE says so): named at pc, not at the call before it.
                name, off, _m = self.sym.symbolize(pc)
                frame.function, frame.offset = name, off
            if nxt is None:
                break
            regs, how, after_signal = nxt
            frame.cfa = regs.get(7) or 0
            if frame.regs.get(7) is not None and regs.get(7) is not None and \
                    regs[7] <= frame.regs[7] and how != "signal":
                break                    # the stack must grow toward the caller
        return frames

    def _step(self, frame, module, after_signal):
        """(caller's registers, how they were found, caller interrupted by a signal)."""
        regs = frame.regs
        if frame.function in SIGRETURN:
            frame.signal_frame = True
            return self._sigreturn(regs), "signal", True
        row = None
        if module is not None:
            lookup = frame.pc if after_signal else frame.pc - 1
            hit = self._row(module, lookup - module.bias)
            if hit is not None:
                row, begin, signal = hit
                frame.func_start = begin + module.bias
                if signal:
                    frame.signal_frame = True
        if row is not None:
            return self._apply(row, regs), "cfi", frame.signal_frame
        return self._guess(regs)

    def _row(self, module, pc):
        """(Row, function start, signal frame) for file address pc of a module, or
        None: from the rows kept between runs, else from its CFI (and then kept)."""
        memo = self._memo(module) if self._memo is not None else None
        if memo is not None:
            kept = memo[0](pc)
            if kept is not None:
                if kept is False:
                    return None
                row = Row()
                row.cfa_reg, row.cfa_off, row.cfa_expr = kept[0], kept[1], kept[2]
                row.rules = {reg: (kind, value) for reg, kind, value in kept[3]}
                return row, kept[4], kept[5]
        cfi = self._module_cfi(module)
        hit = cfi.row_for(pc) if cfi is not None else None
        if hit is not None:
            row, cie, begin = hit
            hit = row, begin, bool(cie.signal)
        if memo is not None and cfi is not None:
            memo[1](pc, False if hit is None else (
                row.cfa_reg, row.cfa_off, row.cfa_expr,
                tuple((reg, kind, value) for reg, (kind, value) in row.rules.items()),
                begin, bool(cie.signal)))
        return hit

    def _apply(self, row, regs):
        if row.cfa_expr is not None:
            cfa = eval_expr(row.cfa_expr, regs, self._u64)
        else:
            base = regs.get(row.cfa_reg)
            if base is None:
                raise CfiError("the CFA's register is unknown")
            cfa = (base + row.cfa_off) & ((1 << 64) - 1)
        out = {i: None for i in range(17)}
        for i in CALLEE_SAVED:
            out[i] = regs.get(i)
        for reg, (kind, val) in row.rules.items():
            if reg > 16:
                continue
            if kind == "u":
                out[reg] = None
            elif kind == "s":
                out[reg] = regs.get(reg)
            elif kind == "o":
                out[reg] = self._u64(cfa + val)
            elif kind == "v":
                out[reg] = cfa + val
            elif kind == "r":
                out[reg] = regs.get(val)
            elif kind == "e":
                out[reg] = self._u64(eval_expr(val, regs, self._u64, cfa))
            elif kind == "x":
                out[reg] = eval_expr(val, regs, self._u64, cfa)
        if RA not in row.rules:
            out[RA] = None               # no rule for the return address: the outermost
        out[7] = cfa
        return out

    def _sigreturn(self, regs):
        """The interrupted context from the ucontext the kernel pushed (rsp points at it
        when the handler has returned into __restore_rt)."""
        sp = regs.get(7)
        raw = self.mem.read(sp + UC_GREGS, 8 * len(GREG_ORDER))
        vals = struct.unpack(f"<{len(GREG_ORDER)}Q", raw)
        return {dw: v for dw, v in zip(GREG_ORDER, vals)}

    def _guess(self, regs):
        """No CFI for this code: the frame-pointer chain when it looks sane, else the
        first word up the stack that points just after a call in executable code."""
        sp, fp = regs.get(7), regs.get(6)
        out = {i: None for i in range(17)}
        if fp and sp and sp <= fp < sp + (1 << 20) and fp % 8 == 0:
            try:
                ra, saved_fp = self._u64(fp + 8), self._u64(fp)
            except NsdebugError:
                ra = None
            if ra and self._is_code(ra):
                out.update({6: saved_fp, 7: fp + 16, RA: ra})
                return out, "frame pointer", False
        if not sp:
            return None
        for k in range(SCAN_WORDS):
            try:
                w = self._u64(sp + 8 * k)
            except NsdebugError:
                return None
            if self._is_code(w) and self._after_call(w):
                out.update({7: sp + 8 * k + 8, RA: w, 6: fp})
                return out, "scan", False
        return None

    def _after_call(self, addr):
        """True when the instruction before `addr` is a call (e8 rel32, or ff /2)."""
        try:
            before = self.mem.read(addr - 7, 7)
        except NsdebugError:
            return True          # the code is not in the core: accept, it is a guess
        if before[2] == 0xE8:
            return True
        for back in (2, 3, 6, 7):
            b = before[7 - back:]
            if b[0] == 0xFF and (b[1] >> 3) & 7 == 2:
                return True
            if len(b) > 1 and b[0] in (0x41, 0x48, 0x49) and len(b) > 2 and b[1] == 0xFF \
                    and (b[2] >> 3) & 7 == 2:
                return True
        return False
