"""The heap: every object, the graph of references, and what is computed on it.

walk.py walks a runtime's heap into a HeapGraph (graph.py); index.py keeps it on disk
per core. On the graph: stats.py (by type, largest, instances), paths.py (paths from a
root, referrers), suspects.py, waste.py, diff.py, tasks.py, snapshot.py (DevTools).
Importing the package costs nothing: its modules, which need numpy, load on use.
"""


def build_heap(rt, progress=None, spill=None, assembled=None):
    """Walk the heap of a Runtime into a HeapGraph (`spill`: a spill.Spill, where its
    arrays go when memory is short; `assembled(g)`: called once the graph's objects and
    edges are final, before the native attribution adds to its sizes)."""
    from .walk import HeapWalker
    return HeapWalker(rt, progress, spill=spill, assembled=assembled).run()


__all__ = ["build_heap"]
