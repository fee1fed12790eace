"""`nsdebug CORE [EXECUTABLE] [-c CMD]... [--json]`: argument parsing and exit codes only."""

from __future__ import annotations

import os
import sys

from . import __version__
from .batch import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, run_batch
from .batch import error as _err
from .errors import NsdebugError

# One BLAS thread: nsdebug does no linear algebra, and numpy's OpenBLAS otherwise starts a
# thread per core at import that spins after it, taking a tenth of a heap command's CPU
# from the walk on a small machine (before numpy's import: the library reads it then).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Defaults of the options, shared by the parser and the quick path below.
DEFAULTS = {"pid": None, "executable": None, "command": None, "commands_file": None, "json": False,
            "sysroot": None, "lib_path": "", "debug_dir": None, "max_depth": 2,
            "max_items": 10, "max_string": 80, "runtime_method": None, "snapshot": None,
            "force": False, "no_cache": False, "traceback": False}
# The flags the quick path takes: those without a value, and -c with one.
QUICK_FLAGS = {"--json": "json", "--no-cache": "no_cache", "--traceback": "traceback",
               "--force": "force"}


def quick_args(argv):
    """The options of the common forms, `(CORE | --pid PID) (-c CMD | --json |
    --no-cache)...`, read without argparse (which with `re` is a fifth of a `bt`'s
    time); None for any other form, which build_parser() reads and explains."""
    if not argv:
        return None
    args = dict(DEFAULTS, core=argv[0], command=[])
    i = 1
    if argv[0] == "--pid" and len(argv) > 1 and argv[1].isdigit():
        args.update(core=None, pid=int(argv[1]))
        i = 2
    elif argv[0].startswith("-"):
        return None
    while i < len(argv):
        word = argv[i]
        if word in QUICK_FLAGS:
            args[QUICK_FLAGS[word]] = True
        elif word in ("-c", "--command") and i + 1 < len(argv):
            i += 1
            args["command"].append(argv[i])
        else:
            return None
        i += 1
    from types import SimpleNamespace
    return SimpleNamespace(**args)


def build_parser():
    import argparse
    p = argparse.ArgumentParser(
        prog="nsdebug",
        description="Offline debugger for core files of CPython processes.",
        epilog="Other forms: 'nsdebug report CORE [--json]', "
               "'nsdebug diff OLD NEW [--json]', 'nsdebug bundle CORE -o FILE.lz4', "
               "'nsdebug demo'. "
               "Without -c, -x or --snapshot, opens the interactive shell.")
    p.add_argument("--version", action="version", version=f"nsdebug {__version__}")
    p.add_argument("core", nargs="?",
                   help="core file (ELF core, or an arthur .lz4 capture)")
    p.add_argument("--pid", type=int, metavar="PID",
                   help="a running process instead of a core: read from a frozen fork of "
                        "it (paused only for the fork, nothing written to disk)")
    p.add_argument("executable", nargs="?", help="the program's executable, if it moved")
    p.add_argument("-c", "--command", action="append", default=[], metavar="CMD",
                   help="run a command and exit (repeatable)")
    p.add_argument("-x", "--commands-file", metavar="FILE",
                   help="run the commands in FILE, one per line")
    p.add_argument("--json", action="store_true", help="print one JSON document per command")
    p.add_argument("--sysroot", metavar="DIR",
                   help="look up the core's mapped files under DIR")
    p.add_argument("--lib-path", metavar="DIR[:DIR]", default="",
                   help="look up mapped files by name in these directories first")
    p.add_argument("--debug-dir", metavar="DIR", action="append",
                   help="look up separate debug files here (DIR/.build-id/xx/rest.debug, "
                        "or by .gnu_debuglink), before /usr/lib/debug; repeatable")
    p.add_argument("--max-depth", type=int, default=DEFAULTS["max_depth"], metavar="N",
                   help="nesting shown in value previews (default 2)")
    p.add_argument("--max-items", type=int, default=DEFAULTS["max_items"], metavar="N",
                   help="items shown per container in previews (default 10)")
    p.add_argument("--max-string", type=int, default=DEFAULTS["max_string"], metavar="N",
                   help="characters shown per string in previews (default 80)")
    p.add_argument("--runtime-method", choices=["symbol", "section", "cookie", "scan"],
                   help="find _PyRuntime only this way (default: try each in turn)")
    p.add_argument("--snapshot", metavar="FILE", help="export a .heapsnapshot and exit")
    p.add_argument("--force", action="store_true",
                   help="with --snapshot: overwrite FILE if it exists")
    p.add_argument("--no-cache", action="store_true",
                   help="neither read nor write caches: the heap index (CORE.nsdebug-index) "
                        "and debug sections inflated under ~/.cache/nsdebug/dwarf")
    p.add_argument("--traceback", action="store_true", help="show Python tracebacks of errors")
    return p


