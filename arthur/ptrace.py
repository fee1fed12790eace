"""ptrace through ctypes: seize, interrupt, registers, and running one syscall in a thread."""

from __future__ import annotations

import ctypes
import errno
import os
import signal

from .coreformat import REG_NAMES
from .errors import ArthurError, NotPermitted, TargetGone

PTRACE_CONT = 7
PTRACE_KILL = 8
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_GETFPREGS = 14
PTRACE_SETFPREGS = 15
PTRACE_DETACH = 17
PTRACE_SYSCALL = 24
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_GETSIGMASK = 0x420A
PTRACE_SETSIGMASK = 0x420B

PTRACE_O_TRACESYSGOOD = 0x1
PTRACE_O_TRACEFORK = 0x2
PTRACE_O_TRACECLONE = 0x8
PTRACE_O_EXITKILL = 0x100000

PTRACE_EVENT_FORK = 1
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_STOP = 128
WALL = 0x40000000
WNOHANG = 1

SYS_CLONE = 56
SYS_WAIT4 = 61



class Regs(ctypes.Structure):
    """struct user_regs_struct (x86-64)."""
    _fields_ = [(n, ctypes.c_ulonglong) for n in REG_NAMES]

    def copy(self):
        other = Regs()
        ctypes.memmove(ctypes.byref(other), ctypes.byref(self), ctypes.sizeof(Regs))
        return other

    def raw(self):
        return bytes(self)


class FpRegs(ctypes.Structure):
    """struct user_fpregs_struct: the 512-byte FXSAVE area."""
    _fields_ = [("data", ctypes.c_ubyte * 512)]

    def raw(self):
        return bytes(self)


_libc = ctypes.CDLL(None, use_errno=True)
_ptrace = _libc.ptrace
_ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_ptrace.restype = ctypes.c_long


def ptrace(request, tid, addr=0, data=0):
    ctypes.set_errno(0)
    res = _ptrace(request, tid, ctypes.c_void_p(addr), ctypes.c_void_p(data)
                  if isinstance(data, int) else data)
    if res == -1:
        err = ctypes.get_errno()
        if err:
            if err == errno.ESRCH:
                raise TargetGone(f"thread {tid} is gone (or not stopped)")
            if err == errno.EPERM:
                raise NotPermitted(f"not permitted to trace {tid} (need root or the same "
                                   f"user, and kernel.yama.ptrace_scope allowing it)")
            raise ArthurError(f"ptrace({request:#x}, {tid}) failed: {os.strerror(err)}")
    return res


def seize(tid, options=0):
    ptrace(PTRACE_SEIZE, tid, 0, options)


def interrupt(tid):
    ptrace(PTRACE_INTERRUPT, tid)


def detach(tid, sig=0):
    ptrace(PTRACE_DETACH, tid, 0, sig)


def cont(tid, sig=0):
    ptrace(PTRACE_CONT, tid, 0, sig)


def syscall_step(tid, sig=0):
    ptrace(PTRACE_SYSCALL, tid, 0, sig)


def set_options(tid, options):
    ptrace(PTRACE_SETOPTIONS, tid, 0, options)


def get_regs(tid):
    regs = Regs()
    ptrace(PTRACE_GETREGS, tid, 0, ctypes.addressof(regs))
    return regs


def set_regs(tid, regs):
    ptrace(PTRACE_SETREGS, tid, 0, ctypes.addressof(regs))


def get_fpregs(tid):
    fp = FpRegs()
    ptrace(PTRACE_GETFPREGS, tid, 0, ctypes.addressof(fp))
    return fp


def set_fpregs(tid, fp):
    ptrace(PTRACE_SETFPREGS, tid, 0, ctypes.addressof(fp))


def event_msg(tid):
    msg = ctypes.c_ulong()
    ptrace(PTRACE_GETEVENTMSG, tid, 0, ctypes.addressof(msg))
    return msg.value


def sigmask(tid):
    mask = ctypes.c_ulonglong()
    try:
        ptrace(PTRACE_GETSIGMASK, tid, 8, ctypes.addressof(mask))
    except ArthurError:
        return None
    return mask.value


def set_sigmask(tid, mask):
    value = ctypes.c_ulonglong(mask & 0xFFFFFFFFFFFFFFFF)
    ptrace(PTRACE_SETSIGMASK, tid, 8, ctypes.addressof(value))


class Stop:
    """What waitpid said about a traced thread."""

    def __init__(self, tid, status):
        self.tid = tid
        self.status = status
        self.exited = os.WIFEXITED(status) or os.WIFSIGNALED(status)
        self.stopped = os.WIFSTOPPED(status)
        self.sig = os.WSTOPSIG(status) if self.stopped else 0
        self.event = (status >> 16) & 0xFF if self.stopped else 0

    @property
    def is_syscall(self):
        return self.stopped and self.sig == (signal.SIGTRAP | 0x80)

    @property
    def is_interrupt(self):
        return self.stopped and self.event == PTRACE_EVENT_STOP

    @property
    def is_signal(self):
        """A signal-delivery stop: the thread was about to receive `sig`."""
        return self.stopped and self.event == 0 and not self.is_syscall

    def __repr__(self):
        return f"Stop(tid={self.tid}, sig={self.sig}, event={self.event}, exited={self.exited})"


def wait(tid, nohang=False):
    try:
        pid, status = os.waitpid(tid, WALL | (os.WNOHANG if nohang else 0))
    except ChildProcessError:
        raise TargetGone(f"thread {tid} is gone") from None
    if pid == 0:
        return None
    return Stop(tid, status)
