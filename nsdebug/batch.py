"""Running commands on an opened core without the shell: the session opener and the batch
loop that `-c`, `-x`, the shell on a pipe, `diff` and the demo share; exit codes."""

from __future__ import annotations

import sys

from .errors import NsdebugError

EXIT_OK, EXIT_COMMAND_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def error(msg):
    """One line on standard error, as every nsdebug message is."""
    from .escape import printable
    print(f"nsdebug: {printable(msg)}", file=sys.stderr)


def open_session(path, executable=None, *, sysroot=None, lib_path=(), debug_dirs=(),
                 runtime_method=None, use_index=True, options=None, pid=None):
    """A Session on a core opened by target.open_target (same options), its process's
    warnings printed once."""
    from .commands import Options, Session
    from .model import open_target
    options = options or Options()
    for name in ("max_depth", "max_items", "max_string"):
        if getattr(options, name) < 0:
            raise NsdebugError(f"--{name.replace('_', '-')} must not be negative")
    if pid is not None:
        from .model import open_live_target
        target = open_live_target(pid, debug_dirs=debug_dirs, runtime_method=runtime_method)
        snap = target.process.source.snapshot
        error(f"pid {pid} paused {snap.pause_ms:.1f} ms for the fork ({snap.threads} "
              f"threads); reading its frozen copy, pid {snap.child}")
    else:
        target = open_target(path, executable, sysroot=sysroot, lib_path=lib_path,
                             debug_dirs=debug_dirs, runtime_method=runtime_method,
                             use_index=use_index)
    for w in target.process.warnings:
        error(f"warning: {w}")
    return Session(target, options)


def warn_new(session):
    for w in session.new_warnings():
        error(f"warning: {w}")


def run_batch(session, lines, as_json, out=None):
    """Run command lines; returns the exit status (non-zero if any command failed)."""
    from .commands.registry import run_line
    status = EXIT_OK
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        status |= run_one(session, line, lambda line=line: run_line(session, line), as_json,
                          out)
    return status


def run_one(session, label, run, as_json, out=None):
    """Print what `run()` gives, (result, whether it asked for JSON), as text or JSON; or,
    when it fails, its error (as a JSON document too with `as_json`, saying `label`);
    then the new warnings. Returns the exit status."""
    from . import render
    out = out or sys.stdout
    try:
        result, line_json = run()
    except NsdebugError as e:
        if as_json:
            print(render.to_json({"command": label, "error": str(e)}), file=out)
        warn_new(session)
        error(str(e))
        return EXIT_COMMAND_FAILED
    warn_new(session)
    if as_json or line_json:
        print(render.to_json(result), file=out)
    else:
        for text in render.to_lines(result):
            print(text, file=out)
    out.flush()
    return EXIT_OK
