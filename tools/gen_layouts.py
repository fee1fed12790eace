#!/usr/bin/env python3
"""Generate nsdebug/cpython/layouts/data/tX_Y_Z_SOURCE.py from the DWARF of CPython builds.

usage: tools/gen_layouts.py [--debian] [--out DIR] [PYTHON...]

PYTHON is a pyenv prefix (~/.pyenv/versions/3.13.0) or an interpreter path.
Default: every pyenv 3.8+; with --debian also Debian's builds that
tools/get_pythons.sh --dbg fetched (their DWARF is in the detached debug files
of the python3.X-dbg packages, found by build-id under <root>/usr/lib/debug).

gdb reads the DWARF of each libpython (or python binary) and reports, for
every struct nsdebug needs, its size and the offset of every field it reads.
A field may have several candidate paths (it moved between versions); the
first that exists wins; null means "not in this version". From 3.13 it also
records the layout of _Py_DebugOffsets itself (each version defines its own),
so nsdebug parses a process's debug offsets as that version wrote them.

One table per build, not per minor version: patch releases and compilers
change internal structs (Debian's 3.13.18 has the GC generations 4 bytes
before pyenv's 3.13.0). nsdebug picks the table that passes its checks.
Re-run after a new release: the data changes, not the code.
"""

import glob
import json
import os
import pprint
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(ROOT, "nsdebug", "cpython", "layouts", "data")
OUT = DATA
DEBUG_OFFSETS_TYPE = "struct _Py_DebugOffsets"

