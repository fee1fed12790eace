"""Where the instances of a type are held: the object that keeps most of them alive.

A leak's instances hang each below an object of its own (a record in a closure's cell,
the cell in a function, the function in a list): the holder is found by walking up the
dominator tree from every instance at once, a level at a time, and counting the
instances each ancestor dominates. The ancestor that dominates the most, the nearest
one among equals, is the holder: the listener list, not the module that holds the
list."""

from __future__ import annotations

import numpy as np

from ..record import record
from .stats import instance_indices

MAX_DEPTH = 12


@record
class Holder:
    type: str
    instances: int
    held: int                   # how many of them the holder dominates
    address: int | None         # the holder (None: no one object holds most of them)
    holder_type: str | None
    path: str | None            # the holder's path from a root


def holder(g, type_name):
    """Holder of the instances of `type_name` in a heap graph."""
    from .paths import path_text
    idx = instance_indices(g, type_name)
    if not len(idx):
        return Holder(type_name, 0, 0, None, None, None)
    idom = g.dominators()
    best, best_count = None, 0
    cur = idx.astype(np.int64)
    for _ in range(MAX_DEPTH):
        cur = idom[cur].astype(np.int64)
        cur = cur[cur >= g.n_synth]          # a synthetic root holds nothing in particular
        if not len(cur):
            break
        nodes, counts = np.unique(cur, return_counts=True)
        k = int(np.argmax(counts))
        if counts[k] > best_count:            # strictly more: the nearest among equals
            best, best_count = int(nodes[k]), int(counts[k])
    if best is None:
        return Holder(type_name, len(idx), 0, None, None, None)
    edges = g.path_edges(best)
    return Holder(type_name, len(idx), best_count, int(g.addr[best]), g.type_name(best),
                  path_text(g, edges) if edges is not None else None)