def open_session(args):
    """The Session the options of `nsdebug CORE ...` (or a subcommand's) ask for."""
    from .batch import open_session as open_
    from .commands import Options
    return open_(args.core, getattr(args, "executable", None), sysroot=args.sysroot,
                 lib_path=[d for d in args.lib_path.split(":") if d],
                 debug_dirs=getattr(args, "debug_dir", None) or [],
                 runtime_method=getattr(args, "runtime_method", None),
                 use_index=not getattr(args, "no_cache", False),
                 options=Options(getattr(args, "max_depth", 2), getattr(args, "max_items", 10),
                                 getattr(args, "max_string", 80)),
                 pid=getattr(args, "pid", None))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    show_tb = "--traceback" in argv
    _end_at_the_limit()
    try:
        return _main(argv)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        # Output went to a closed pipe (e.g. `| head`); quiet exit like other tools.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except (NsdebugError, PermissionError) as e:
        if show_tb:
            raise
        _err(str(e))
        return EXIT_USAGE
    except MemoryError:
        if show_tb:
            raise
        _err(_out_of_memory())
        return EXIT_INTERNAL
    except Exception as e:  # noqa: BLE001 - the last line of defence: never a traceback
        if show_tb:
            raise
        _err(f"internal error: {type(e).__name__}: {e} (rerun with --traceback and report it)")
        return EXIT_INTERNAL


def _end_at_the_limit():
    """Under a data segment or address-space limit, a small allocation refused ends
    nsdebug at once with the line its MemoryError gets (freemem.exit_when_exhausted):
    3.11-3.13 can otherwise spin unwinding it, at 100% CPU, for ever. A larger request
    refused is still the MemoryError below."""
    import resource
    try:
        if all(resource.getrlimit(r)[0] == resource.RLIM_INFINITY
               for r in (resource.RLIMIT_AS, resource.RLIMIT_DATA)):
            return
    except (OSError, ValueError):
        return
    from .freemem import exit_when_exhausted
    exit_when_exhausted(EXIT_INTERNAL, "nsdebug: " + _out_of_memory())


def _out_of_memory():
    """The line for a MemoryError, naming the limit that was met. Under a memory cgroup
    the heap walk spills to disk (heap/spill.py), and under a data segment limit it
    spills what it makes in large arrays; an address-space limit counts files mapped as
    much as memory, so nothing helps there."""
    import resource

    from .membudget import data_limit
    try:
        space = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (OSError, ValueError):
        space = resource.RLIM_INFINITY
    if space != resource.RLIM_INFINITY:
        return (f"out of memory under an address-space limit (ulimit -v, {space >> 20} "
                f"MiB), which counts the mapped core and the heap walk's files too: "
                f"raise it, or limit memory with a cgroup instead")
    data = data_limit()
    if data is not None:
        return (f"out of memory under a data segment limit (ulimit -d, {data >> 20} "
                f"MiB): the heap walk spilled what it could to disk, and the rest did "
                f"not fit; raise it")
    return "out of memory"


def _main(argv):
    if argv and argv[0] == "report":
        from .report import main as report_main
        return report_main(argv[1:])
    if argv and argv[0] == "diff":
        return _diff(argv[1:])
    if argv and argv[0] == "bundle":
        return _bundle(argv[1:])
    if argv and argv[0] == "triage":
        from .triage_cli import main as triage_main
        return triage_main(argv[1:])
    if argv and argv[0] == "demo":
        from .demo import main as demo_main
        return demo_main(argv[1:])
    args = quick_args(argv) or build_parser().parse_args(argv)
    if (args.core is None) == (args.pid is None):
        raise NsdebugError("give a core file or --pid PID (one of them)")
    lines = list(args.command)
    if args.commands_file:
        try:
            with open(args.commands_file) as f:
                lines.extend(f.read().splitlines())
        except OSError as e:
            raise NsdebugError(f"cannot read {args.commands_file}: {e.strerror}") from None
    if args.pid is not None:
        _live_signals()
    session = open_session(args)
    try:
        return _run(args, session, lines)
    finally:
        if args.pid is not None:
            _release(session, args.pid)


