"""Work on this machine's second processor: C kernels that release the GIL (the address
table's lookups, the dominator pass) run beside the Python that drives the walk.

Only where the process may use two CPUs (its affinity and its cgroup's CPU quota): in a
container held to one, a thread would only take turns with the main one.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from .freemem import one_arena

_spare = None


def two_cpus():
    """Whether this process may run on two CPUs at once (asked once)."""
    global _spare
    if _spare is None:
        from arthur.cgroups import spare_cpus
        try:
            _spare = spare_cpus() >= 2
        except Exception:        # noqa: BLE001 - an odd cgroup tree: one CPU, as before
            _spare = False
    return _spare


THREAD_STACK = 2 << 20      # bytes of stack for nsdebug's own threads


@contextmanager
def small_stacks():
    """Threads started inside get THREAD_STACK bytes of stack, not the default 8 MiB
    (RLIMIT_STACK): a data segment limit (`nsdebug triage`'s, per analysis) counts a
    thread's stack whole, resident or not, and nsdebug's threads run loops in C and
    Python without deep recursion. (glibc keeps a finished thread's stack for the next
    one: the first threads of a process decide.)"""
    old = threading.stack_size(THREAD_STACK)
    try:
        yield
    finally:
        threading.stack_size(old)


def start_thread(target, name):
    """A daemon thread running target(), started after one_arena(), with a small
    stack: every thread nsdebug starts for itself comes from here (Background, the index
    writer, the scratch file's punches) or from small_stacks() (a capture's copy)."""
    one_arena()
    t = threading.Thread(target=target, daemon=True, name=name)
    with small_stacks():
        t.start()
    return t


class Background:
    """fn() running in a thread from now on; result() waits for it and gives its value,
    or raises what it raised. Without a second CPU (or with `threaded` false: fn holds
    the GIL), fn() runs in result() instead."""

    def __init__(self, fn, threaded=True):
        self._fn, self._value, self._error = fn, None, None
        self._thread = None
        if threaded and two_cpus():
            self._thread = start_thread(self._run, "nsdebug-background")

    def _run(self):
        try:
            self._value = self._fn()
        except BaseException as e:        # handed to result()'s caller, raised there
            self._error = e

    def result(self):
        if self._thread is None:
            self._thread = False
            self._run()
        elif self._thread:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def halves(fn, n, least):
    """fn(lo, hi) over [0, n): as two halves at once when n >= least and a second CPU is
    there (fn must release the GIL and touch only its own part), else in one call."""
    if n < least or not two_cpus():
        fn(0, n)
        return
    mid = n // 2
    other = Background(lambda: fn(mid, n))
    fn(0, mid)
    other.result()
