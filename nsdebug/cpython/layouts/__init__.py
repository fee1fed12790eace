"""Field offsets of CPython's structures: one table per build, and _Py_DebugOffsets (3.13+).

The tables (data/tX_Y_Z_SOURCE.py, plain data: NAME and TABLE) are generated from
the DWARF of real builds by tools/gen_layouts.py; no offset is written by hand. One minor
version may need several: patch releases and compilers move internal fields.
From 3.13 the runtime carries its own offsets (_Py_DebugOffsets), whose own
layout each version defines differently; the tables record that layout too.
The runtime model (runtime.py) chooses, checks and combines them.

$NSDEBUG_LAYOUT_DIR names more table directories (':'-separated), searched
first: tables generated for builds nsdebug does not ship (read as literals, never
run).
"""

from __future__ import annotations

import os
import struct
from types import SimpleNamespace

from ...once import once

DATA = os.path.join(os.path.dirname(__file__), "data")
DEBUG_COOKIE = b"xdebugpy"
MAX_STRUCT = 1 << 22         # no CPython struct is larger (PyInterpreterState: ~230 KiB)


class TypeLayout(SimpleNamespace):
    """Offsets of one C struct: attribute per field (None when absent), plus `size`.

    A field some table of any version has, but not this one, reads as None (absent in
    this build); a name no table has ever had raises AttributeError, so a misspelt
    field fails in the tests instead of reading as "absent in this version"."""

    def __getattr__(self, name):
        if name.startswith("__") or name == "alias":
            raise AttributeError(name)
        alias = self.__dict__.get("alias")
        if alias is None or name in known_fields().get(alias, ()):
            return None
        raise AttributeError(f"no CPython layout table has a field {alias}.{name}")


class Layout:
    """All struct layouts nsdebug uses for one build.

    `complete` is False for a layout made from _Py_DebugOffsets alone: enough for
    threads and stacks, not for the heap (`missing` says why)."""

    def __init__(self, version, types, source, complete=True, missing=None, enums=None):
        self.version = tuple(version)
        self.source = source
        self.complete = complete
        self.missing = missing
        self.enums = enums or {}          # C enums whose values moved: {alias: {name: value}}
        self._types = types
        for alias, row in types.items():
            if row is None:
                setattr(self, alias, TypeLayout(size=None, present=False, alias=alias))
            else:
                setattr(self, alias, TypeLayout(size=row["size"], present=True, alias=alias,
                                                **row["fields"]))

    def __getattr__(self, name):
        # A struct this build's table lacks is absent (all its fields None); a name no
        # table has ever had is a mistake.
        if name.startswith("__") or name.startswith("_"):
            raise AttributeError(name)
        if name not in known_fields():
            raise AttributeError(f"no CPython layout table has a struct {name!r}")
        return TypeLayout(size=None, present=False, alias=name)

    def get(self, alias, field):
        row = self._types.get(alias)
        if not row:
            return None
        return row["size"] if field == "size" else row["fields"].get(field)

    def with_fields(self, values):
        """A copy with {(alias, field): offset} set (a new layout; this one is shared)."""
        types = {alias: None if row is None else {"size": row["size"],
                                                  "fields": dict(row["fields"])}
                 for alias, row in self._types.items()}
        for (alias, field), value in values.items():
            row = types.get(alias) or {"size": None, "fields": {}}
            types[alias] = row
            if field == "size":
                row["size"] = value
            else:
                row["fields"][field] = value
        return Layout(self.version, types, self.source, self.complete, self.missing,
                      self.enums)


class Table:
    """One generated table: the build it came from, its struct layouts, and (3.13+) the
    layout of that version's _Py_DebugOffsets."""

    def __init__(self, name, data):
        self.name = name
        self.version = tuple(int(x) for x in data["version"].split(".")[:3])
        self.source = data.get("source", "?")
        self.build_id = data.get("build_id")
        self.types = data["types"]
        self.debug_offsets = data.get("debug_offsets")
        self.enums = data.get("enums", {})

    @property
    def key(self):
        return self.version[:2]

    def layout(self):
        return Layout(self.version, self.types, f"table {self.name}", enums=self.enums)

    def __repr__(self):
        return f"Table({self.name})"


