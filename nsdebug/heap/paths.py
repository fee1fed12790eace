"""A chain of edges from the root, spelled as Python: sys.modules['app'].cache['k'][3]."""

from __future__ import annotations

from .referents import ELEMENT, HIDDEN, INTERNAL, PROPERTY, WEAK

GROUP_WORDS = {"(Modules)": "sys.modules", "(Builtins)": "builtins",
               "(Interned strings)": "<interned strings>", "(Unreachable)": "<unreachable>"}


def _key(name):
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
    if kind == ELEMENT:
        return f"[{name}]", "[*]", False
    if kind == PROPERTY:
        if attr_mode or g.types[int(g.type_ix[src])].kind != "dict":
            return f".{name}", None, False
        return f"[{_key(name)}]", "[*]", False
    if kind == HIDDEN:
        return ".<key>", None, False
    if kind == WEAK:
        return f".<weak {name}>", None, False
    return f".{name}", None, False


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
