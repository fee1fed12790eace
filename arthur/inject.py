"""One system call run inside a stopped thread of the target, safe even if arthur dies.

arthur could be killed (SIGKILL, the OOM killer, a dropped SSH session) at any instant.
A killed tracer detaches: its threads resume with whatever registers they hold. So the
registers arthur gives a thread must be a program that ends where the thread was, by
itself:

    rip = a `syscall; ret` sequence in the target's code (libc has many)
    rax, rdi, rsi, ... = the system call (clone, or wait4) and its arguments
    rsp = F, a signal frame arthur wrote below the thread's stack pointer and red zone:
          [F]      the address of `__restore_rt` (mov $15, %rax; syscall: rt_sigreturn)
          [F+8]    a ucontext with the thread's own registers, signal mask and FPU state

The thread runs the system call, `ret` pops __restore_rt, and rt_sigreturn loads the
frame: the thread is back exactly where it was (an interrupted system call is
restarted, as the kernel would have). clone() gives the child its own stack pointer,
X, with a frame whose registers are `exit_group(0)`: unless arthur holds it stopped
from birth and dumps it, the child exits at once. What the target does if arthur
vanishes at each instant:

- before the registers are set: nothing changed; the frames sit in dead stack space;
- registers set, the system call not yet run: it runs the call, then returns through
  the frame to where it was (a clone child exits at once, and stays a zombie until the
  next capture or `arthur reap` reaps it);
- inside or after the call, before arthur restores the registers: the same return;
- registers restored: the thread is as it was.

When arthur lives, it does not use the frame: it restores the saved registers itself
in a signal-path stop, so that restart semantics are the kernel's own.
"""

from __future__ import annotations

import os
import struct

from . import ptrace as pt
from .errors import ArthurError, TargetGone

SYSCALL_RET = b"\x0f\x05\xc3"                     # syscall; ret
RESTORE_RT = (b"\x48\xc7\xc0\x0f\x00\x00\x00\x0f\x05",   # mov $15, %rax; syscall
              b"\xb8\x0f\x00\x00\x00\x0f\x05")            # mov $15, %eax; syscall
SYS_EXIT_GROUP = 231
RED_ZONE = 128
FRAME_SIZE = 960          # pretcode 8, ucontext 304, siginfo 128, fxsave 512 at +448
CHILD_FRAME_SIZE = 448    # the child's frame has no FPU state
FPSTATE_AT = 448
UC_MCONTEXT_AT = 8 + 40   # pretcode, then uc_flags, uc_link, uc_stack
UC_SIGMASK_AT = 8 + 296
UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS = 2, 4
# uc_stack.ss_flags that rt_sigreturn's restore_altstack() rejects (EINVAL, ignored):
# the thread's sigaltstack is left as it is.
SS_KEEP = 3
ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK = 512, 513, 514, 516
EINTR = 4

_SIGCONTEXT_REGS = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi",
                    "rbp", "rbx", "rdx", "rax", "rcx", "rsp", "rip", "eflags")


class Gadgets:
    """Addresses in the target's code: `syscall; ret` and `__restore_rt`."""

    def __init__(self, syscall_ret, restore_rt):
        self.syscall_ret = syscall_ret
        self.restore_rt = restore_rt


def find_gadgets(pid, maps):
    """Both sequences, from the executable file mappings (libc first)."""
    code = [m for m in maps if "x" in m.perms and m.readable and m.is_file]
    code.sort(key=lambda m: "libc" not in os.path.basename(m.path))
    found = {}
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for m in code:
            try:
                data = os.pread(mem.fileno(), min(m.size, 32 << 20), m.start)
            except OSError:
                continue
            if "ret" not in found:
                k = data.find(SYSCALL_RET)
                if k >= 0:
                    found["ret"] = m.start + k
            if "rt" not in found:
                for pattern in RESTORE_RT:
                    k = data.find(pattern)
                    if k >= 0:
                        found["rt"] = m.start + k
                        break
            if len(found) == 2:
                return Gadgets(found["ret"], found["rt"])
    raise ArthurError("the target's code has no `syscall; ret` or no rt_sigreturn "
                      "sequence to return through (is it linked against glibc or musl?)")


def resumed_registers(regs):
    """The registers the thread resumes with when nothing else runs: a system call
    interrupted by the stop restarts (rax back to its number, rip back onto the
    `syscall`), as the kernel does on resume; one restarted through a restart block
    returns EINTR instead (rt_sigreturn cancels restart blocks)."""
    r = regs.copy()
    nr = _signed(r.orig_rax)
    err = -_signed(r.rax)
    if nr >= 0 and err in (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND):
        r.rax, r.rip = r.orig_rax, r.rip - 2
    elif nr >= 0 and err == ERESTART_RESTARTBLOCK:
        r.rax = (-EINTR) & 0xFFFFFFFFFFFFFFFF
    return r


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def sigframe(regs, at, restore_rt, sigmask, fxsave=None):
    """The bytes of an x86-64 rt_sigframe at address `at`: rt_sigreturn there loads
    `regs`, `sigmask`, and the FXSAVE image `fxsave` (None: no FPU state)."""
    size = FRAME_SIZE if fxsave is not None else CHILD_FRAME_SIZE
    frame = bytearray(size)
    struct.pack_into("<Q", frame, 0, restore_rt)
    struct.pack_into("<Q", frame, 8, UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS)
    struct.pack_into("<QiiQ", frame, 8 + 16, 0, SS_KEEP, 0, 0)        # uc_stack
    sc = UC_MCONTEXT_AT
    struct.pack_into("<18Q", frame, sc, *(getattr(regs, n) for n in _SIGCONTEXT_REGS))
    struct.pack_into("<4H", frame, sc + 144, regs.cs & 0xFFFF, 0, 0, regs.ss & 0xFFFF)
    fp = at + FPSTATE_AT if fxsave is not None else 0
    struct.pack_into("<Q", frame, sc + 184, fp)                           # fpstate
    struct.pack_into("<Q", frame, UC_SIGMASK_AT, sigmask & 0xFFFFFFFFFFFFFFFF)
    if fxsave is not None:
        image = bytearray(fxsave)
        image[464:512] = bytes(48)     # no xstate magic: the kernel restores FXSAVE only
        frame[FPSTATE_AT:FPSTATE_AT + 512] = image
    return bytes(frame)


