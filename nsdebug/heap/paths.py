"""Edges spelled as Python: a chain from the root (sys.modules['app'].cache['k'][3]), and
who refers to an object and how (`.cache`, `['k']`, `[3]`). One spelling serves both:
a dict entry is `[key]` with the key as Python writes it (['k'], [1]), an attribute
`.name`, an item `[i]`."""

from __future__ import annotations

from ..record import record
from .referents import ELEMENT, HIDDEN, INTERNAL, PROPERTY, WEAK

GROUP_WORDS = {"(Modules)": "sys.modules", "(Builtins)": "builtins",
               "(Interned strings)": "<interned strings>", "(Unreachable)": "<unreachable>"}


def _key(name):
    """A dict key's text as Python writes it in a subscript: a str quoted, an int, a
    tuple or another repr as it is."""
    return repr(name) if not name.startswith("<") and not _looks_like_repr(name) else name


def _looks_like_repr(name):
    return name[:1] in "([{'\"-0123456789" or name in ("None", "True", "False")


def path_text(g, edges):
    """Text of a root-to-object path given as edge ids (from HeapGraph.path_edges)."""
    parts = []
    attr_mode = False          # the last hop was into a __dict__: next names are attributes
    for e in edges:
        text, _, attr_mode = hop(g, e, attr_mode)
        if text:
            parts.append(text)
    return "".join(parts).strip() or "<root>"


def hop(g, e, attr_mode=False):
    """(text, folded, attr_mode after) of one edge of a path. text is None for a hop that
    shows no text (the root, the threads group, into a __dict__); folded is the text
    with a varying part (an index, a dict key, an address) replaced by '*', or None when
    the hop has no such part. attr_mode: the previous hop went into an object's __dict__,
    so a dict key is spelled as an attribute."""
    src = g.edge_source(e)
    kind = int(g.e_kind[e])
    name = g.edge_label(kind, int(g.e_name[e]))
    if src < g.n_synth:
        skind, sname = g.synth_kinds[src], g.synth_names[src]
        if skind == "root":
            return None, None, False
        if skind == "group":
            return _group_hop(g, e, sname, name) + (False,)
        if skind == "thread":
            return sname.split(" (")[0], None, False
        if skind == "frame":
            fn = sname.split(" ", 2)[1]
            text = (f" frame {fn} local {name!r}" if kind == PROPERTY
                    else f" frame {fn} {name}")
            return text, None, False
    if kind == INTERNAL and name == "__dict__":
        return None, None, True
    return object_edge_text(g, src, kind, name, attr_mode)


def _is_dict(g, i):
    t = int(g.type_ix[i])
    return t >= 0 and g.types[t].kind == "dict"


def object_edge_text(g, src, kind, name, attr_mode=False):
    """(text, folded, attr_mode after) of an edge out of object `src` (see hop)."""
    if kind == ELEMENT:
        return f"[{name}]", "[*]", False
    if kind == PROPERTY:
        if attr_mode or not _is_dict(g, src):
            return f".{name}", None, False
        return f"[{_key(name)}]", "[*]", False
    if kind == HIDDEN:
        return ".<key>", None, False
    if kind == WEAK:
        return f".<weak {name}>", None, False
    return f".{name}", None, False


@record
class RefRow:
    address: int | None               # the referrer (None: a root, named by `type`)
    type: str
    how: str                          # the edge as Python spells it: .x, ['k'], [3]
    owner: str | None                 # for a __dict__: a preview of the object owning it
    owner_address: int | None = None


def referrers(g, i, preview, limit=None):
    """[RefRow] of every edge pointing at node i (the first `limit`). A referrer that is
    an object's __dict__ is shown as that object (`preview(address)` describes it), the
    edge as its attribute."""
    rows = []
    for src, kind, name in g.referrers(i, limit):
        if src < g.n_synth:
            how = (f"local {name!r}" if g.synth_kinds[src] == "frame" else
                   f"[{_key(name)}]" if kind == PROPERTY else str(name))
            rows.append(RefRow(None, g.synth_names[src], how, None))
            continue
        how = object_edge_text(g, src, kind, name)[0] if kind != HIDDEN else "<key>"
        owner_addr = owner = None
        if _is_dict(g, src):
            owner_addr = dict_owner(g, src)
            if owner_addr is not None:
                owner = preview(owner_addr)
                how = "." + name
        rows.append(RefRow(int(g.addr[src]), g.type_name(src), how, owner, owner_addr))
    return rows


def dict_owner(g, d):
    """The address of the object whose __dict__ node `d` is, or None."""
    for s2, _kind, name in g.referrers(d):
        if name == "__dict__" and s2 >= g.n_synth:
            return int(g.addr[s2])
    return None


@record
class PathHop:
    type: str
    address: int | None
    edge: str


def path_hops(g, edges):
    """[PathHop] of a root-to-object path given as edge ids: each node it passes and
    the edge that leads there."""
    out = []
    for e in edges:
        t = int(g.e_to[e])
        out.append(PathHop(g.type_name(t), int(g.addr[t]) if t >= g.n_synth else None,
                           str(g.edge_label(int(g.e_kind[e]), int(g.e_name[e])))))
    return out


def _group_hop(g, e, group, name):
    if group == "(Modules)":
        return f"sys.modules[{name!r}]", None
    if group == "(Builtins)":
        return f"builtins.{name}", None
    if group == "(Threads)":
        return None, None
    if group == "(Unreachable)":
        t = int(g.e_to[e])
        return (f"<unreachable {g.type_name(t)} at {int(g.addr[t]):#x}>",
                f"<unreachable {g.type_name(t)}>")
    if group == "(C globals)":
        return f"<C global {name}>", None
    if group == "(C stacks)":
        return f"<C {name}>", None
    return GROUP_WORDS.get(group), None