def table_dirs():
    extra = [d for d in os.environ.get("NSDEBUG_LAYOUT_DIR", "").split(":") if d]
    return extra + [DATA]


@once
def _entries(dirs):
    """[(directory, module name, (major, minor, micro))] of every table, none loaded:
    the package's from its index, another directory's from the file names."""
    out = []
    for d in dirs:
        if d == DATA:
            from .data.index import TABLES
            out += [(d, name, version) for name, version in TABLES.items()]
            continue
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            version = table_version(name)
            if version is not None:
                out.append((d, name[:-3], version))
    return tuple(out)


def table_version(file_name):
    """(major, minor, micro) of a table file's name (tX_Y_Z_SOURCE.py), else None."""
    parts = file_name[1:-3].split("_") if file_name.startswith("t") and \
        file_name.endswith(".py") else []
    if len(parts) < 3 or not all(p.isdigit() and p.isascii() for p in parts[:3]):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


@once
def _load(d, name):
    """The Table in module `name` of directory d, None when it is broken."""
    try:
        if d == DATA:
            mod = __import__(f"{__name__}.data.{name}", fromlist=["TABLE"])
            return Table(mod.NAME, mod.TABLE)
        return Table(*_read_table(os.path.join(d, name + ".py")))
    except (OSError, ValueError, KeyError, TypeError, SyntaxError, AttributeError,
            ImportError):
        return None            # a broken extra table is skipped, not trusted


def _read_table(path):
    """(NAME, TABLE) of a table file in another directory, read as literals only (the
    package's own are imported: compiled once, loaded at once)."""
    import ast
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = ast.literal_eval(node.value)
    return found["NAME"], found["TABLE"]


def all_tables(key=None):
    """Every table (of version `key`, (major, minor), only), loading just those."""
    out = []
    for d, name, version in _entries(tuple(table_dirs())):
        if key is None or version[:2] == key:
            table = _load(d, name)
            if table is not None:
                out.append(table)
    return tuple(out)


@once
def _known_fields(dirs):
    from .data.index import FIELDS
    known = {alias: set(fields) for alias, fields in FIELDS.items()}
    for d, name, _version in _entries(dirs):
        table = _load(d, name) if d != DATA else None
        for alias, row in (table.types.items() if table else ()):
            fields = known.setdefault(alias, set())
            if row:
                fields.update(row["fields"])
    for alias, field in DEBUG_FIELDS.values():
        known.setdefault(alias, set()).add(field)
    return known


def known_fields():
    """{struct alias: every field name some table (of any version) gives it}: the
    package's from its index (tools/gen_layouts.py writes both), another directory's
    from its tables."""
    return _known_fields(tuple(table_dirs()))


def known_versions():
    """(major, minor) of every version some table covers."""
    return sorted({v[:2] for _d, _n, v in _entries(tuple(table_dirs()))})


def candidates(major, minor, micro=None, build_id=None):
    """The tables that may fit a build, best first: the same build (build-id), the same
    release, then the other releases of that minor version, nearest first."""
    def rank(t):
        return (t.build_id != build_id or build_id is None,
                micro is None or t.version[2] != micro,
                abs(t.version[2] - (micro or 0)), -t.version[2])
    return sorted(all_tables((major, minor)), key=rank)


def debug_specs(major, minor):
    """[(spec, table)]: the distinct _Py_DebugOffsets layouts to try for a version, best
    first, each with a table that recorded it: that version's own, else (a version no
    table knows) the newest ones first."""
    own = [t for t in candidates(major, minor) if t.debug_offsets]
    if not own:
        own = sorted((t for t in all_tables() if t.debug_offsets), key=lambda t: t.version,
                     reverse=True)
    out = []
    for t in own:
        if all(t.debug_offsets != spec for spec, _ in out):
            out.append((t.debug_offsets, t))
    return out


