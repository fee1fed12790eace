"""Field offsets of CPython's structures, per version: data files, and _Py_DebugOffsets (3.13+).

The data files (data/X.Y.json) are generated from the DWARF of real builds by
tools/gen_layouts.py; no offset is written by hand. On 3.13+ the runtime
carries its own offsets (_Py_DebugOffsets); they are checked and then laid
over the table, so the process's own word wins where it speaks.
"""

from __future__ import annotations

import json
import os
import struct
from functools import lru_cache
from types import SimpleNamespace

DATA = os.path.join(os.path.dirname(__file__), "data")
DEBUG_COOKIE = b"xdebugpy"


class TypeLayout(SimpleNamespace):
    """Offsets of one C struct: attribute per field (None when absent), plus `size`."""

    def __getattr__(self, name):
        # A field not in the table at all is absent, like a field of another version.
        if name.startswith("__"):
            raise AttributeError(name)
        return None


class Layout:
    """All struct layouts of one CPython version."""

    def __init__(self, version, types, source):
        self.version = tuple(version)
        self.source = source
        self._types = types
        for alias, row in types.items():
            if row is None:
                setattr(self, alias, TypeLayout(size=None, present=False))
            else:
                setattr(self, alias, TypeLayout(size=row["size"], present=True, **row["fields"]))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return TypeLayout(size=None, present=False)

    def copy(self):
        return Layout(self.version, json.loads(json.dumps(self._types)), self.source)

    def set_field(self, alias, field, value):
        row = self._types.setdefault(alias, {"size": None, "fields": {}})
        if row is None:
            row = self._types[alias] = {"size": None, "fields": {}}
        if field == "size":
            row["size"] = value
        else:
            row["fields"][field] = value
        setattr(self, alias, TypeLayout(size=row["size"], present=True, **row["fields"]))


def known_versions():
    out = []
    for name in os.listdir(DATA):
        if name.endswith(".json"):
            major, minor = name[:-5].split(".")
            out.append((int(major), int(minor)))
    return sorted(out)


@lru_cache(maxsize=None)
def _load(major, minor):
    with open(os.path.join(DATA, f"{major}.{minor}.json")) as f:
        return json.load(f)


def load_layout(major, minor):
    """(Layout, warning or None). An unknown version uses the nearest known one below."""
    known = known_versions()
    warning = None
    key = (major, minor)
    if key not in known:
        lower = [k for k in known if k <= key] or known[:1]
        key = lower[-1]
        warning = (f"no layout table for CPython {major}.{minor}; using {key[0]}.{key[1]}'s "
                   f"(regenerate with tools/gen_layouts.py)")
    data = _load(*key)
    full = tuple(int(x) for x in data["version"].split(".")[:3])
    return Layout(full, data["types"], f"table {data['version']}"), warning


# _Py_DebugOffsets (3.13): (section, [(field, (alias, field) or None)]) in struct order;
# each section starts with its struct's size.
_DEBUG_SECTIONS = [
    ("runtime", ["size", "finalizing", "interpreters_head"]),
    ("interp", ["size", "id", "next", "tstate_head", "gc", "modules", "sysdict", "builtins",
                "ceval_gil", "gil_runtime_state", "gil_enabled", "gil_locked", "gil_holder"]),
    ("tstate", ["size", "prev", "next", "interp", "current_frame", "thread_id",
                "native_thread_id", "datastack_chunk", "status"]),
    ("iframe", ["size", "previous", "code", "instr_ptr", "localsplus", "owner"]),
    ("code", ["size", "co_filename", "co_name", "co_qualname", "co_linetable",
              "co_firstlineno", "co_argcount", "co_localsplusnames", "co_localspluskinds",
              "co_code_adaptive"]),
    ("object", ["size", "ob_type"]),
    ("type", ["size", "tp_name", "tp_repr", "tp_flags"]),
    ("tuple", ["size", "ob_item", "ob_size"]),
    ("list", ["size", "ob_item", "ob_size"]),
    ("dict", ["size", "ma_keys", "ma_values"]),
    ("float", ["size", "ob_fval"]),
    ("long", ["size", "lv_tag", "ob_digit"]),
    ("bytes", ["size", "ob_size", "ob_sval"]),
    ("ascii", ["state", "length", "size"]),     # unicode_object: size, state, length, ascii size
    ("gc", ["size", "collecting"]),
]
_HEAD = struct.Struct("<8sQQ")


def debug_offsets_size():
    n = sum(len(fields) for _, fields in _DEBUG_SECTIONS) + 1  # unicode has 4 fields
    return _HEAD.size + 8 * n


def parse_debug_offsets(raw):
    """{(alias, field): value} from the bytes at _PyRuntime, or None when no cookie."""
    if len(raw) < _HEAD.size or raw[:8] != DEBUG_COOKIE:
        return None
    cookie, version, free_threaded = _HEAD.unpack_from(raw)
    words = list(struct.unpack_from(f"<{(len(raw) - _HEAD.size) // 8}Q", raw, _HEAD.size))
    out = {("meta", "version"): version, ("meta", "free_threaded"): free_threaded}
    i = 0
    for alias, fields in _DEBUG_SECTIONS:
        if alias == "ascii":
            i += 1          # the unicode struct's own size (PyUnicodeObject), unused
        for f in fields:
            if i >= len(words):
                return out
            out[(alias, f)] = words[i]
            i += 1
    return out


def apply_debug_offsets(layout, offsets):
    """Lay checked _Py_DebugOffsets over a copy of the table; returns (layout, problems)."""
    problems = []
    merged = layout.copy()
    for (alias, field), value in offsets.items():
        if alias == "meta":
            continue
        size = getattr(getattr(layout, alias), "size", None)
        if field != "size" and size and value >= max(size, 1 << 20):
            problems.append(f"{alias}.{field}={value} is beyond the struct")
            continue
        merged.set_field(alias, field, value)
    return merged, problems
