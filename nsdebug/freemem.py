"""Freed C heap memory given back to the system (glibc's malloc_trim), for any layer."""

from __future__ import annotations

_malloc_trim = None


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
