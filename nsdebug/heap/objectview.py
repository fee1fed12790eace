"""Everything a page shows of one object: what it is, its fields, what it refers to,
who refers to it, and its path from a root; what cannot be read is said, not raised."""

from __future__ import annotations

from ..errors import NsdebugError
from ..record import Factory, record


@record
class ObjectView:
    address: int
    type: str
    size: int
    retained: int
    preview: str
    path: str | None
    fields: list = Factory(list)       # [(name, preview)]
    referents: list = Factory(list)    # [(how, address, type)]
    referrers: list = Factory(list)    # [(how, address or None, type or root name)]
    more: dict = Factory(dict)         # {"fields"|"referents"|"referrers": how many left out}
    error: str | None = None


def object_view(target, address, bounds, limit=25):
    """ObjectView of the object at `address` in the Target's heap (walked or indexed);
    at most `limit` fields, referents and referrers each."""
    from ..cpython.inspect import inspect_object
    from .paths import object_edge_text, path_text, referrers
    g = target.heap
    rt = target.runtime
    i = g.index_of(address)
    if i is None:
        raise NsdebugError(f"{address:#x} is not an object of the heap")
    edges = g.path_edges(i)
    view = ObjectView(address, g.type_name(i), int(g.size[i]), int(g.retained()[i]), "",
                      path_text(g, edges) if edges is not None else None)
    ins = inspect_object(rt, address, bounds, limit)
    view.preview, view.fields, view.error = ins.preview, list(ins.fields), ins.error
    out = g.edges(i)
    for kind, name, t in out[:limit]:
        how = object_edge_text(g, i, kind, name)[0] if t >= g.n_synth else str(name)
        view.referents.append((how, int(g.addr[t]) if t >= g.n_synth else None,
                               g.type_name(t)))
    rows = referrers(g, i, lambda a: rt.objects.preview(a, bounds), limit)
    view.referrers = [(r.how, r.owner_address or r.address,
                       r.owner or r.type) for r in rows]
    view.more = {k: n for k, n in (("referents", len(out) - limit),
                                   ("referrers", g.referrer_count(i) - limit)) if n > 0}
    return view
