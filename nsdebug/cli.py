"""`nsdebug CORE [EXECUTABLE] [-c CMD]... [--json]`: argument parsing and exit codes only."""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .errors import NsdebugError

EXIT_OK, EXIT_COMMAND_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def build_parser():
    p = argparse.ArgumentParser(
        prog="nsdebug",
        description="Offline debugger for core files of CPython processes.",
        epilog="Other forms: 'nsdebug report CORE [--json]', "
               "'nsdebug diff OLD NEW [--json]', 'nsdebug bundle CORE -o FILE.lz4', "
               "'nsdebug demo'. "
               "Without -c, -x or --snapshot, opens the interactive shell.")
    p.add_argument("--version", action="version", version=f"nsdebug {__version__}")
    p.add_argument("core", help="core file (ELF core, or an arthur .lz4 capture)")
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
    p.add_argument("--max-depth", type=int, default=2, metavar="N",
                   help="nesting shown in value previews (default 2)")
    p.add_argument("--max-items", type=int, default=10, metavar="N",
                   help="items shown per container in previews (default 10)")
    p.add_argument("--max-string", type=int, default=80, metavar="N",
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


def _err(msg):
    from .escape import printable
    print(f"nsdebug: {printable(msg)}", file=sys.stderr)


def open_session(args):
    from .commands import Options, Session, load_all
    from .corefile import open_core
    load_all()
    lib_path = [d for d in args.lib_path.split(":") if d]
    process = open_core(args.core, args.executable, args.sysroot, lib_path)
    for w in process.warnings:
        _err(f"warning: {w}")
    for name in ("max_depth", "max_items", "max_string"):
        if getattr(args, name) < 0:
            raise NsdebugError(f"--{name.replace('_', '-')} must not be negative")
    options = Options(args.max_depth, args.max_items, args.max_string)
    return Session(process, options, runtime_method=args.runtime_method,
                   debug_dirs=list(getattr(args, "debug_dir", None) or []),
                   use_index=not getattr(args, "no_cache", False))


def _warn_new(session):
    for w in session.new_warnings():
        _err(f"warning: {w}")


def run_batch(session, lines, as_json, out=None):
    """Run command lines; returns the exit status (non-zero if any command failed)."""
    out = out or sys.stdout
    from . import render
    from .commands.registry import run_line
    status = EXIT_OK
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            result, line_json = run_line(session, line)
        except NsdebugError as e:
            status = EXIT_COMMAND_FAILED
            if as_json:
                print(render.to_json({"command": line, "error": str(e)}), file=out)
            _warn_new(session)
            _err(str(e))
            continue
        _warn_new(session)
        if as_json or line_json:
            print(render.to_json(result), file=out)
        else:
            for text in render.to_lines(result):
                print(text, file=out)
        out.flush()
    return status


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    show_tb = "--traceback" in argv
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
    except Exception as e:  # noqa: BLE001 - the last line of defence: never a traceback
        if show_tb:
            raise
        _err(f"internal error: {type(e).__name__}: {e} (rerun with --traceback and report it)")
        return EXIT_INTERNAL


def _main(argv):
    if argv and argv[0] == "report":
        from .report import main as report_main
        return report_main(argv[1:])
    if argv and argv[0] == "diff":
        return _diff(argv[1:])
    if argv and argv[0] == "bundle":
        return _bundle(argv[1:])
    if argv and argv[0] == "demo":
        from .demo import main as demo_main
        return demo_main(argv[1:])
    args = build_parser().parse_args(argv)
    lines = list(args.command)
    if args.commands_file:
        try:
            with open(args.commands_file) as f:
                lines.extend(f.read().splitlines())
        except OSError as e:
            raise NsdebugError(f"cannot read {args.commands_file}: {e.strerror}") from None
    if args.snapshot:
        lines.append(f"snapshot {_quote(args.snapshot)}" + (" --force" if args.force else ""))
    session = open_session(args)
    if lines:
        return run_batch(session, lines, args.json)
    from .repl import run_shell
    return run_shell(session)


def _diff(argv):
    """`nsdebug diff OLD NEW [--json] [--top N] [--sort KEY]`: the shell's `diff` on NEW."""
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
    args = p.parse_args(argv)
    ns = argparse.Namespace(core=args.new, executable=None, sysroot=args.sysroot,
                            lib_path=args.lib_path, max_depth=2, max_items=10, max_string=80,
                            runtime_method=None, no_cache=args.no_cache)
    session = open_session(ns)
    line = f"diff {_quote(args.old)} --top {args.top} --sort {args.sort}"
    return run_batch(session, [line], args.json)


def _bundle(argv):
    """`nsdebug bundle CORE -o FILE.lz4`: the core and what it needs of its mapped files."""
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
    from .corefile import open_core
    from .units import human_size
    lib_path = [d for d in args.lib_path.split(":") if d]
    process = open_core(args.core, None, args.sysroot, lib_path)
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
