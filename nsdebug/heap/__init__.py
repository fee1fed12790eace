"""The heap: every object, the graph of references, and what is computed on it."""

from .graph import HeapGraph
from .walk import HeapWalker


def build_heap(rt, progress=None, vectorized=True):
    """Walk the heap of a Runtime into a HeapGraph (vectorized unless asked not to)."""
    if vectorized:
        from .fastwalk import FastWalker
        return FastWalker(rt, progress).run()
    return HeapWalker(rt, progress).run()


__all__ = ["HeapGraph", "HeapWalker", "build_heap"]