# alias: (C type candidates, {field alias: [dotted path candidates]})
SPEC = {
    "runtime": (["_PyRuntimeState"], {
        "interpreters_head": ["interpreters.head"],
        "interpreters_main": ["interpreters.main"],
        "tstate_current": ["gilstate.tstate_current"],            # 3.8-3.11
        "gil_locked": ["ceval.gil.locked"],                       # 3.8-3.11
        "gil_last_holder": ["ceval.gil.last_holder"],             # 3.8-3.11
        "gc": ["gc"],                                             # 3.8 only
        "debug_offsets": ["debug_offsets"],                       # 3.13+
        "interned_strings": ["cached_objects.interned_strings"],  # 3.12+
    }),
    "interp": (["struct _is"], {
        "next": ["next"], "id": ["id"],
        "tstate_head": ["threads.head", "tstate_head"],           # 3.11 moved it
        "modules": ["imports.modules", "modules"],                # 3.12 moved it
        "sysdict": ["sysdict"], "builtins": ["builtins"],
        "gc": ["gc"],                                             # 3.9+
        "ceval_gil": ["ceval.gil"],                               # 3.12+: a pointer
        "interned_strings": ["cached_objects.interned_strings"],
        "threading_local_key": ["threads.main"],
        "obmalloc": ["obmalloc"],                                 # 3.12 struct, 3.13 pointer
    }),
    "obmalloc": (["struct _obmalloc_state"], {                   # 3.12+
        "arenas": ["mgmt.arenas"], "maxarenas": ["mgmt.maxarenas"]}),
    "arena": (["struct arena_object"], {
        "address": ["address"], "pool_address": ["pool_address"],
        "nfreepools": ["nfreepools"], "ntotalpools": ["ntotalpools"]}),
    "pool": (["struct pool_header"], {
        "ref": ["ref"], "freeblock": ["freeblock"], "arenaindex": ["arenaindex"],
        "szidx": ["szidx"], "nextoffset": ["nextoffset"], "maxnextoffset": ["maxnextoffset"]}),
    "tstate": (["struct _ts"], {
        "prev": ["prev"], "next": ["next"], "interp": ["interp"],
        "frame": ["frame"],                                       # 3.8-3.10
        "cframe": ["cframe"],                                     # 3.11-3.12
        "current_frame": ["current_frame"],                       # 3.13+
        "thread_id": ["thread_id"], "native_thread_id": ["native_thread_id"],
        "dict": ["dict"],
        "holds_gil": ["holds_gil"],                               # 3.14+
    }),
    # 3.14 made frame slots tagged references (_PyStackRef): its presence says so.
    "stackref": (["_PyStackRef"], {"bits": ["bits"]}),
    "cframe": (["struct _PyCFrame", "_PyCFrame"], {"current_frame": ["current_frame"]}),
    "gil": (["struct _gil_runtime_state"], {
        "locked": ["locked"], "last_holder": ["last_holder"]}),
    "frameobject": (["struct _frame", "PyFrameObject"], {
        "f_back": ["f_back"], "f_code": ["f_code"], "f_lasti": ["f_lasti"],
        "f_lineno": ["f_lineno"], "f_trace": ["f_trace"], "f_localsplus": ["f_localsplus"],
        "f_frame": ["f_frame"], "f_locals": ["f_locals"], "f_globals": ["f_globals"],
        "f_gen": ["f_gen"],
        "f_frame_data": ["_f_frame_data"],                        # 3.11+: the embedded frame
        "f_valuestack": ["f_valuestack"], "f_stacktop": ["f_stacktop"],   # 3.8-3.9
        "f_stackdepth": ["f_stackdepth"],                                 # 3.10
    }),
    "iframe": (["struct _PyInterpreterFrame", "_PyInterpreterFrame"], {
        "code": ["f_executable", "f_code"],                       # 3.13 renamed it
        "previous": ["previous"], "func": ["f_funcobj", "f_func"],
        "globals": ["f_globals"], "builtins": ["f_builtins"], "locals": ["f_locals"],
        "frame_obj": ["frame_obj"],
        "prev_instr": ["prev_instr"],                             # 3.11-3.12
        "instr_ptr": ["instr_ptr"],                               # 3.13+
        "stacktop": ["stacktop"],                                 # 3.11-3.13: a slot count
        "stackpointer": ["stackpointer"],                         # 3.14+: a pointer
        "is_entry": ["is_entry"], "owner": ["owner"],
        "localsplus": ["localsplus"],
    }),
    "code": (["PyCodeObject"], {
        "co_argcount": ["co_argcount"], "co_posonlyargcount": ["co_posonlyargcount"],
        "co_kwonlyargcount": ["co_kwonlyargcount"], "co_nlocals": ["co_nlocals"],
        "co_flags": ["co_flags"], "co_firstlineno": ["co_firstlineno"],
        "co_code": ["co_code"], "co_varnames": ["co_varnames"],
        "co_cellvars": ["co_cellvars"], "co_freevars": ["co_freevars"],
        "co_localsplusnames": ["co_localsplusnames"],
        "co_localspluskinds": ["co_localspluskinds"], "co_nlocalsplus": ["co_nlocalsplus"],
        "co_filename": ["co_filename"], "co_name": ["co_name"], "co_qualname": ["co_qualname"],
        "co_lnotab": ["co_lnotab"], "co_linetable": ["co_linetable"],
        "co_code_adaptive": ["co_code_adaptive"],
        "co_firsttraceable": ["_co_firsttraceable"],
        "co_consts": ["co_consts"], "co_names": ["co_names"],
        "co_stacksize": ["co_stacksize"], "co_exceptiontable": ["co_exceptiontable"],
        "co_weakreflist": ["co_weakreflist"], "co_zombieframe": ["co_zombieframe"],
        "co_extra": ["co_extra"], "co_framesize": ["co_framesize"],
    }),
    "object": (["PyObject"], {"ob_refcnt": ["ob_refcnt"], "ob_type": ["ob_type"]}),
    "varobject": (["PyVarObject"], {"ob_size": ["ob_size"]}),
    "type": (["PyTypeObject"], {
        "tp_name": ["tp_name"], "tp_basicsize": ["tp_basicsize"],
        "tp_itemsize": ["tp_itemsize"], "tp_flags": ["tp_flags"], "tp_dict": ["tp_dict"],
        "tp_base": ["tp_base"], "tp_mro": ["tp_mro"], "tp_bases": ["tp_bases"],
        "tp_dictoffset": ["tp_dictoffset"], "tp_members": ["tp_members"],
        "tp_weaklistoffset": ["tp_weaklistoffset"], "tp_subclasses": ["tp_subclasses"],
        "tp_dealloc": ["tp_dealloc"], "tp_free": ["tp_free"], "tp_is_gc": ["tp_is_gc"],
        "tp_doc": ["tp_doc"], "tp_cache": ["tp_cache"],
    }),
    "heaptype": (["PyHeapTypeObject"], {
        "ht_name": ["ht_name"], "ht_qualname": ["ht_qualname"], "ht_slots": ["ht_slots"],
        "ht_cached_keys": ["ht_cached_keys"], "ht_module": ["ht_module"],
    }),
    "memberdef": (["PyMemberDef", "struct PyMemberDef"], {
        "name": ["name"], "type": ["type"], "offset": ["offset"], "flags": ["flags"]}),
    "ascii": (["PyASCIIObject"], {"length": ["length"], "hash": ["hash"], "state": ["state"]}),
    "compact": (["PyCompactUnicodeObject"], {"utf8_length": ["utf8_length"],
                                             "utf8": ["utf8"]}),
    "unicode": (["PyUnicodeObject"], {"data": ["data"]}),
    "bytes": (["PyBytesObject"], {"ob_shash": ["ob_shash"], "ob_sval": ["ob_sval"]}),
    "bytearray": (["PyByteArrayObject"], {
        "ob_alloc": ["ob_alloc"], "ob_bytes": ["ob_bytes"], "ob_start": ["ob_start"],
        "ob_exports": ["ob_exports"],
        "ob_bytes_object": ["ob_bytes_object"]}),                # 3.15+: a bytes holds the data
    "list": (["PyListObject"], {"ob_item": ["ob_item"], "allocated": ["allocated"]}),
    "tuple": (["PyTupleObject"], {"ob_item": ["ob_item"]}),
    "dict": (["PyDictObject"], {"ma_used": ["ma_used"], "ma_keys": ["ma_keys"],
                                "ma_values": ["ma_values"]}),
    "dictkeys": (["struct _dictkeysobject", "PyDictKeysObject"], {
        "dk_refcnt": ["dk_refcnt"], "dk_size": ["dk_size"],          # dk_size: 3.8-3.10
        "dk_log2_size": ["dk_log2_size"], "dk_log2_index_bytes": ["dk_log2_index_bytes"],
        "dk_kind": ["dk_kind"], "dk_usable": ["dk_usable"], "dk_nentries": ["dk_nentries"],
        "dk_indices": ["dk_indices"]}),
    "dictentry": (["PyDictKeyEntry"], {"me_hash": ["me_hash"], "me_key": ["me_key"],
                                       "me_value": ["me_value"]}),
    "unicodeentry": (["PyDictUnicodeEntry"], {"me_key": ["me_key"], "me_value": ["me_value"]}),
    "dictvalues": (["struct _dictvalues", "PyDictValues"], {
        "capacity": ["capacity"], "used": ["size"], "embedded": ["embedded"],
        "valid": ["valid"], "values": ["values"]}),
    "set": (["PySetObject"], {"fill": ["fill"], "used": ["used"], "mask": ["mask"],
                              "table": ["table"], "smalltable": ["smalltable"]}),
    "setentry": (["setentry"], {"key": ["key"], "hash": ["hash"]}),
    "float": (["PyFloatObject"], {"ob_fval": ["ob_fval"]}),
    "complex": (["PyComplexObject"], {"cval": ["cval"]}),
    "long": (["PyLongObject", "struct _longobject"], {
        "lv_tag": ["long_value.lv_tag"],                         # 3.12+
        "ob_digit": ["long_value.ob_digit", "ob_digit"]}),
    "function": (["PyFunctionObject"], {
        "func_code": ["func_code"], "func_globals": ["func_globals"],
        "func_builtins": ["func_builtins"], "func_name": ["func_name"],
        "func_qualname": ["func_qualname"], "func_defaults": ["func_defaults"],
        "func_kwdefaults": ["func_kwdefaults"], "func_closure": ["func_closure"],
        "func_doc": ["func_doc"], "func_dict": ["func_dict"], "func_module": ["func_module"],
        "func_annotations": ["func_annotations"], "func_weakreflist": ["func_weakreflist"],
        "func_typeparams": ["func_typeparams"]}),
    "method": (["PyMethodObject"], {"im_func": ["im_func"], "im_self": ["im_self"]}),
    "cfunction": (["PyCFunctionObject"], {"m_ml": ["m_ml"], "m_self": ["m_self"],
                                          "m_module": ["m_module"]}),
    "methoddef": (["PyMethodDef", "struct PyMethodDef"], {"ml_name": ["ml_name"]}),
    "module": (["PyModuleObject"], {"md_dict": ["md_dict"], "md_name": ["md_name"],
                                    "md_state": ["md_state"]}),
    "cell": (["PyCellObject"], {"ob_ref": ["ob_ref"]}),
    "exception": (["PyBaseExceptionObject"], {
        "dict": ["dict"], "args": ["args"], "notes": ["notes"], "traceback": ["traceback"],
        "context": ["context"], "cause": ["cause"]}),
    "range": (["rangeobject"], {"start": ["start"], "stop": ["stop"], "step": ["step"],
                                "length": ["length"]}),
    "slice": (["PySliceObject"], {"start": ["start"], "stop": ["stop"], "step": ["step"]}),
    "gen": (["PyGenObject"], {
        "gi_frame": ["gi_frame"], "gi_code": ["gi_code"],          # 3.8-3.10
        "gi_name": ["gi_name"], "gi_qualname": ["gi_qualname"],
        "gi_weakreflist": ["gi_weakreflist"],
        "gi_frame_state": ["gi_frame_state"], "gi_iframe": ["gi_iframe"]}),  # 3.11+
    "weakref": (["PyWeakReference", "struct _PyWeakReference"], {
        "wr_object": ["wr_object"], "wr_callback": ["wr_callback"], "hash": ["hash"]}),
    "gcstate": (["struct _gc_runtime_state"], {
        "generations": ["generations"], "generation0": ["generation0"],
        "permanent_generation": ["permanent_generation"], "young": ["young"],
        "old": ["old"], "enabled": ["enabled"], "collecting": ["collecting"]}),
    "gcgen": (["struct gc_generation"], {"head": ["head"], "threshold": ["threshold"],
                                         "count": ["count"]}),
    "gchead": (["PyGC_Head"], {"gc_next": ["_gc_next"], "gc_prev": ["_gc_prev"]}),
    "mappingproxy": (["mappingproxyobject"], {"mapping": ["mapping"]}),
    "property": (["propertyobject"], {
        "prop_get": ["prop_get"], "prop_set": ["prop_set"], "prop_del": ["prop_del"],
        "prop_doc": ["prop_doc"], "prop_name": ["prop_name"]}),          # prop_name: 3.10+
    "memberdescr": (["PyMemberDescrObject"], {"d_member": ["d_member"]}),
    "descr": (["PyDescrObject"], {"d_type": ["d_type"], "d_name": ["d_name"],
                                  "d_qualname": ["d_qualname"]}),
    "classmethod": (["classmethod"], {"callable": ["cm_callable"], "dict": ["cm_dict"]}),
    "staticmethod": (["staticmethod"], {"callable": ["sm_callable"], "dict": ["sm_dict"]}),
    "methodwrapper": (["wrapperobject"], {"descr": ["descr"], "self": ["self"]}),
    # C types of the standard library that hold objects in fields of their own.
    "lrucache": (["lru_cache_object"], {
        "cache": ["cache"], "func": ["func"], "kwd_mark": ["kwd_mark"],
        "cache_info_type": ["cache_info_type"], "dict": ["dict"]}),
    "partial": (["partialobject"], {"fn": ["fn"], "args": ["args"], "kw": ["kw"],
                                    "dict": ["dict"]}),
    "deque": (["dequeobject"], {"leftblock": ["leftblock"], "rightblock": ["rightblock"],
                                "leftindex": ["leftindex"], "rightindex": ["rightindex"],
                                "maxlen": ["maxlen"]}),
    "dequeblock": (["block"], {"leftlink": ["leftlink"], "data": ["data"],
                               "rightlink": ["rightlink"]}),
    "pattern": (["PatternObject"], {"groupindex": ["groupindex"],
                                    "indexgroup": ["indexgroup"], "pattern": ["pattern"]}),
    "defaultdict": (["defdictobject"], {"default_factory": ["default_factory"]}),
    "odict": (["PyODictObject"], {"od_inst_dict": ["od_inst_dict"]}),
}

