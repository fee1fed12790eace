"""The _thread module's lock objects as each release lays them out, and how a thread
blocked on one shows in its registers.

3.8-3.13 (Modules/_threadmodule.c): a lock is {PyObject_HEAD; PyThread_type_lock
lock_lock; ...; char locked at +32} and an RLock {PyObject_HEAD; PyThread_type_lock
rlock_lock; unsigned long rlock_owner; unsigned long rlock_count; ...}; the
PyThread_type_lock is a sem_t whose value word a blocked thread waits on in futex.
3.14+ (and a lock of the later 3.13 patch releases): a lock is {PyObject_HEAD; PyMutex}
and an RLock {PyObject_HEAD; _PyRecursiveMutex {PyMutex; thread ident; level}} (level
counts the acquisitions past the first); a thread blocked on a PyMutex parks on a
semaphore of its own, in a wait entry on its stack whose word just before the semaphore
is the mutex's address. Which form an object has is read from it, not from the version:
a PyMutex is a byte of flags, the older first field a pointer to a semaphore.
"""

from __future__ import annotations

import struct

from ..errors import NsdebugError
from ..record import record

LOCK_TYPES = {"_thread.lock": "Lock", "_thread.RLock": "RLock"}
BODY = 16                                   # after PyObject_HEAD
# A bound method's self: PyCFunctionObject.m_self and PyMethodObject.im_self, both
# after PyObject_HEAD and one pointer.
BOUND_SELF = 24


@record
class LockState:
    address: int
    kind: str                   # "Lock" or "RLock"
    locked: bool
    wait_word: int              # the address a thread blocked on it waits at (3.8-3.13)
    mutex: int                  # the PyMutex's address (3.14+), else 0
    owner_ident: int = 0        # RLock: threading.get_ident() of its owner, 0 if free
    count: int = 0              # RLock: how many times its owner holds it


def lock_kind(objects, addr):
    """"Lock", "RLock" or None for the object at addr."""
    try:
        return LOCK_TYPES.get(objects.info(addr).name)
    except NsdebugError:
        return None


def lock_state(objects, addr, kind):
    """LockState of a lock object (NsdebugError when unreadable)."""
    w = struct.unpack("<3Q", objects.mem.read(addr + BODY, 24))
    if w[0] < 0x100:                        # PyMutex flags, not a semaphore's address
        locked = bool(w[0] & 1)
        if kind == "RLock":
            return LockState(addr, kind, locked, 0, addr + BODY, w[1] if locked else 0,
                             w[2] + 1 if locked else 0)
        return LockState(addr, kind, locked, 0, addr + BODY)
    if kind == "RLock":
        return LockState(addr, kind, bool(w[1] and w[2]), w[0], 0, w[1] if w[2] else 0, w[2])
    return LockState(addr, kind, bool(w[2] & 0xFF), w[0], 0)


def waits_on(state, futex_addr, read_ptr):
    """Whether a thread blocked in futex at `futex_addr` waits for this lock."""
    if not futex_addr:
        return False
    if state.mutex:
        try:
            return read_ptr(futex_addr - 8) == state.mutex
        except NsdebugError:
            return False
    return futex_addr == state.wait_word
