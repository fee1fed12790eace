"""`arthur crash-handler`: the kernel pipes every crash's core into arthur, which keeps it
as a self-contained capture in a spool, with a JSON record beside it.

install sets kernel.core_pattern to `|<python> -I -m arthur.crashhandler %P %I %u %g %s
%t %d %E` and kernel.core_pipe_limit so that the kernel waits for the handler (keeping
/proc/PID readable: the mapped files are read through /proc/PID/map_files, from inside
the crashed process's mount namespace), remembering both previous values in
/etc/arthur/crash-handler.json with the spool and its rules (the pattern itself has no
room for them: the kernel keeps 127 bytes of it); uninstall puts them back exactly.

handle runs as root in the initial namespaces, with no environment, for each crash:
it streams the core (corestream.py) into the spool (spool.py), releases the crashed
process by closing the pipe, then asks nsdebug for the crash line and writes the
record. Whatever of its own fails, the plain core the kernel sent is written instead.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sys
import time

from . import __version__, procfs
from .coreformat import SIGNALS
from .errors import ArthurError
from .faults import faultpoint
from .facts import process_facts, python_version_from_maps, record_base
from .spool import Spool, share_with

CORE_PATTERN = "/proc/sys/kernel/core_pattern"
PIPE_LIMIT = "/proc/sys/kernel/core_pipe_limit"
CONFIG = "/etc/arthur/crash-handler.json"
PATTERN_MAX = 127                 # CORENAME_MAX_SIZE less the terminating NUL
PIPE_LIMIT_SET = 64               # crashes handled at once (the rest get no core)
SPECIFIERS = "%P %I %u %g %s %t %d %E"
FREE_CHECK_EVERY = 8 << 20        # bytes written between two free-space checks
SUMMARY_TIMEOUT = 120
DEFAULTS = {"keep": 20, "max_total": None, "min_free": 1 << 30, "rate": [10, 60]}


def _read(path):
    with open(path) as f:
        return f.read().rstrip("\n")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _python(module):
    """The words that run `module` with this interpreter, isolated (-I): the kernel starts
    the handler in "/", and `python -m` puts the directory it runs in first on sys.path,
    so that an `arthur` or `nsdebug` folder there would be run, as root, instead of the
    one installed. -I leaves out nothing the handler has: the kernel gives it no
    environment, and site-packages (a venv's too) stays on the path."""
    return [sys.executable, "-I", "-m", module]


def handler_command():
    return " ".join(_python("arthur.crashhandler"))


def is_ours(pattern):
    # Also a pattern installed before the handler ran isolated (no -I): an upgraded
    # arthur must still uninstall it.
    return re.match(r"^\|\S+ (-I )?-m arthur\.crashhandler ", pattern) is not None


def read_config():
    try:
        with open(CONFIG) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_config(cfg):
    from .safefile import PrivateOutput
    os.makedirs(os.path.dirname(CONFIG), mode=0o755, exist_ok=True)
    with PrivateOutput(CONFIG, force=True, binary=False) as f:
        json.dump(cfg, f, indent=1, sort_keys=True)


def install(spool_dir, keep=None, max_total=None, min_free=None, rate=None):
    """Install the handler; returns the pattern set."""
    if not os.access(CORE_PATTERN, os.W_OK):
        raise ArthurError(f"{CORE_PATTERN} is not writable (run as root, outside a "
                          f"container)")
    if " " in sys.executable:
        raise ArthurError("python's path cannot hold spaces (core_pattern splits on them)")
    spool = Spool(spool_dir, create=True)
    pattern = f"|{handler_command()} {SPECIFIERS}"
    if len(pattern) > PATTERN_MAX:
        raise ArthurError(f"the handler's core_pattern would be {len(pattern)} bytes, over "
                          f"the kernel's {PATTERN_MAX}: install arthur under a shorter path")
    current, limit = _read(CORE_PATTERN), int(_read(PIPE_LIMIT))
    old = read_config() if is_ours(current) else {}
    if "previous_pattern" in old:         # reinstalled: what was there before arthur
        previous, previous_limit = old["previous_pattern"], old.get("previous_pipe_limit", 0)
    else:
        previous, previous_limit = current, limit
    cfg = dict(DEFAULTS)
    cfg.update({k: v for k, v in {"keep": keep, "max_total": max_total,
                                   "min_free": min_free, "rate": rate}.items()
                if v is not None})
    cfg.update({"spool": spool.path, "previous_pattern": previous,
                "previous_pipe_limit": previous_limit, "pattern": pattern,
                "installed_at": time.time(), "version": __version__})
    write_config(cfg)
    _write(PIPE_LIMIT, str(max(limit, PIPE_LIMIT_SET)))
    _write(CORE_PATTERN, pattern)
    return pattern


def uninstall():
    """Put back the pattern and pipe limit found at install; returns them."""
    current = _read(CORE_PATTERN)
    if not is_ours(current):
        raise ArthurError(f"no arthur crash handler is installed (core_pattern is "
                          f"{current!r})")
    cfg = read_config()
    if "previous_pattern" not in cfg:
        raise ArthurError(f"{CONFIG} is lost: set {CORE_PATTERN} by hand")
    _write(CORE_PATTERN, cfg["previous_pattern"])
    _write(PIPE_LIMIT, str(cfg.get("previous_pipe_limit", 0)))
    try:
        os.unlink(CONFIG)
    except OSError:
        pass
    return cfg["previous_pattern"], cfg.get("previous_pipe_limit", 0)


def status():
    """What is installed and what the spool holds, as a dict."""
    current = _read(CORE_PATTERN)
    out = {"core_pattern": current, "core_pipe_limit": int(_read(PIPE_LIMIT)),
           "installed": False}
    cfg = read_config()
    if not is_ours(current) or "spool" not in cfg:
        return out
    where = cfg["spool"]
    spool = Spool(where)
    entries = spool.entries()
    caps = [e for e in entries if e.capture]
    # The kernel runs what the pattern names: a virtual environment removed since
    # install would lose every core from then on.
    program = current[1:].split()[0]
    out.update({"installed": True, "spool": where, "handler": program,
                "handler_runs": os.access(program, os.X_OK),
                "previous_pattern": cfg.get("previous_pattern"),
                "rules": {k: cfg.get(k) for k in DEFAULTS},
                "captures": len(caps), "records": len(entries),
                "bytes": sum(e.size for e in caps), "free": spool.free_bytes(),
                "latest": entries[-1].record if entries else None})
    return out


# -- one crash -------------------------------------------------------------------------
def _kmsg(text):
    """A line in the kernel log: the one place a handler started by the kernel is heard."""
    try:
        fd = os.open("/dev/kmsg", os.O_WRONLY)
        try:
            os.write(fd, f"arthur crash-handler: {text}\n".encode()[:900])
        finally:
            os.close(fd)
    except OSError:
        pass


def _standard_fds():
    """The kernel starts the handler with only stdin: fds 1 and 2 go to /dev/null, so
    that no file opened later takes their numbers."""
    for fd in (1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _started_at():
    """CLOCK_BOOTTIME seconds when this process was started (the kernel's helper spawn)."""
    with open("/proc/self/stat") as f:
        raw = f.read()
    start_ticks = int(raw[raw.rindex(")") + 2:].split()[19])
    return start_ticks / os.sysconf("SC_CLK_TCK")


class Crash:
    """The kernel's arguments (SPECIFIERS) for one crash."""

    def __init__(self, args):
        if len(args) < 8:
            raise ArthurError("crash-handler handle: the kernel passes "
                              f"{SPECIFIERS}; got {len(args)} arguments")
        self.pid, self.tid, self.uid, self.gid, self.signal = map(int, args[:5])
        self.time = int(args[5])
        self.dump_mode = int(args[6])
        self.exe_name = args[7].replace("!", "/")


def handle(args, stdin_fd=0):
    """Take one crash's core from `stdin_fd`; returns the record written."""
    from .capture import mapped_files, resident_pages
    from .coreformat import ARTHUR_NOTE_NAME, NT_ARTHUR_RESIDENT, encode_residency, note
    from .corestream import Converter, Stream, StreamError, read_head
    from .extracts import extract_files
    from .lz4core import ContainerReader, ContainerWriter
    _standard_fds()
    begun = _started_at()
    crash = Crash(args)
    cfg = {**DEFAULTS, **read_config()}
    if "spool" not in cfg:
        raise ArthurError(f"{CONFIG} names no spool")
    spool = Spool(cfg["spool"])
    facts = process_facts(crash.pid)
    exe = facts.get("executable") or crash.exe_name
    record = record_base(crash.pid, crash.uid, crash.gid, crash.time, "crash",
                         dict(facts, executable=exe))
    record.update({"tid": crash.tid, "signal": crash.signal,
                   "signal_name": SIGNALS.get(crash.signal), "dump_mode": crash.dump_mode})
    warn = record["warnings"].append
    owner = None if crash.dump_mode == 2 else crash.uid   # setuid cores stay root's
    stem = spool.stem(exe, crash.pid, crash.time)
    count, seconds = cfg["rate"]
    with spool.locked():
        too_many = spool.recent(exe, seconds) >= count
        if too_many:
            record["dropped"] = (f"rate limit: {count} crashes of {exe} within {seconds} s "
                                 f"already kept")
        elif cfg.get("min_free") and spool.free_bytes() < cfg["min_free"]:
            record["dropped"] = "free space is under --min-free"
        if "dropped" in record:
            spool.write_record(stem, record, owner)
            return record
        # A record at once, so the next crash counts this one against the rate.
        spool.write_record(stem, dict(record, core="in progress"), owner)

    stream = Stream(stdin_fd)
    maps = []
    try:
        maps = procfs.mappings(crash.pid)
    except ArthurError as e:
        warn(f"mappings: {e}")
    record["python"] = python_version_from_maps(maps)
    # Which pages were resident, before the core is read: the kernel, blocked on the
    # pipe, has dumped only what fits in it, and dumping a file's page maps it in.
    resident = resident_pages(maps, crash.pid, crash.pid, {}, warn) if maps else None
    try:
        head = read_head(stream)
    except (StreamError, OSError) as e:
        warn(f"the kernel's core could not be read as a core ({e}); kept as sent")
        _write_plain(spool, stem, stream.rest_plain, record, owner)
        return _finish(spool, stem, record, owner, cfg, begun, stdin_fd)

    try:
        extracts, kept = extract_files(mapped_files(maps, crash.pid), warn)
        if resident:
            extracts = note(ARTHUR_NOTE_NAME, NT_ARTHUR_RESIDENT,
                            encode_residency(resident)) + extracts
        meta = {"tool": "arthur", "version": __version__, "pid": crash.pid, "mode": "crash",
                "pause_ms": None, "captured_at": crash.time, "threads": head.threads,
                "compressed": True, "files_kept": kept, "signal": crash.signal,
                "started_at": record.get("started_at"), "rss": record.get("rss")}
        conv = Converter(stream, head, meta, extracts)
        out = spool.output(stem + ".lz4")
    except Exception as e:  # noqa: BLE001 - nothing copied yet: the plain core instead
        warn(f"the capture could not start ({type(e).__name__}: {e}); the plain core is "
             f"kept")
        bare = Converter(stream, head, {})
        _write_plain(spool, stem, lambda o: bare.plain_fallback(None, o), record, owner)
        return _finish(spool, stem, record, owner, cfg, begun, stdin_fd)
    writer = ContainerWriter(out.f, 0)
    checked = [0]

    def progress(written):
        faultpoint("crash-mid-stream")          # tests: a failure part way
        if written - checked[0] >= FREE_CHECK_EVERY:
            checked[0] = written
            if cfg.get("min_free") and spool.free_bytes() < cfg["min_free"]:
                raise SpoolFull()

    try:
        conv.run(writer, progress)
        writer.close()
        out.f.flush()
        if cfg.get("min_free") and spool.free_bytes() < cfg["min_free"]:
            raise SpoolFull()
        out.commit()
        record["core"] = stem + ".lz4"
        record["raw_size"] = conv.written
        if conv.missing:
            warn(f"the kernel's core lacked {conv.missing} bytes (zero-filled)")
    except SpoolFull:
        writer.abort()
        out.discard()
        record["dropped"] = "free space fell under --min-free while the core was written"
    except Exception as e:  # noqa: BLE001 - any failure of ours: the plain core instead
        warn(f"the capture failed ({type(e).__name__}: {e}); the plain core is kept")
        try:
            writer.close()
            out.f.flush()
            part = os.open(f"/proc/self/fd/{out.f.fileno()}", os.O_RDONLY)
            try:
                size = os.fstat(part).st_size
                reader = ContainerReader(lambda off, n: os.pread(part, n, off), size)
                _write_plain(spool, stem, lambda o: conv.plain_fallback(reader.read, o),
                             record, owner)
            finally:
                os.close(part)
        finally:
            out.discard()
    return _finish(spool, stem, record, owner, cfg, begun, stdin_fd)


class SpoolFull(Exception):
    pass


def _write_plain(spool, stem, fill, record, owner):
    out = spool.output(stem + ".core")
    try:
        fill(out)
        out.commit()
    except BaseException:
        out.discard()
        raise
    record["core"] = stem + ".core"


def _finish(spool, stem, record, owner, cfg, begun, stdin_fd):
    """Release the crashed process, keep the spool in its limits, name the crash, write
    the record."""
    os.close(stdin_fd)                       # the kernel now lets the process go
    boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    record["held_ms"] = round((boot - begun) * 1000, 1)
    record["handler_peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cap = record.get("core")
    if cap and cap != "in progress":
        path = os.path.join(spool.path, cap)
        record["file_size"] = os.path.getsize(path)
        if owner is not None and not share_with(path, owner):
            record["warnings"].append("the spool's file system keeps no ACLs: the capture "
                                      "is readable by root only")
        with spool.locked():
            spool.prune(cfg.get("keep"), cfg.get("max_total"), protect={stem})
            if cfg.get("max_total") and record["file_size"] > cfg["max_total"]:
                os.unlink(path)
                record["core"] = None
                record["dropped"] = "the capture alone is larger than --max-total"
        if record.get("core") and record["core"].endswith(".lz4"):
            record.update(_summary(path))
    spool.write_record(stem, record, owner)
    return record


def _summary(path):
    """nsdebug's crash line and the CPython version, read from the finished capture (by
    the nsdebug installed beside this arthur: _python)."""
    import subprocess
    try:
        r = subprocess.run(_python("nsdebug") + [path, "-c", "info", "--json"],
                           capture_output=True, text=True, timeout=SUMMARY_TIMEOUT,
                           env={"PATH": "/usr/bin:/bin", "HOME": "/"})
        info = json.loads(r.stdout.splitlines()[0]) if r.returncode == 0 else None
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired) as e:
        return {"summary_error": f"{type(e).__name__}: {e}"}
    if info is None:
        return {"summary_error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    out = {"crash": info.get("crash")}
    py = info.get("python") or {}
    if py.get("version"):
        out["python"] = py["version"]
    return out


def handle_main(argv):
    """Entry point for the kernel: never raises, never prints (nobody listens)."""
    try:
        handle(argv)
        return 0
    except BaseException as e:  # noqa: BLE001
        _kmsg(f"{type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(handle_main(sys.argv[1:]))
