"""What the process knew about itself: its environment, GC state, and loaded modules."""

from __future__ import annotations

import struct

from ..errors import NsdebugError

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "KEY", "CREDENTIAL",
                "AUTH", "COOKIE", "SESSION", "PRIVATE", "SIGNATURE", "DSN")
REDACTED = "<redacted>"
MAX_VARS = 1 << 14


def is_secret(name):
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def environment(process):
    """[(name, value)] of the process's current environment: libc's `environ` (it sees
    putenv/os.environ changes), else the environment it started with."""
    mem = process.memory
    for name in ("__environ", "environ"):
        try:
            arr = mem.u64(process.symbol_address(name))
        except NsdebugError:
            continue
        out = []
        try:
            for i in range(MAX_VARS):
                p = mem.u64(arr + 8 * i)
                if not p:
                    break
                out.append(mem.cstring(p, 1 << 16).decode("utf-8", "surrogateescape"))
            return [tuple(v.split("=", 1)) if "=" in v else (v, "") for v in out]
        except NsdebugError:
            continue
    return [tuple(v.split("=", 1)) if "=" in v else (v, "")
            for v in process.initial_stack.environ]


def redacted_environment(process):
    """(rows [(name, value or <redacted>)], the secret values that were hidden)."""
    rows, secrets = [], []
    for name, value in environment(process):
        if is_secret(name) and value:
            rows.append((name, REDACTED))
            secrets.append(value)
        else:
            rows.append((name, value))
    return rows, secrets


def gc_state(rt):
    """{'enabled', 'collecting', 'generations': [{count, threshold}]} of the main interpreter."""
    L, o = rt.layout, rt.objects
    o.need_table("the GC state")
    gc = rt.main_interpreter.address + L.interp.gc if L.interp.gc is not None \
        else rt.address + L.runtime.gc
    i32 = lambda a: struct.unpack("<i", rt.memory.read(a, 4))[0]  # noqa: E731
    gens = []
    for i in range(3):
        g = gc + L.gcstate.generations + i * L.gcgen.size
        gens.append({"generation": i, "count": i32(g + L.gcgen.count),
                     "threshold": i32(g + L.gcgen.threshold)})
    out = {"generations": gens}
    for field in ("enabled", "collecting"):
        off = getattr(L.gcstate, field)
        if off is not None:
            out[field] = bool(i32(gc + off))
    del o
    return out


def loaded_modules(rt, limit=5000):
    """[(name, version or None, file or None)] from sys.modules."""
    o = rt.objects
    out = []
    for key, module in o.dict_items(rt.main_interpreter.modules)[:limit]:
        try:
            name = o.read_str(key, 200)
            version = path = None
            if o.kind(module) == "module":
                md = o.ptr(module + rt.layout.module.md_dict)
                for attr in ("__version__", "VERSION", "version"):
                    v = o.dict_get_str(md, attr) if md else None
                    if v and o.kind(v) == "str":
                        version = o.read_str(v, 100)
                        break
                f = o.dict_get_str(md, "__file__") if md else None
                if f and o.kind(f) == "str":
                    path = o.read_str(f, 500)
            out.append((name, version, path))
        except NsdebugError:
            continue
    return sorted(out)
