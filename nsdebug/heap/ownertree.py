"""Retained memory as a tree a person can zoom into: who owns it (a module, the
interpreter's own roots), then by type, then the objects, then what each keeps alone.

Built from the dominator tree: the objects each root dominates are its own; a module
object and its __dict__ are looked through, so a module's globals are its objects.
Bounded for a page: at most `budget` objects in all, spent in order of retained size
across the whole heap; what the bound leaves out is summed into one "other" entry per
owner and type, so every level still sums to what its parent retains."""

from __future__ import annotations

import heapq

import numpy as np

from ..record import Factory, record


@record
class OwnerNode:
    name: str
    kind: str                  # "owner", "type", "object", "other"
    retained: int
    address: int | None = None
    type: str | None = None
    count: int = 0             # objects it stands for (a type, "other")
    children: list = Factory(list)
    path: str | None = None    # an object's path from a root (its name is the short form)


def owner_tree(g, budget=1500, fanout=8, depth=2):
    """[OwnerNode] of the heap graph's owners, largest first."""
    from .paths import dict_owner, path_text
    tree = g.dominator_tree()
    ret = g.retained()
    types = g.type_names()
    module_types = {i for i, t in enumerate(g.types) if t.qualname == "module"}
    owners = {}                                 # name -> [node indices it owns]
    names = {}                                  # module dict index -> the module's path
    for s in range(g.n_synth):
        for c in tree.children(s).tolist():
            if c < g.n_synth:
                continue
            module = c if int(g.type_ix[c]) in module_types else None
            if module is None and _is_dict(g, c):
                # A module's __dict__ that frames hold too (f_globals): its globals.
                owner = dict_owner(g, c)
                o = g.index_of(owner) if owner is not None else None
                if o is not None and int(g.type_ix[o]) in module_types:
                    edges = g.path_edges(o)
                    name = path_text(g, edges) if edges is not None else f"module {o}"
                    owners.setdefault(name, []).extend(tree.children(c).tolist())
                    continue
            if module is not None:
                edges = g.path_edges(c)
                name = path_text(g, edges) if edges is not None else f"module {c}"
                owned = []
                for d in tree.children(c).tolist():
                    # the module's __dict__ is looked through: its values are the globals
                    kids = tree.children(d).tolist()
                    owned.extend(kids if _is_dict(g, d) else [d])
                owners.setdefault(name, []).extend(owned)
            else:
                # Held by several roots (a module's globals are also every frame's
                # f_globals): the module whose __dict__ holds it owns it.
                home = _module_of(g, c, module_types, names)
                owners.setdefault(home or g.synth_names[s], []).append(c)
    # The budget goes to the largest objects of the whole heap first.
    chosen = set(heapq.nlargest(budget, (c for cs in owners.values() for c in cs),
                                key=lambda c: int(ret[c])))
    spent = [len(chosen)]
    out = []
    for name, owned in owners.items():
        node = OwnerNode(name, "owner", int(ret[np.asarray(owned, dtype=np.int64)].sum())
                         if owned else 0, count=len(owned))
        by_type = {}
        for c in owned:
            by_type.setdefault(types[int(g.type_ix[c])], []).append(c)
        for tname, members in by_type.items():
            t = OwnerNode(tname, "type", int(sum(int(ret[c]) for c in members)), type=tname,
                          count=len(members))
            picked = sorted((c for c in members if c in chosen), key=lambda c: -int(ret[c]))
            for c in picked:
                o = _object(g, tree, ret, types, c, fanout, depth, spent, budget)
                edges = g.path_edges(c)
                if edges is not None:
                    # Named where it hangs: a global's name within its module.
                    o.path = path_text(g, edges)
                    o.name = _short(o.path, name)
                t.children.append(o)
            rest = [c for c in members if c not in chosen]
            if rest:
                t.children.append(OwnerNode(f"{len(rest):,} more", "other",
                                            int(sum(int(ret[c]) for c in rest)),
                                            type=tname, count=len(rest)))
            node.children.append(t)
        node.children.sort(key=lambda n: -n.retained)
        out.append(node)
    out.sort(key=lambda n: -n.retained)
    return [n for n in out if n.retained]


def _object(g, tree, ret, types, c, fanout, depth, spent, budget):
    node = OwnerNode(types[int(g.type_ix[c])], "object", int(ret[c]), int(g.addr[c]),
                     types[int(g.type_ix[c])], 1)
    if depth <= 0:
        return node
    kids = tree.children(c)
    if not len(kids):
        return node
    kids = kids[np.argsort(-ret[kids].astype(np.int64), kind="stable")]
    shown = 0
    for k in kids[:fanout].tolist():
        if spent[0] >= budget * 2:              # the subtrees get as much again, no more
            break
        spent[0] += 1
        shown += 1
        node.children.append(_object(g, tree, ret, types, k, fanout, depth - 1, spent,
                                     budget))
    rest = kids[shown:]
    if len(rest):
        node.children.append(OwnerNode(f"{len(rest):,} more", "other",
                                       int(ret[rest].astype(np.int64).sum()), count=len(rest)))
    return node


def _short(path, owner):
    """A path without its owner's part: "sys.modules['app'].cache" in the owner
    "sys.modules['app']" is "cache"."""
    if path.startswith(owner) and len(path) > len(owner):
        return path[len(owner):].lstrip(".") or path
    return path


def _module_of(g, c, module_types, names):
    """The path of the module whose __dict__ refers to node c, or None."""
    from .paths import dict_owner, path_text
    # A global is held by few; an object thousands refer to (a type, an interned
    # string) is looked at through its first referrers only.
    for src, _kind, _name in g.referrers(c, 64):
        if src < g.n_synth or not _is_dict(g, src):
            continue
        if src not in names:
            owner = dict_owner(g, src)
            o = g.index_of(owner) if owner is not None else None
            name = None
            if o is not None and int(g.type_ix[o]) in module_types:
                edges = g.path_edges(o)
                name = path_text(g, edges) if edges is not None else None
            names[src] = name
        if names[src]:
            return names[src]
    return None


def _is_dict(g, i):
    t = int(g.type_ix[i])
    return t >= 0 and g.types[t].qualname == "dict"


def listed_addresses(nodes):
    """Every object address in a tree of OwnerNode."""
    out = []
    todo = list(nodes)
    while todo:
        n = todo.pop()
        if n.address is not None:
            out.append(n.address)
        todo.extend(n.children)
    return out


def subtree(g, i, fanout=8, depth=2):
    """OwnerNode of node i with its largest dominated children, `depth` levels down."""
    tree = g.dominator_tree()
    ret = g.retained()
    types = g.type_names()
    return _object(g, tree, ret, types, i, fanout, depth, [0], 1 << 30)
