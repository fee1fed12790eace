"""Does a layout fit this process? Checked by meaning, not appearance: pointers that must
point back, objects that must be dicts, lists that must be linked both ways.

A table generated for another build of the same minor version may be off by a few
bytes in an internal struct; these checks catch that before anything is shown.
"""

from __future__ import annotations

from ..errors import NsdebugError

MAX_INTERP_ID = 1 << 20


def structure_problems(objects, layout, runtime_addr):
    """What is wrong with the fields threads and stacks need (empty when none)."""
    o, R, I, T = objects, layout.runtime, layout.interp, layout.tstate
    try:
        if R.interpreters_head is None or I.tstate_head is None or T.interp is None:
            return ["the layout lacks the interpreter and thread lists"]
        interp = o.ptr(runtime_addr + R.interpreters_head)
        if not interp or interp & 7:
            return [f"interpreters_head is {interp:#x}"]
        iid = o.ssize(interp + I.id)
        if not 0 <= iid < MAX_INTERP_ID:
            return [f"interpreter id {iid}"]
        tstate = o.ptr(interp + I.tstate_head)
        if tstate and o.ptr(tstate + T.interp) != interp:
            return ["the first thread state does not point back at its interpreter"]
        for name in ("modules", "sysdict", "builtins"):
            d = o.ptr(interp + getattr(I, name))
            if o.info(d).name != "dict":
                return [f"interp.{name} is not a dict"]
    except NsdebugError as e:
        return [f"unreadable: {e}"]
    return []


def table_problems(objects, layout, interp):
    """What is wrong with the fields the heap needs (dicts, GC lists, types)."""
    o, L = objects, layout
    try:
        sysdict = o.ptr(interp + L.interp.sysdict)
        info = o.info(sysdict)
        if L.dict.size and info.basicsize != L.dict.size:
            return [f"dict's tp_basicsize is {info.basicsize}, the table says {L.dict.size}"]
        keys = [k for k, _ in o.dict_items(sysdict, 64)]
        if not keys or sum(o.info(k).name == "str" for k in keys) < len(keys) // 2:
            return ["sys.__dict__ has no str keys with this table's dict layout"]
        if o.dict_get_str(sysdict, "modules") != o.ptr(interp + L.interp.modules):
            return ["sys.modules is not interp.modules with this table"]
        problems = _gc_list_problems(o, L, interp)
        if problems:
            return problems
    except NsdebugError as e:
        return [f"unreadable: {e}"]
    return []


def gc_heads(o, L, interp, runtime_addr=None):
    """Addresses of the GC's generation list heads (young to old, then permanent)."""
    if L.interp.gc is not None:
        gc = interp + L.interp.gc                    # 3.9+: per interpreter
    else:
        gc = runtime_addr + L.runtime.gc             # 3.8: in _PyRuntime
    G, gen_size = L.gcstate, L.gcgen.size
    heads = [gc + G.generations + i * gen_size + L.gcgen.head for i in range(3)]
    if G.permanent_generation is not None:
        heads.append(gc + G.permanent_generation + L.gcgen.head)
    return heads


def _gc_list_problems(o, L, interp):
    if L.interp.gc is None:
        return []               # 3.8 keeps them in _PyRuntime: checked where walked
    prev_off, next_off = L.gchead.gc_prev, L.gchead.gc_next
    for head in gc_heads(o, L, interp):
        first = o.ptr(head + next_off)
        last = o.ptr(head + prev_off) & ~3
        # Both ends of a circular doubly linked list lead back to its head (the low bits
        # of _gc_prev are flags).
        if first != head and o.ptr(first + prev_off) & ~3 != head:
            return [f"GC list at {head:#x} is not linked back (generations misplaced?)"]
        if last != head and o.ptr(last + next_off) & ~3 != head:
            return [f"GC list at {head:#x} does not end at its head"]
    return []
