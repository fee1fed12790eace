"""The full view of one object: what `inspect` shows, as plain data."""

from __future__ import annotations

from ..errors import NsdebugError
from ..record import record
from .sizes import SizeOf


@record
class InspectResult:
    address: int
    type: str
    type_address: int
    refcount: int
    size: int | None
    preview: str
    fields: list               # [(name, preview)] attributes, items or struct fields
    error: str | None = None
    task: object = None        # an asyncio Task's heap.tasks.TaskInfo (set by `inspect`)


def inspect_object(rt, addr, bounds, limit):
    """InspectResult of the object at `addr`: type, refcount, size, a preview and its
    attributes, items or struct fields (at most `limit`), each previewed within
    `bounds`; what cannot be read is said in `error`, never raised."""
    o = rt.objects
    out = InspectResult(addr, "?", 0, 0, None, o.preview(addr, bounds), [], None)
    try:
        info = o.info(addr)
        out.type, out.type_address = info.qualname, info.address
        out.refcount = o.refcount(addr)
    except NsdebugError as e:
        out.error = str(e)
        return out
    try:
        out.size = SizeOf(o).getsizeof(addr, info)
    except NsdebugError:
        pass
    try:
        out.fields = _fields(rt, addr, info, bounds, limit)
    except NsdebugError as e:
        out.error = str(e)
    return out


def _fields(rt, addr, info, b, limit):
    o, L = rt.objects, rt.layout
    k = info.kind
    pv = lambda a: o.preview(a, b)  # noqa: E731
    if k in ("list", "tuple"):
        items = o.list_items(addr, limit) if k == "list" else o.tuple_items(addr, limit)
        return [(f"[{i}]", pv(a)) for i, a in enumerate(items)]
    if k in ("set", "frozenset"):
        return [("item", pv(a)) for a in o.set_items(addr, limit)]
    if k == "dict":
        return [(o.preview(key, b), pv(v)) for key, v in o.dict_items(addr, limit)]
    if k == "type":
        ti = o.type_info(addr)
        rows = [("__name__", ti.name), ("__qualname__", ti.qualname),
                ("basicsize", str(ti.basicsize)), ("itemsize", str(ti.itemsize)),
                ("flags", hex(ti.flags))]
        base = o.ptr(addr + L.type.tp_base)
        if base:
            rows.append(("__base__", pv(base)))
        d = o.ptr(addr + L.type.tp_dict)
        if d:
            rows += [(_key(o, key), pv(v)) for key, v in o.dict_items(d, limit)]
        return rows
    if k == "module":
        d = o.ptr(addr + L.module.md_dict)
        return [(_key(o, key), pv(v)) for key, v in o.dict_items(d, limit)] if d else []
    if k == "function":
        F = L.function
        rows = [(name, pv(o.ptr(addr + getattr(F, field))))
                for name, field in (("__name__", "func_name"), ("__qualname__", "func_qualname"),
                                    ("__module__", "func_module"), ("__code__", "func_code"),
                                    ("__defaults__", "func_defaults"),
                                    ("__closure__", "func_closure"))]
        return rows
    if k == "code":
        name, qual, filename = o.code_names(addr)
        ci = rt.frame_walker.code_info(addr)
        return [("co_name", repr(name)), ("co_qualname", repr(qual)),
                ("co_filename", repr(filename)), ("co_firstlineno", str(ci.firstlineno)),
                ("co_flags", hex(ci.flags))]
    if k == "cell":
        return [("cell_contents", pv(o.ptr(addr + L.cell.ob_ref)))]
    if k in ("generator", "coroutine", "async_generator"):
        return _suspended_frame(rt, addr, pv)
    if k == "method":
        return [("__func__", pv(o.ptr(addr + L.method.im_func))),
                ("__self__", pv(o.ptr(addr + L.method.im_self)))]
    if k == "exception":
        E = L.exception
        rows = [(n, pv(o.ptr(addr + getattr(E, n)))) for n in ("args", "traceback", "context",
                                                               "cause")]
        d = o.ptr(addr + E.dict)
        if d:
            rows += [(_key(o, key), pv(v)) for key, v in o.dict_items(d, limit)]
        return rows
    rows = []
    for name, off in o.slot_members(info):
        v = o.ptr(addr + off)
        rows.append((name, pv(v) if v else "<unset>"))
    d, items = o.instance_dict(addr, info)
    if d is not None:
        items = o.dict_items(d, limit)
    for key, v in items or []:
        rows.append((_key(o, key), pv(v)))
    return rows[:limit]


def _suspended_frame(rt, addr, pv):
    """A generator's or coroutine's suspended frame: where, what it awaits, its locals."""
    o, walker = rt.objects, rt.frame_walker
    try:
        qual = o.read_str(o.ptr(addr + rt.layout.gen.gi_qualname), 200)
    except NsdebugError:
        qual = "?"
    frame = walker.generator_frame(addr)
    rows = [("__qualname__", repr(qual))]
    if frame is None or frame.code is None:
        return rows + [("frame", "<none: finished, or running on a thread>")]
    rows.append(("frame", f"{frame.function} ({frame.filename}:{frame.line})"))
    awaited = walker.awaiting(addr)
    if awaited:
        rows.append(("awaiting", pv(awaited)))
    for loc in walker.locals_of(frame):
        rows.append((loc.name, pv(loc.address)))
    return rows


def _key(o, key):
    try:
        if o.kind(key) == "str":
            return o.read_str(key, 200)
    except NsdebugError:
        pass
    return o.preview(key)