# Enumerations whose values moved between versions: name -> C enum candidates.
ENUMS = {"framestate": ["enum _framestate"], "frameowner": ["enum _frameowner"]}

# Structs of extension modules (lib-dynload/NAME.cpython-*.so, or built in): module ->
# (struct spec as SPEC, enums as ENUMS).
_FUT = {"loop": "loop", "callback0": "callback0", "callbacks": "callbacks",
        "exception": "exception", "result": "result", "state": "state",
        "cancel_msg": "cancel_msg", "dict": "dict"}
EXTENSIONS = {
    "_asyncio": ({
        "future": (["FutureObj"], {k: ["fut_" + v if k != "dict" else "dict"]
                                   for k, v in _FUT.items()}),
        "task": (["TaskObj"], dict({k: ["task_" + v if k != "dict" else "dict"]
                                    for k, v in _FUT.items()},
                                   fut_waiter=["task_fut_waiter"], coro=["task_coro"],
                                   name=["task_name"], context=["task_context"])),
        "futureiter": (["futureiterobject"], {"future": ["future"]}),
    }, {"futstate": ["fut_state", "enum fut_state"]}),
}

GDB_SCRIPT = r'''
import gdb, json, os
spec = json.loads(os.environ["NSD_SPEC"])
out = {}
def find_type(names):
    for n in names:
        try:
            return gdb.lookup_type(n).strip_typedefs()
        except gdb.error:
            pass
        if not n.startswith("struct "):
            try:
                return gdb.lookup_type("struct " + n).strip_typedefs()
            except gdb.error:
                pass
    return None
def offset_of(t, path):
    off = 0
    for part in path.split("."):
        t = t.strip_typedefs()
        hit = None
        for f in t.fields():
            if f.name == part:
                hit = f
                break
        if hit is None:
            return None
        off += hit.bitpos // 8
        t = hit.type
    return off
for alias, (names, fields) in spec.items():
    t = find_type(names)
    if t is None:
        out[alias] = None
        continue
    row = {"size": t.sizeof, "fields": {}}
    for falias, paths in fields.items():
        val = None
        for p in paths:
            val = offset_of(t, p)
            if val is not None:
                break
        row["fields"][falias] = val
    out[alias] = row
debug = None
try:
    t = gdb.lookup_type(os.environ["NSD_DEBUG_TYPE"]).strip_typedefs()
    debug = {"size": t.sizeof, "sections": {}}
    for f in t.fields():
        ft = f.type.strip_typedefs()
        if ft.code == gdb.TYPE_CODE_STRUCT:
            debug["sections"][f.name] = {"at": f.bitpos // 8, "size": ft.sizeof,
                "fields": {g.name: g.bitpos // 8 for g in ft.fields()}}
        else:
            debug["sections"].setdefault("", {"at": 0, "size": 0, "fields": {}})
            debug["sections"][""]["fields"][f.name] = f.bitpos // 8
except gdb.error:
    pass
enums = {}
for alias, names in json.loads(os.environ["NSD_ENUMS"]).items():
    for n in names:
        try:
            t = gdb.lookup_type(n).strip_typedefs()
        except gdb.error:
            continue
        enums[alias] = {f.name: f.enumval for f in t.fields()}
        break
with open(os.environ["NSD_OUT"], "w") as f:
    json.dump({"types": out, "debug_offsets": debug, "enums": enums}, f, indent=1,
              sort_keys=True)
'''


