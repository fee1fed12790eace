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
        src = g.edge_source(e)
        kind = int(g.e_kind[e])
        name = g.edge_label(kind, int(g.e_name[e]))
        if src < g.n_synth:
            skind, sname = g.synth_kinds[src], g.synth_names[src]
            if skind == "root":
                continue
            if skind == "group":
                word = GROUP_WORDS.get(sname)
                if sname == "(Modules)":
                    parts.append(f"sys.modules[{name!r}]")
                elif sname == "(Builtins)":
                    parts.append(f"builtins.{name}")
                elif sname == "(Threads)":
                    pass
                elif sname == "(Unreachable)":
                    t = int(g.e_to[e])
                    parts.append(f"<unreachable {g.type_name(t)} at {int(g.addr[t]):#x}>")
                elif sname == "(C globals)":
                    parts.append(f"<C global {name}>")
                elif sname == "(C stacks)":
                    parts.append(f"<C {name}>")
                elif word:
                    parts.append(word)
                continue
            if skind == "thread":
                parts.append(sname.split(" (")[0])
                continue
            if skind == "frame":
                fn = sname.split(" ", 2)[1]
                parts.append(f" frame {fn} local {name!r}" if kind == PROPERTY
                             else f" frame {fn} {name}")
                continue
        if kind == INTERNAL and name == "__dict__":
            attr_mode = True
            continue
        if kind == ELEMENT:
            parts.append(f"[{name}]")
        elif kind == PROPERTY:
            if attr_mode or g.types[int(g.type_ix[src])].kind != "dict":
                parts.append(f".{name}")
            else:
                parts.append(f"[{_key(name)}]")
        elif kind == HIDDEN:
            parts.append(".<key>")
        elif kind == WEAK:
            parts.append(f".<weak {name}>")
        else:
            parts.append(f".{name}")
        attr_mode = False
    text = "".join(parts).strip()
    return text or "<root>"
