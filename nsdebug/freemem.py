"""Freed C heap memory given back to the system (glibc's malloc_trim), and the process's
end when it has none left at its limit, for any layer."""

from __future__ import annotations

_malloc_trim = None
_one_arena = False
M_ARENA_MAX = -8            # glibc's mallopt parameter
SMALL_REQUEST = 1 << 20     # a request of at most this refused: the interpreter is out


def release_free_memory():
    """Give the C heap's free pages back to the system (glibc's malloc_trim). Numpy's
    temporaries and a capture's decompressed blocks are made and dropped by the
    thousand; glibc keeps most of that memory unless told (~65 B/object at 1M objects
    in a heap walk). A no-op elsewhere than glibc."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes
            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


def one_arena():
    """Threads started from now on allocate from glibc's main arena, as the main thread
    does (mallopt M_ARENA_MAX 1): called by the model before a heap command starts any
    thread (an arena made before stays, and later threads may be handed it). With
    arenas of their own, the threads' freed memory stayed with the process: a walk of
    1M objects peaked at 96-103 MiB with its dominator pass in a thread, a capture's at
    88-93 MiB with its copy's threads, against 72-76 MiB in one arena. The threads here
    allocate a few large arrays, not often enough for the arena's lock to matter. A
    no-op elsewhere than glibc."""
    global _one_arena
    if _one_arena:
        return
    _one_arena = True
    try:
        import ctypes
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        pass


def exit_when_exhausted(status, line):
    """From now on, a small allocation refused (the process at its memory limit) ends
    the process at once with `status`, `line` on stderr (corefile/_vector.c): CPython
    3.11-3.13 can otherwise spin for ever unwinding the MemoryError, at 100% CPU (a
    handler that needs an int of its last instruction, which cannot be made). Larger
    requests still raise a MemoryError. Files nsdebug writes are named only when whole
    (arthur.safefile, the index's scratch file): an end here leaves none half written.
    Whether it was set up (not without the compiled module, nor twice)."""
    try:
        from .corefile._vector import exit_when_exhausted as wrap
    except ImportError:
        return False
    return wrap(status, SMALL_REQUEST, line.encode("ascii", "replace")[:500] + b"\n")