def python_prefixes():
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    for d in sorted(glob.glob(os.path.join(root, "versions", "3.*"))):
        parts = os.path.basename(d).split(".")
        if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) >= 8:
            yield d


def debian_pythons():
    """Interpreters tools/get_pythons.sh fetched (with their debug files)."""
    r = subprocess.run(["bash", os.path.join(HERE, "get_pythons.sh"), "--dbg"],
                       capture_output=True, text=True)
    for line in r.stdout.splitlines():
        yield line.split(" ", 1)[1]


def build_of(python):
    """(interpreter, binary with the DWARF or its debug link, debug dir or None, source)."""
    if os.path.isdir(python):
        exe = os.path.join(python, "bin", "python3")
        libs = sorted(glob.glob(os.path.join(python, "lib", "libpython3.*.so.1.0")))
        return exe, (libs[0] if libs else os.path.realpath(exe)), None, "pyenv"
    exe = os.path.realpath(python)
    root = os.path.dirname(os.path.dirname(os.path.dirname(exe)))    # <root>/usr/bin/python3.X
    debug_dir = os.path.join(root, "usr", "lib", "debug")
    if os.path.isdir(debug_dir):
        return exe, exe, debug_dir, "debian"
    return exe, exe, None, "local"


def build_id(path):
    r = subprocess.run(["readelf", "-n", path], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if "Build ID:" in line:
            return line.split()[-1]
    return None


def full_version(exe):
    return subprocess.run([exe, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def dump(binary, debug_dir, spec, enums):
    """What gdb reads from one binary's DWARF: types, _Py_DebugOffsets, enums."""
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "dump.py")
        out = os.path.join(tmp, "out.json")
        with open(script, "w") as f:
            f.write(GDB_SCRIPT)
        env = dict(os.environ, NSD_SPEC=json.dumps(spec), NSD_OUT=out,
                   NSD_DEBUG_TYPE=DEBUG_OFFSETS_TYPE, NSD_ENUMS=json.dumps(enums))
        pre = ["-ex", f"set debug-file-directory {debug_dir}"] if debug_dir else []
        r = subprocess.run(["gdb", "-batch", "-nx", *pre, "-ex", f"file {binary}",
                            "-ex", f"source {script}"], capture_output=True, text=True, env=env)
        if not os.path.exists(out):
            raise SystemExit(f"gdb failed on {binary}: {r.stderr[-2000:]}")
        with open(out) as f:
            return json.load(f)


def extension_file(exe, name):
    """The extension module NAME of an interpreter, or None (built in)."""
    r = subprocess.run([exe, "-c", f"import {name}; print(getattr({name}, '__file__', ''))"],
                       capture_output=True, text=True)
    return r.stdout.strip() or None


def generate(python):
    exe, binary, debug_dir, source = build_of(python)
    version = full_version(exe)
    dumped = dump(binary, debug_dir, SPEC, ENUMS)
    for module, (spec, enums) in EXTENSIONS.items():
        path = extension_file(exe, module) or binary
        more = dump(path, debug_dir, spec, enums)
        dumped["types"].update(more["types"])
        dumped["enums"].update(more["enums"])
    types = dumped["types"]
    if all(v is None for v in types.values()):
        raise SystemExit(f"{binary} has no DWARF (for a stripped build, fetch its debug files)")
    missing = [a for a, v in types.items() if v is None]
    data = {"version": version, "source": source, "binary": os.path.basename(binary),
            "build_id": build_id(binary), "types": types}
    if dumped["debug_offsets"]:
        data["debug_offsets"] = dumped["debug_offsets"]
    if dumped["enums"]:
        data["enums"] = dumped["enums"]
    os.makedirs(OUT, exist_ok=True)
    name = f"{version}-{source}"
    path = os.path.join(OUT, "t" + name.replace(".", "_").replace("-", "_") + ".py")
    with open(path, "w") as f:
        # Plain data as Python literals: the package imports its own tables from their
        # compiled form (no JSON parser, no `re`, at start-up); other directories' are
        # read with ast.literal_eval.
        f.write(f'"""CPython {version} ({source}): struct layouts generated by '
                f'tools/gen_layouts.py."""\n\nNAME = {name!r}\nTABLE = '
                + pprint.pformat(data, width=100, sort_dicts=True) + "\n")
    print(f"{path}: {version} from {binary}; types absent in this version: "
          f"{', '.join(missing) or 'none'}")


def main(argv):
    global OUT
    debian = "--debian" in argv
    argv = [a for a in argv if a != "--debian"]
    if "--out" in argv:
        i = argv.index("--out")
        OUT = argv[i + 1]
        del argv[i:i + 2]
    pythons = argv or list(python_prefixes())
    if debian:
        pythons += list(debian_pythons())
    for python in pythons:
        generate(python)
    if os.path.abspath(OUT) == os.path.abspath(DATA):
        write_index(OUT)


def write_index(folder):
    """data/index.py: each shipped table's version and the fields any of them has, so
    that nsdebug loads only the tables of the core's version."""
    sys.path.insert(0, ROOT)
    from nsdebug.cpython.layouts import _read_table, table_version
    tables, fields = {}, {}
    for name in sorted(os.listdir(folder)):
        version = table_version(name)
        if version is None:
            continue
        tables[name[:-3]] = version
        for alias, row in _read_table(os.path.join(folder, name))[1]["types"].items():
            fields.setdefault(alias, set()).update(row["fields"] if row else ())
    with open(os.path.join(folder, "index.py"), "w") as f:
        f.write('"""The shipped tables (module: version) and every field some table gives '
                'each struct,\nwritten by tools/gen_layouts.py with the tables."""\n\n'
                f"TABLES = {pprint.pformat(tables, width=100)}\n"
                f"FIELDS = {pprint.pformat({a: sorted(v) for a, v in fields.items()}, width=100, compact=True)}\n")  # noqa: E501


if __name__ == "__main__":
    main(sys.argv[1:])
