"""The heap: every object, the graph of references, and what is computed on it."""

from .graph import HeapGraph


def build_heap(rt, progress=None):
    """Walk the heap of a Runtime into a HeapGraph."""
    from .walk import HeapWalker
    return HeapWalker(rt, progress).run()


__all__ = ["HeapGraph", "build_heap"]