# _Py_DebugOffsets (section, field) -> the (alias, field) of our tables it stands for.
# Names are CPython's; they are stable across 3.13-3.15 where the field exists.
DEBUG_FIELDS = {
    ("runtime_state", "size"): ("runtime", "size"),
    ("runtime_state", "finalizing"): ("runtime", "finalizing"),
    ("runtime_state", "interpreters_head"): ("runtime", "interpreters_head"),
    ("interpreter_state", "size"): ("interp", "size"),
    ("interpreter_state", "id"): ("interp", "id"),
    ("interpreter_state", "next"): ("interp", "next"),
    ("interpreter_state", "threads_head"): ("interp", "tstate_head"),
    ("interpreter_state", "gc"): ("interp", "gc"),
    ("interpreter_state", "imports_modules"): ("interp", "modules"),
    ("interpreter_state", "sysdict"): ("interp", "sysdict"),
    ("interpreter_state", "builtins"): ("interp", "builtins"),
    ("interpreter_state", "ceval_gil"): ("interp", "ceval_gil"),
    # The GIL's fields relative to the interpreter (its _gil member), not to the GIL.
    ("interpreter_state", "gil_runtime_state_locked"): ("interp", "gil_locked"),
    ("interpreter_state", "gil_runtime_state_holder"): ("interp", "gil_holder"),
    ("thread_state", "size"): ("tstate", "size"),
    ("thread_state", "prev"): ("tstate", "prev"),
    ("thread_state", "next"): ("tstate", "next"),
    ("thread_state", "interp"): ("tstate", "interp"),
    ("thread_state", "current_frame"): ("tstate", "current_frame"),
    ("thread_state", "thread_id"): ("tstate", "thread_id"),
    ("thread_state", "native_thread_id"): ("tstate", "native_thread_id"),
    ("thread_state", "holds_gil"): ("tstate", "holds_gil"),
    ("interpreter_frame", "size"): ("iframe", "size"),
    ("interpreter_frame", "previous"): ("iframe", "previous"),
    ("interpreter_frame", "executable"): ("iframe", "code"),
    ("interpreter_frame", "instr_ptr"): ("iframe", "instr_ptr"),
    ("interpreter_frame", "localsplus"): ("iframe", "localsplus"),
    ("interpreter_frame", "owner"): ("iframe", "owner"),
    ("code_object", "size"): ("code", "size"),
    ("code_object", "filename"): ("code", "co_filename"),
    ("code_object", "name"): ("code", "co_name"),
    ("code_object", "qualname"): ("code", "co_qualname"),
    ("code_object", "linetable"): ("code", "co_linetable"),
    ("code_object", "firstlineno"): ("code", "co_firstlineno"),
    ("code_object", "argcount"): ("code", "co_argcount"),
    ("code_object", "localsplusnames"): ("code", "co_localsplusnames"),
    ("code_object", "localspluskinds"): ("code", "co_localspluskinds"),
    ("code_object", "co_code_adaptive"): ("code", "co_code_adaptive"),
    ("pyobject", "size"): ("object", "size"),
    ("pyobject", "ob_type"): ("object", "ob_type"),
    ("type_object", "size"): ("type", "size"),
    ("type_object", "tp_name"): ("type", "tp_name"),
    ("type_object", "tp_flags"): ("type", "tp_flags"),
    ("type_object", "tp_basicsize"): ("type", "tp_basicsize"),
    ("type_object", "tp_dictoffset"): ("type", "tp_dictoffset"),
    ("heap_type_object", "size"): ("heaptype", "size"),
    ("heap_type_object", "ht_cached_keys"): ("heaptype", "ht_cached_keys"),
    ("tuple_object", "size"): ("tuple", "size"),
    ("tuple_object", "ob_item"): ("tuple", "ob_item"),
    ("tuple_object", "ob_size"): ("varobject", "ob_size"),
    ("list_object", "size"): ("list", "size"),
    ("list_object", "ob_item"): ("list", "ob_item"),
    ("set_object", "size"): ("set", "size"),
    ("set_object", "used"): ("set", "used"),
    ("set_object", "table"): ("set", "table"),
    ("set_object", "mask"): ("set", "mask"),
    ("dict_object", "size"): ("dict", "size"),
    ("dict_object", "ma_keys"): ("dict", "ma_keys"),
    ("dict_object", "ma_values"): ("dict", "ma_values"),
    ("float_object", "size"): ("float", "size"),
    ("float_object", "ob_fval"): ("float", "ob_fval"),
    ("long_object", "size"): ("long", "size"),
    ("long_object", "lv_tag"): ("long", "lv_tag"),
    ("long_object", "ob_digit"): ("long", "ob_digit"),
    ("bytes_object", "size"): ("bytes", "size"),
    ("bytes_object", "ob_sval"): ("bytes", "ob_sval"),
    ("unicode_object", "size"): ("unicode", "size"),
    ("unicode_object", "state"): ("ascii", "state"),
    ("unicode_object", "length"): ("ascii", "length"),
    ("unicode_object", "asciiobject_size"): ("ascii", "size"),
    ("unicode_object", "compactunicodeobject_size"): ("compact", "size"),
    ("gc", "size"): ("gcstate", "size"),
    ("gc", "collecting"): ("gcstate", "collecting"),
    ("gen_object", "size"): ("gen", "size"),
    ("gen_object", "gi_name"): ("gen", "gi_name"),
    ("gen_object", "gi_iframe"): ("gen", "gi_iframe"),
    ("gen_object", "gi_frame_state"): ("gen", "gi_frame_state"),
}


