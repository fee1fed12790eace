"""Crash signatures: one line that names a bug, the same for every crash of it whatever
the addresses, line numbers or interpreter version, and different for different bugs.

The crashed thread's frames, innermost first, native and Python merged, are read as
Socorro reads a native stack:

- a frame the **skip** list matches is passed over (the interpreter's call plumbing,
  libc's internals, the allocator, abort and assert, thread start-up);
- a frame the **prefix** list matches goes into the signature and the walk goes on (it
  is not specific enough alone: a C-API function an extension called, a Python frame
  of `ctypes` or `threading`);
- the first other native frame goes in, and the native part ends; then the same for
  the Python frames: prefix frames, then the first other Python frame, and the end.

A native frame is its function's name (no address, no offset, an LTO or clone suffix
cut, so `foo.lto_priv.0` is `foo`); a frame of the C library or the loader, or an
unnamed frame of the interpreter, is skipped; an unnamed frame elsewhere is its
module's stem (`libfoo`). A Python frame is `module:function` (the file's module name
and the function's name, not its qualified name, which only 3.11+ records). Lines and
files stay in the details, not in the signature. A stack overflow is named as one,
with the Python frame that recursed: where in C the guard page was hit is chance.

Users extend the lists with a JSON file (`--rules FILE`: {"skip": [...], "prefix":
[...]}, regular expressions searched in the frame's text); docs/guide.md lists the
defaults.
"""

from __future__ import annotations

import json
import os
import re

from ..errors import NsdebugError

# Frames that say nothing of the bug (searched in the frame's text).
SKIP = [
    # the eval loop and the call machinery between Python frames (model.stacks'
    # plumbing, and its callers' helpers)
    r"^_?PyEval_", r"^_Py", r"^_TAIL_CALL_", r"^Py(Object|Vectorcall|CFunction|Method)_Call",
    r"(?i:vectorcall)", r"^(cfunction|method|function|builtin|slot|wrapper|wrapperdescr|"
    r"methoddescr|classmethoddescr|type|proxy|weakref|instance|instancemethod)_call",
    r"^call_function", r"^do_call_core$", r"^fast_function$", r"^function_code_fastcall$",
    r"^object_vacall$", r"^cmpwrapper_call$", r"^method_vectorcall",
    # thread and process start-up
    r"^_start$", r"^__libc_start", r"^start_thread$", r"^__?clone3?$", r"^t_bootstrap$",
    r"^thread_run$", r"^pythread_wrapper$", r"^Py_(Bytes)?Main$", r"^Py_RunMain$",
    r"^pymain_", r"^PyRun_", r"^run_(mod|eval_code_obj)$",
    # abort and assert, and the signal's own delivery
    r"^abort$", r"^raise$", r"^gsignal$", r"^__pthread_kill", r"^pthread_kill$",
    r"^os_abort", r"^__assert", r"^Py_FatalError", r"^fatal_error", r"^__restore_rt$",
    r"^faulthandler_(fatal_error|dump)",
    # the allocator
    r"^(malloc|free|calloc|realloc|cfree)$", r"^_int_(malloc|free|realloc)",
    r"^malloc_(printerr|consolidate)", r"^tcache_", r"^_?PyMem_", r"^pymalloc_",
    r"^_?PyObject_(Malloc|Free|Realloc|Calloc)",
    # ctypes' and libffi's call machinery
    r"^ffi_", r"^_call_function_pointer$", r"^_ctypes_callproc$", r"^PyCFuncPtr_call$",
]
# Frames that go into the signature but do not end it.
PREFIX = [
    # a C-API function: the bug is in whoever called it
    r"^Py[A-Z][A-Za-z]*_[A-Za-z]",
    # Python frames of the standard library's plumbing
    r"^(ctypes|threading|functools|contextlib|runpy|concurrent\.futures\..*|"
    r"asyncio\..*|importlib\..*|multiprocessing\..*):",
]
# Modules whose frames are skipped whatever their name: the C library and the loader.
SYSTEM_MODULES = re.compile(r"^(libc|libpthread|libdl|librt|libm|ld-linux[^.]*|ld)[.-]")
INTERPRETER_MODULES = re.compile(r"^(lib)?python\d")
MAX_FRAMES = 6


class Rules:
    """The skip and prefix lists, compiled (the defaults, then a user's additions)."""

    def __init__(self, skip=(), prefix=()):
        self.skip_text = SKIP + list(skip)
        self.prefix_text = PREFIX + list(prefix)
        self.skip = re.compile("|".join(f"(?:{p})" for p in self.skip_text))
        self.prefix = re.compile("|".join(f"(?:{p})" for p in self.prefix_text))

    @classmethod
    def load(cls, path=None):
        """The default rules, extended with those of a JSON file when given."""
        if path is None:
            return cls()
        try:
            with open(path) as f:
                data = json.load(f)
            return cls(_patterns(data, "skip"), _patterns(data, "prefix"))
        except OSError as e:
            raise NsdebugError(f"cannot read the rules {path}: {e.strerror}") from None
        except (ValueError, re.error) as e:
            raise NsdebugError(f"bad rules in {path}: {e}") from None


def _patterns(data, key):
    items = data.get(key, []) if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
        raise ValueError(f'"{key}" must be a list of regular expressions')
    for p in items:
        re.compile(p)
    return items


def native_text(function, module):
    """A native frame as the signature spells it, or None to skip it."""
    module = os.path.basename(module or "")
    if SYSTEM_MODULES.match(module):
        return None
    if function:
        return re.split(r"[.@]", function, 1)[0] or None
    if not module or INTERPRETER_MODULES.match(module):
        return None
    return module.split(".", 1)[0]


def python_text(function, filename):
    """A Python frame as `module:function`."""
    return f"{module_name(filename)}:{(function or '?').rsplit('.', 1)[-1]}"


def module_name(filename):
    """The module a source file holds, by its path: `pkg/__init__.py` is `pkg`, a
    frozen module its own name."""
    name = filename or "?"
    if name.startswith("<frozen ") and name.endswith(">"):
        return name[8:-1]
    base = os.path.basename(name)
    if base == "__init__.py":
        return os.path.basename(os.path.dirname(name)) or "?"
    return base[:-3] if base.endswith(".py") else base


def signature(signal_name, frames, overflow=False, rules=None):
    """(the signature, the frames it names) of a crash: `frames` innermost first, each
    {"kind": "native"|"python", "function", "module" (native), "file" (python)}."""
    rules = rules or Rules()
    parts = []
    native_done = overflow         # an overflow's C frames are where it happened to end
    for f in frames:
        python = f.get("kind") == "python"
        if not python and native_done:
            continue
        native_done = native_done or python    # C that called Python says nothing more
        text = python_text(f.get("function"), f.get("file")) if python else \
            native_text(f.get("function"), f.get("module"))
        if text is None or rules.skip.search(text):
            continue
        parts.append(text)
        if len(parts) >= MAX_FRAMES:
            break
        if rules.prefix.search(text):
            continue
        if python:
            break
        native_done = True
    head = f"{signal_name} (stack overflow)" if overflow else signal_name
    return " | ".join([head] + parts), parts
