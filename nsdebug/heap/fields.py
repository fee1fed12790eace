"""What each kind of object refers to through fixed fields: one table for the per-object
decoder (referents.py) and the walk's decoders (containers.py, attributes.py).

A row is (edge name, layout alias, layout field, edge kind); the offset comes from
the build's layout table, and a field the build lacks (None) is skipped. Kinds are
ObjectReader's (objects.py); C types of the standard library whose object fields
are not exposed as members are recognised by tp_name.
"""

from __future__ import annotations

ELEMENT, PROPERTY, INTERNAL, WEAK, HIDDEN = 0, 1, 2, 3, 4
KIND_NAMES = ("element", "property", "internal", "weak", "hidden")

_CODE = ("co_consts", "co_names", "co_filename", "co_name", "co_qualname", "co_code",
         "co_varnames", "co_cellvars", "co_freevars", "co_localsplusnames",
         "co_localspluskinds", "co_lnotab", "co_linetable", "co_exceptiontable")

KIND_FIELDS = {
    "function": [(n, "function", f, INTERNAL) for n, f in (
        ("__code__", "func_code"), ("__globals__", "func_globals"),
        ("__builtins__", "func_builtins"), ("__name__", "func_name"),
        ("__qualname__", "func_qualname"), ("__defaults__", "func_defaults"),
        ("__kwdefaults__", "func_kwdefaults"), ("__closure__", "func_closure"),
        ("__doc__", "func_doc"), ("__dict__", "func_dict"), ("__module__", "func_module"),
        ("__annotations__", "func_annotations"), ("__type_params__", "func_typeparams"))],
    "method": [("__func__", "method", "im_func", INTERNAL),
               ("__self__", "method", "im_self", INTERNAL)],
    "cfunction": [("__self__", "cfunction", "m_self", INTERNAL),
                  ("__module__", "cfunction", "m_module", INTERNAL)],
    "cell": [("cell_contents", "cell", "ob_ref", INTERNAL)],
    "module": [("__dict__", "module", "md_dict", INTERNAL)],
    # (An exception's __dict__ is its instance dict: read with its other attributes.)
    "exception": [(n, "exception", f, INTERNAL) for n, f in (
        ("args", "args"), ("__traceback__", "traceback"), ("__context__", "context"),
        ("__cause__", "cause"), ("__notes__", "notes"))],
    "code": [(f, "code", f, INTERNAL) for f in _CODE],
    "range": [(f, "range", f, INTERNAL) for f in ("start", "stop", "step", "length")],
    "slice": [(f, "slice", f, INTERNAL) for f in ("start", "stop", "step")],
    "generator": [("gi_code", "gen", "gi_code", INTERNAL),
                  ("gi_frame", "gen", "gi_frame", INTERNAL),
                  ("__name__", "gen", "gi_name", INTERNAL),
                  ("__qualname__", "gen", "gi_qualname", INTERNAL)],
    "frame": [(n, "frameobject", n, INTERNAL) for n in ("f_back", "f_code", "f_globals",
                                                        "f_locals", "f_trace")],
    "mappingproxy": [("mapping", "mappingproxy", "mapping", INTERNAL)],
    "property": [("fget", "property", "prop_get", INTERNAL),
                 ("fset", "property", "prop_set", INTERNAL),
                 ("fdel", "property", "prop_del", INTERNAL),
                 ("__doc__", "property", "prop_doc", INTERNAL),
                 ("__name__", "property", "prop_name", INTERNAL)],
    "classmethod": [("__func__", "classmethod", "callable", INTERNAL),
                    ("__dict__", "classmethod", "dict", INTERNAL)],
    "staticmethod": [("__func__", "staticmethod", "callable", INTERNAL),
                     ("__dict__", "staticmethod", "dict", INTERNAL)],
    "descriptor": [("__objclass__", "descr", "d_type", INTERNAL),
                   ("__name__", "descr", "d_name", INTERNAL),
                   ("__qualname__", "descr", "d_qualname", INTERNAL)],
    "methodwrapper": [("__self__", "methodwrapper", "self", INTERNAL),
                      ("descr", "methodwrapper", "descr", INTERNAL)],
    "weakref": [("referent", "weakref", "wr_object", WEAK),
                ("__callback__", "weakref", "wr_callback", INTERNAL)],
    # 3.15: a bytearray's data lives in a bytes object (no field before: no edge).
    "bytearray": [("ob_bytes_object", "bytearray", "ob_bytes_object", INTERNAL)],
}
for _k in ("coroutine", "async_generator"):
    KIND_FIELDS[_k] = KIND_FIELDS["generator"]