class DebugOffsets:
    """A process's _Py_DebugOffsets, parsed with one version's definition of the struct."""

    def __init__(self, values, version_hex, free_threaded, table):
        self.values = values                  # {(section, field): offset}
        self.version_hex = version_hex
        self.free_threaded = free_threaded
        self.table = table                    # whose definition of the struct was used

    @property
    def version(self):
        v = self.version_hex
        return v >> 24 & 0xFF, v >> 16 & 0xFF, v >> 8 & 0xFF

    def mapped(self):
        """{(alias, field): offset} for the fields our layouts know."""
        return {DEBUG_FIELDS[k]: v for k, v in self.values.items() if k in DEBUG_FIELDS}

    def problems(self):
        """Why these offsets cannot be right, if they cannot: sizes out of range, or a
        field beyond its struct (an offset at the very end is a flexible array)."""
        out = []
        sizes = {s: v for (s, f), v in self.values.items() if f == "size"}
        for sec, size in sizes.items():
            if not 8 <= size <= MAX_STRUCT:
                out.append(f"{sec}.size is {size}")
        for (sec, f), v in self.values.items():
            # Only the offsets nsdebug uses; some fields are sizes, not offsets.
            if f == "size" or sec not in sizes or (sec, f) not in DEBUG_FIELDS:
                continue
            if v > sizes[sec]:
                out.append(f"{sec}.{f}={v} is beyond the struct ({sizes[sec]} bytes)")
        return out


_HEAD = struct.Struct("<8sQQ")


def parse_debug_offsets(raw, spec, table=None):
    """DebugOffsets from the bytes at _PyRuntime read with `spec` (a table's record of the
    struct), or None when the cookie is not there."""
    if len(raw) < _HEAD.size or raw[:8] != DEBUG_COOKIE:
        return None
    _cookie, version, free_threaded = _HEAD.unpack_from(raw)
    values = {}
    for sec, row in spec["sections"].items():
        if not sec:
            continue
        for f, off in row["fields"].items():
            at = row["at"] + off
            if at + 8 <= len(raw):
                values[(sec, f)] = struct.unpack_from("<Q", raw, at)[0]
    return DebugOffsets(values, version, free_threaded, table)


def debug_offsets_size(specs):
    return max((s["size"] for s, _ in specs), default=0)