def _live_signals():
    """SIGTERM and SIGHUP end a live session as SIGINT does: through the finally that
    releases the frozen fork (SIGKILL cannot be caught: the fork then dies with us, and
    the target's next capture or `arthur reap` reaps it)."""
    import signal

    def stop(signum, frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)


def _release(session, pid):
    snap = session.target.process.source.snapshot
    held = snap.held_seconds
    session.target.close()
    _err(f"released the frozen copy of pid {pid} after {held:.2f} s")


def _run(args, session, lines):
    if args.snapshot:
        from .batch import run_one
        from .commands.heap import snapshot_file
        status = run_batch(session, lines, args.json)
        label = f"snapshot {_quote(args.snapshot)}" + (" --force" if args.force else "")
        return status | run_one(session, label, lambda: (
            snapshot_file(session.target, args.snapshot, args.force), False), args.json)
    if lines:
        return run_batch(session, lines, args.json)
    from .repl import run_shell
    return run_shell(session)


def _diff(argv):
    """`nsdebug diff OLD NEW [--json] [--top N] [--sort KEY]`: the shell's `diff` on NEW."""
    import argparse
    p = argparse.ArgumentParser(prog="nsdebug diff",
                                description="What grew between two cores of one process.")
    p.add_argument("old", help="the earlier core")
    p.add_argument("new", help="the later core")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.add_argument("--top", "-n", type=int, default=25, help="rows (default 25)")
    p.add_argument("--sort", "-s", choices=["count", "size", "retained"], default="size")
    p.add_argument("--sysroot", metavar="DIR")
    p.add_argument("--lib-path", metavar="DIR[:DIR]", default="")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write heap indexes")
    p.add_argument("--html", metavar="FILE", help="write the diff as an HTML page to FILE "
                   "(a treemap of the growth, the table, the paths)")
    p.add_argument("--force", action="store_true", help="overwrite the --html FILE")
    args = p.parse_args(argv)
    args.core = args.new
    session = open_session(args)
    from .batch import run_one
    from .heap.diff import diff_cores
    if args.html:
        from .html.diff import diff_page
        from .outfile import write_text
        result = diff_cores(session.target, args.old, max(args.top, 0), args.sort)
        write_text(args.html, diff_page(result), args.force)
        return 0
    return run_one(session, f"diff {_quote(args.old)} --top {args.top} --sort {args.sort}",
                   lambda: (diff_cores(session.target, args.old, max(args.top, 0), args.sort),
                            False), args.json)


def _bundle(argv):
    """`nsdebug bundle CORE -o FILE.lz4`: the core and what it needs of its mapped files."""
    import argparse
    p = argparse.ArgumentParser(
        prog="nsdebug bundle",
        description="Pack a core and the symbols, read-only data and unwind tables of the "
                    "files it mapped (from this machine) into one arthur .lz4 capture "
                    "that opens anywhere.")
    p.add_argument("core", help="a kernel or gcore core (or an arthur capture)")
    p.add_argument("-o", "--output", required=True, metavar="FILE.lz4")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.add_argument("--level", type=int, default=0, help="LZ4 level (0 fast, 1-12)")
    p.add_argument("--sysroot", metavar="DIR")
    p.add_argument("--lib-path", metavar="DIR[:DIR]", default="")
    args = p.parse_args(argv)
    from arthur.lz4core import ContainerWriter
    from arthur.safefile import OutputError, PrivateOutput

    from .bundle import bundle
    from .model import open_target
    from .units import human_size
    lib_path = [d for d in args.lib_path.split(":") if d]
    process = open_target(args.core, sysroot=args.sysroot, lib_path=lib_path).process
    try:
        out = PrivateOutput(args.output, args.force)
    except OutputError as e:
        raise NsdebugError(e.strerror) from None
    ok = False
    try:
        sink = ContainerWriter(out.f, args.level)
        try:
            kept, added = bundle(process, sink, lambda m: _err(f"warning: {m}"))
            sink.close()
        except BaseException:
            sink.abort()
            raise
        out.commit()
        ok = True
    except OSError as e:
        raise NsdebugError(f"cannot write {args.output}: {e.strerror or e}") from None
    finally:
        if not ok:
            out.discard()
        process.close()
    print(f"{out.path}: {human_size(process.core_size)} core + {human_size(added)} of "
          f"{kept} mapped files -> {human_size(os.path.getsize(out.path))}")
    return EXIT_OK


def _quote(s):
    import shlex
    return shlex.quote(s)


if __name__ == "__main__":
    sys.exit(main())