KIND_FIELDS["weakproxy"] = KIND_FIELDS["weakref"]

_FUTURE = (("_loop", "loop"), ("_callback0", "callback0"), ("_callbacks", "callbacks"),
           ("_exception", "exception"), ("_result", "result"),
           ("_cancel_message", "cancel_msg"), ("__dict__", "dict"))

# C types with object fields their type does not list as members, by tp_name.
TYPE_FIELDS = {
    "functools._lru_cache_wrapper": [
        ("__wrapped__", "lrucache", "func", INTERNAL), ("cache", "lrucache", "cache", INTERNAL),
        ("__dict__", "lrucache", "dict", INTERNAL),
        ("cache_info_type", "lrucache", "cache_info_type", INTERNAL),
        ("kwd_mark", "lrucache", "kwd_mark", INTERNAL)],
    "functools.partial": [("func", "partial", "fn", INTERNAL),
                          ("args", "partial", "args", INTERNAL),
                          ("keywords", "partial", "kw", INTERNAL),
                          ("__dict__", "partial", "dict", INTERNAL)],
    "re.Pattern": [("pattern", "pattern", "pattern", INTERNAL),
                   ("groupindex", "pattern", "groupindex", INTERNAL),
                   ("indexgroup", "pattern", "indexgroup", INTERNAL)],
    "collections.defaultdict": [("default_factory", "defaultdict", "default_factory",
                                 INTERNAL)],
    "collections.OrderedDict": [("__dict__", "odict", "od_inst_dict", INTERNAL)],
    # asyncio's C Future and Task, named as the pure-Python ones name their attributes.
    "_asyncio.Future": [(n, "future", f, INTERNAL) for n, f in _FUTURE],
    "_asyncio.Task": [(n, "task", f, INTERNAL) for n, f in _FUTURE + (
        ("_fut_waiter", "fut_waiter"), ("_coro", "coro"), ("_name", "name"),
        ("_context", "context"))],
}

# C types of the standard library whose struct holds no object at all, by tp_name:
# their words are numbers (a Decimal's hash, exponent, digit counts and its first
# limbs, whose pointer leads to more limbs; a date's packed fields; a timedelta's days,
# seconds and microseconds). The walk reads none of them as a possible reference: a
# service holds Decimals by the million (11 words each to read for nothing), and a
# Decimal whose digits equal an object's address would otherwise hold that object.
NO_OBJECT_FIELDS = frozenset({"decimal.Decimal", "datetime.date", "datetime.timedelta"})

# C types of the standard library with an object field only some of their objects have,
# by tp_name and size: (edge name, offset of the byte that says it is there, offset of
# the field, the type's tp_basicsize: a class of the same name laid out otherwise is
# not it). A datetime or time made with a tzinfo is allocated with a word for it after
# its data and says so in its hastzinfo byte (after the header and the hash); one made
# without is allocated without that word, and what lies there is what the block held
# before (a freed list's item, read as a reference, held that item). Their other words
# are numbers.
FLAGGED_FIELDS = {"datetime.datetime": ("tzinfo", 24, 40, 48),
                  "datetime.time": ("tzinfo", 24, 32, 40)}


def flagged_field(info):
    """(edge name, flag offset, field offset) of the type's FLAGGED_FIELDS, or None."""
    row = FLAGGED_FIELDS.get(info.qualname)
    return row[:3] if row is not None and row[3] == info.basicsize else None


def offsets(layout, rows):
    """[(name, offset, edge kind)] of the rows this build has."""
    out = []
    for name, alias, field, kind in rows:
        off = getattr(getattr(layout, alias), field)
        if off is not None:
            out.append((name, off, kind))
    return out
