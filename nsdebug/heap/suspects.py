"""Leak suspects, as Eclipse MAT finds them, said in Python's words: the objects that keep
the most memory alive, followed down the dominator tree to the accumulation point (the
container whose many children, none dominant, make up the retained size).

From each top-level object (one a root group dominates) that retains a noticeable
share of the heap, descend into the child that holds most of what its parent retains
(80% or more) until none does: that node is the accumulation point. Its dominator-tree
children are grouped by type; a sample of the biggest group tells what each of them
keeps (the first instance of a class below it, else its largest part).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..record import Factory, record

DOMINANT = 0.8          # a child holding this much of its parent's retained size
MIN_SHARE = 0.05        # a suspect retains at least this share of the heap
SAMPLE = 200            # children looked into to say what each keeps


@record
class Suspect:
    address: int
    type: str
    path: str | None
    retained: int
    share: float                     # of all the heap's bytes
    top_address: int                 # the top-level object the descent started from
    top_type: str
    children: int = 0                # the accumulation point's biggest group of children
    child_type: str | None = None
    child_retained: int = 0
    each_keeps: str | None = None
    summary: str = ""
    groups: list = Factory(list)     # [(type, count, retained)] of its children


@record
class SuspectsResult:
    total_size: int
    suspects: list              # [Suspect], biggest first
    duplicates: list | None = None    # [waste.Duplicate] with waste
    duplicate_bytes: int = 0
    sparse: list | None = None        # [waste.Sparse] with waste


def suspects(target, top=5, min_share=MIN_SHARE, waste=False):
    """SuspectsResult of a Target's heap: the leak suspects, and with `waste` the
    duplicate values and empty containers (waste.find_waste, the top 10)."""
    found, total = find_suspects(target.heap, max(top, 0), min_share)
    res = SuspectsResult(total, found)
    if waste:
        from .waste import find_waste
        w = find_waste(target.heap, target.scattered_reads(), target.runtime.objects, 10)
        res.duplicates, res.duplicate_bytes, res.sparse = w.duplicates, w.duplicate_bytes, \
            w.sparse
    return res


def find_suspects(g, top=5, min_share=MIN_SHARE):
    """The heap's leak suspects, biggest first."""
    from .paths import path_text
    ret = g.retained()
    total = int(g.size.sum()) or 1
    tree = g.dominator_tree()
    idom = g.dominators()
    objs = np.arange(g.n_synth, g.n)
    top_level = objs[(idom[objs] >= 0) & (idom[objs] < g.n_synth)]
    big = top_level[ret[top_level] >= min_share * total]
    big = big[np.argsort(-ret[big].astype(np.int64), kind="stable")]
    out, seen = [], set()
    for start in big.tolist():
        acc = _accumulation_point(tree, ret, start)
        if acc in seen:
            continue
        seen.add(acc)
        edges = g.path_edges(acc)
        s = Suspect(int(g.addr[acc]), g.type_name(acc),
                    path_text(g, edges) if edges is not None else None, int(ret[acc]),
                    int(ret[acc]) / total, int(g.addr[start]), g.type_name(start))
        _describe_children(g, tree, ret, acc, s)
        s.summary = _summary(s)
        out.append(s)
        if len(out) >= top:
            break
    return out, total


def _accumulation_point(tree, ret, v):
    for _ in range(10000):
        kids = tree.children(v)
        if not len(kids):
            return v
        biggest = kids[int(np.argmax(ret[kids]))]
        if ret[biggest] < DOMINANT * ret[v]:
            return v
        v = int(biggest)
    return v


def _describe_children(g, tree, ret, acc, s):
    kids = tree.children(acc)
    if not len(kids):
        return
    tix = g.type_ix[kids].astype(np.int64)
    tix = np.where(tix < 0, len(g.types), tix)
    counts = np.bincount(tix, minlength=len(g.types) + 1)
    sizes = np.bincount(tix, weights=ret[kids].astype(np.float64), minlength=len(g.types) + 1)
    names = g.type_names()
    order = np.argsort(-sizes, kind="stable")
    s.groups = [(names[t], int(counts[t]), int(sizes[t])) for t in order[:5] if counts[t]]
    main = int(order[0])
    s.children, s.child_type, s.child_retained = int(counts[main]), names[main], int(sizes[main])
    sample = kids[tix == main][:SAMPLE]
    kept = Counter(_what_it_keeps(g, tree, ret, int(c)) for c in sample)
    kept.pop(None, None)
    if kept:
        s.each_keeps = kept.most_common(1)[0][0]


def _what_it_keeps(g, tree, ret, v):
    """The first instance of a class below v in the dominator tree (by its largest
    parts), else v's largest part's type."""
    first = None
    for _ in range(8):
        kids = tree.children(v)
        if not len(kids):
            break
        order = kids[np.argsort(-ret[kids].astype(np.int64), kind="stable")][:8]
        for c in order.tolist():
            t = int(g.type_ix[c])
            if t >= 0 and g.types[t].kind == "instance":
                return g.types[t].qualname
        v = int(order[0])
        first = first or g.type_name(v)
    return first


def _summary(s):
    from ..units import human_size
    where = s.path or f"{s.type} at {s.address:#x}"
    words = f"{where} ({s.type})"
    if s.children and s.child_type:
        words += f" holds {s.children:,} {s.child_type} object{'s' if s.children != 1 else ''}"
        if s.each_keeps and s.each_keeps != s.child_type:
            kept = s.each_keeps.rsplit(".", 1)[-1]
            words += f", each keeping {_article(kept)} {kept}"
    return f"{words}: {human_size(s.retained)}, {100 * s.share:.0f}% of the heap"


def _article(name):
    return "an" if name[:1].lower() in "aeiou" else "a"