class Injector:
    """Runs system calls in seized threads of one target through signal frames."""

    def __init__(self, pid, maps):
        self.pid = pid
        self.maps = maps
        self.gadgets = find_gadgets(pid, maps)

    def frame_place(self, rsp, child):
        """(F, X or None): frame addresses below rsp's red zone, inside the writable
        mapping that holds the stack pointer; None if there is no room."""
        f = (rsp - RED_ZONE - FRAME_SIZE) & ~63
        x = (f - CHILD_FRAME_SIZE) & ~63 if child else None
        low = x if child else f
        for m in self.maps:
            if m.start <= rsp - 1 < m.end:
                if m.writable and m.readable and low >= m.start and m.path != "[heap]":
                    return f, x
                return None
        return None

    def usable(self, seized):
        """Whether a seized thread's stack has room for the frames."""
        return self.frame_place(seized.regs.rsp, True) is not None

    def _write(self, addr, data):
        fd = os.open(f"/proc/{self.pid}/mem", os.O_RDWR)
        try:
            if os.pwrite(fd, data, addr) != len(data) or os.pread(fd, len(data), addr) != data:
                raise ArthurError(f"cannot write the return frame at {addr:#x}")
        except OSError as e:
            raise ArthurError(f"cannot write the return frame at {addr:#x}: "
                              f"{e.strerror}") from None
        finally:
            os.close(fd)

    def run(self, tid, seized, nr, args, child=False, on_set=None):
        """Run system call `nr` in the stopped thread `tid` (whose saved state is
        `seized`); returns (result, the new child's pid or None). The thread is left in
        a signal-path stop with its own registers restored. `on_set` is called once the
        injected registers are in place (tests end arthur there)."""
        place = self.frame_place(seized.regs.rsp, child)
        if place is None:
            raise ArthurError(f"thread {tid} has no room below its stack pointer for the "
                              f"return frame")
        f, x = place
        g = self.gadgets
        resume = resumed_registers(seized.regs)
        frames = [(f, sigframe(resume, f, g.restore_rt, seized.sigmask or 0,
                               seized.fpregs.raw()))]
        if child:
            exit_regs = seized.regs.copy()
            exit_regs.rip, exit_regs.rax, exit_regs.rdi = g.syscall_ret, SYS_EXIT_GROUP, 0
            exit_regs.rsp = x + CHILD_FRAME_SIZE
            frames.append((x, sigframe(exit_regs, x, g.restore_rt, ~0)))
        for addr, data in frames:
            self._write(addr, data)
        regs = seized.regs.copy()
        regs.rip, regs.rax, regs.orig_rax, regs.rsp = g.syscall_ret, nr, (1 << 64) - 1, f
        args = list(args) + [0] * 6
        if child:
            args[1] = x                         # clone(flags, newsp, ...)
        regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9 = args[:6]
        pt.set_regs(tid, regs)
        if on_set is not None:
            on_set()
        # Every signal blocked while the call runs: none is taken from the thread's
        # queue (a real-time signal would be lost); the frame, and arthur after the
        # call, give the thread its own mask back.
        masked = seized.sigmask is not None
        if masked:
            pt.set_sigmask(tid, ~0)
        return self._finish(tid, seized, masked)

    def _finish(self, tid, seized, masked):
        born = None
        entered = False
        pt.syscall_step(tid)
        for _ in range(64):
            stop = pt.wait(tid)
            if stop.exited:
                raise TargetGone(f"thread {tid} exited while arthur held it")
            if stop.is_syscall:
                if entered:
                    break
                entered = True
            elif stop.event in (pt.PTRACE_EVENT_CLONE, pt.PTRACE_EVENT_FORK):
                born = pt.event_msg(tid)
            elif stop.is_signal:
                seized.deliver = seized.deliver or stop.sig
            pt.syscall_step(tid)
        else:
            raise ArthurError("the injected system call never finished")
        result = _signed(pt.get_regs(tid).rax)
        # Back to a signal-path stop before restoring: an interrupted system call then
        # restarts on resume exactly as it would have without us.
        pt.interrupt(tid)
        pt.cont(tid)
        for _ in range(64):
            stop = pt.wait(tid)
            if stop.exited:
                raise TargetGone(f"thread {tid} exited while arthur held it")
            if stop.is_interrupt:
                break
            if stop.is_signal:
                seized.deliver = seized.deliver or stop.sig
                break
            pt.cont(tid)
        if masked:
            pt.set_sigmask(tid, seized.sigmask)
        pt.set_regs(tid, seized.regs)
        pt.set_fpregs(tid, seized.fpregs)
        return result, born
