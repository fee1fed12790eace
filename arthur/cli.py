"""`arthur capture|info|decompress`: argument parsing, messages and exit codes only."""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .errors import ArthurError
from .interrupts import Interrupted, finish, install


def build_parser():
    p = argparse.ArgumentParser(prog="arthur",
                                description="Capture a core of a live process with a pause "
                                            "of milliseconds.")
    p.add_argument("--version", action="version", version=f"arthur {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture", help="capture a core of a running process")
    c.add_argument("pid", type=int)
    c.add_argument("-o", "--output", help="output file (default core.<pid>.lz4)")
    c.add_argument("--force", action="store_true", help="overwrite an existing output file")
    c.add_argument("--level", type=int, default=0,
                   help="LZ4 level: 0 fast (default), 1-12 high compression")
    c.add_argument("--no-compress", action="store_true", help="write a plain ELF core")
    c.add_argument("--stop", action="store_true",
                   help="no fork: keep the process stopped for the whole dump, like gcore")
    c.add_argument("--lean", action="store_true",
                   help="leave out the mapped files' symbols, read-only data and unwind "
                        "tables: the capture then opens only where those files are")
    c.add_argument("--jobs", "-j", type=int, default=None,
                   help="threads compressing (default: the CPUs spare to arthur, its "
                        "affinity and cgroup quota, at most 4)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    i = sub.add_parser("info", help="describe a capture")
    i.add_argument("file")
    i.add_argument("--json", action="store_true")
    r = sub.add_parser("reap", help="reap the zombie children a killed arthur left under PID")
    r.add_argument("pid", type=int)
    h = sub.add_parser("crash-handler", help="keep every crash's core as a capture in a "
                                             "spool (kernel.core_pattern)")
    hs = h.add_subparsers(dest="action", required=True)
    hi = hs.add_parser("install", help="pipe the kernel's cores into arthur")
    hi.add_argument("--spool", required=True, help="directory the captures go to")
    _spool_limits(hi)
    hi.add_argument("--rate", default=None,
                    help="at most COUNT/SECONDS cores kept per executable (default 10/60)")
    hs.add_parser("uninstall", help="put back the core_pattern found at install")
    st = hs.add_parser("status", help="what is installed, and the spool")
    st.add_argument("--json", action="store_true")
    w = sub.add_parser("watch", help="capture processes when their memory crosses a "
                                     "threshold, or on a clock")
    w.add_argument("pids", type=int, nargs="*", metavar="PID")
    w.add_argument("--match", help="also watch every process whose command line matches "
                                   "this regular expression, as they appear")
    w.add_argument("--rss", help="capture when RSS first crosses SIZE (512M, 2G), again "
                                 "after each further 25%% growth")
    w.add_argument("--cgroup-percent", type=float,
                   help="capture when the memory cgroup's use crosses P%% of its limit")
    w.add_argument("--every", help="capture every DURATION (30s, 5m, 1h)")
    w.add_argument("--keep", type=int, default=5, help="captures kept per process "
                                                      "(default 5)")
    w.add_argument("--spool", default="arthur-spool",
                   help="directory the captures go to (default ./arthur-spool)")
    w.add_argument("--interval", default="0.2s", help="poll interval (default 0.2s)")
    w.add_argument("--for", dest="duration", help="stop after DURATION")
    d = sub.add_parser("decompress", help="turn a .lz4 capture into a plain core")
    d.add_argument("file")
    d.add_argument("-o", "--output", help="output core (default: FILE without .lz4)")
    d.add_argument("--force", action="store_true")
    return p


def _spool_limits(p):
    p.add_argument("--keep", type=int, default=None, help="captures kept (default 20)")
    p.add_argument("--max-total", default=None, help="bytes of captures kept (512M, 2G)")
    p.add_argument("--min-free", default=None,
                   help="free space never used (default 1G); a core that would use it "
                        "is dropped, its record kept")


def cmd_crash_handler(args):
    from . import crashhandler as ch
    from .spool import parse_size
    if args.action == "install":
        rate = None
        if args.rate:
            count, _, seconds = args.rate.partition("/")
            try:
                rate = [int(count), int(seconds or 60)]
            except ValueError:
                raise ArthurError(f"--rate {args.rate}: write COUNT/SECONDS") from None
        pattern = ch.install(args.spool, args.keep,
                             parse_size(args.max_total) if args.max_total else None,
                             parse_size(args.min_free) if args.min_free else None, rate)
        print(f"installed: core_pattern = {pattern}")
        return 0
    if args.action == "uninstall":
        pattern, limit = ch.uninstall()
        print(f"uninstalled: core_pattern = {pattern}, core_pipe_limit = {limit}")
        return 0
    st = ch.status()
    if args.json:
        print(json.dumps(st))
        return 0
    if not st["installed"]:
        print(f"not installed (core_pattern = {st['core_pattern']})")
        return 0
    if not st["handler_runs"]:
        print(f"warning:   {st['handler']} is gone: the kernel cannot run the handler and "
              f"crashes get no core; reinstall or uninstall")
    rules = st["rules"]
    print(f"installed: spool {st['spool']} (previous core_pattern "
          f"{st['previous_pattern']!r})")
    print(f"rules:     keep {rules['keep']}, max total {_size(rules['max_total'])}, "
          f"min free {_size(rules['min_free'])}, rate {rules['rate'][0]} per "
          f"{rules['rate'][1]} s per executable")
    print(f"spool:     {st['captures']} captures ({st['bytes'] / 2**20:.1f} MiB), "
          f"{st['records']} records, {st['free'] / 2**30:.1f} GiB free")
    last = st["latest"]
    if last:
        print(f"latest:    pid {last.get('pid')} {last.get('executable')} "
              f"{last.get('signal_name') or last.get('reason') or ''} -> "
              f"{last.get('core') or 'dropped: ' + str(last.get('dropped'))}")
        if last.get("crash"):
            print(f"           {last['crash']}")
    return 0


def cmd_watch(args):
    from .spool import Spool, parse_duration, parse_size
    from .watch import Watcher, capture_to_spool
    if not args.pids and not args.match:
        raise ArthurError("watch: give PIDs or --match REGEX")
    if args.cgroup_percent is not None and not 0 < args.cgroup_percent <= 100:
        raise ArthurError("--cgroup-percent must be between 0 and 100")
    spool = Spool(args.spool, create=True)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    def capture_one(pid, reason):
        r, older = capture_to_spool(spool, pid, reason, args.keep)
        print(f"{r.path}: pid {pid} ({reason}); pause {r.pause_ms:.1f} ms", flush=True)
        if older:
            print(f"  what grew: nsdebug diff {older} {r.path}", flush=True)
        return r.path

    watcher = Watcher(capture_one, parse_size(args.rss) if args.rss else None,
                      args.cgroup_percent,
                      parse_duration(args.every) if args.every else None,
                      args.match, log)
    for pid in args.pids:
        watcher.add(pid)
    watcher.run(parse_duration(args.interval),
                parse_duration(args.duration) if args.duration else None)
    return 0


def _size(n):
    return "none" if not n else f"{n / 2**20:.0f} MiB"


def cmd_capture(args):
    from .capture import capture
    if not 0 <= args.level <= 12:
        raise ArthurError("--level must be between 0 and 12")
    if args.jobs is not None and not 1 <= args.jobs <= 256:
        raise ArthurError("--jobs must be between 1 and 256")
    r = capture(args.pid, args.output, args.force, args.level, not args.no_compress,
                args.stop, args.lean, log=lambda m: print(m, file=sys.stderr, flush=True),
                jobs=args.jobs)
    if args.json:
        print(json.dumps(r.__dict__))
    else:
        ratio = r.raw_size / r.file_size if r.file_size else 0
        rate = r.raw_size / r.seconds / 1e6 if r.seconds else 0
        print(f"{r.path}: {r.threads} threads, {r.segments} mappings, "
              f"{r.raw_size / 2**20:.1f} MiB core -> {r.file_size / 2**20:.1f} MiB "
              f"({ratio:.1f}x) in {r.seconds:.2f} s ({rate:.0f} MB/s); "
              f"pause {r.pause_ms:.1f} ms ({r.mode})")
    return 0


def _open_reader(path):
    from .lz4core import FRAME_MAGIC, ContainerError, ContainerReader, file_reader
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ArthurError(f"cannot open {path}: {e.strerror}") from None
    size = os.fstat(f.fileno()).st_size
    if f.read(4) == FRAME_MAGIC:
        try:
            r = ContainerReader(file_reader(f), size, cache_bytes=2 << 20)
        except ContainerError as e:
            raise ArthurError(f"{path}: {e}") from None
        return f, r.read, r.size, size, r
    return f, file_reader(f), size, size, None


def cmd_info(args):
    from .coreinfo import describe
    f, read, raw, stored, _ = _open_reader(args.file)
    with f:
        d = describe(read, raw)
    d.update({"file": args.file, "raw_size": raw, "file_size": stored,
              "ratio": round(raw / stored, 2) if stored else None})
    if args.json:
        print(json.dumps(d))
        return 0
    a = d["arthur"] or {}
    print(f"file:       {args.file}")
    print(f"pid:        {a.get('pid', '?')}  (captured by {a.get('tool', 'unknown')} "
          f"{a.get('version', '')}, mode {a.get('mode', '?')})")
    print(f"threads:    {d['threads']}")
    print(f"mappings:   {d['mappings']} ({d['memory'] / 2**20:.1f} MiB mapped, "
          f"{d['kept'] / 2**20:.1f} MiB kept)")
    print(f"size:       {raw / 2**20:.1f} MiB core, {stored / 2**20:.1f} MiB on disk "
          f"({d['ratio']}x)")
    pause = a.get("pause_ms")
    print(f"pause:      {pause:.1f} ms" if pause is not None else
          "pause:      the whole dump (stopped capture)" if a else "pause:      unknown")
    return 0


def cmd_decompress(args):
    from .safefile import OutputError, PrivateOutput
    f, _read, _raw, _stored, reader = _open_reader(args.file)
    with f:
        if reader is None:
            raise ArthurError(f"{args.file} is not an arthur .lz4 capture")
        out = args.output or (args.file[:-4] if args.file.endswith(".lz4")
                              else args.file + ".core")
        try:
            with PrivateOutput(out, args.force) as g:
                for block in reader.iter_blocks():
                    g.write(block)
        except OutputError as e:
            raise ArthurError(e.strerror) from None
    print(out)
    return 0


def cmd_reap(args):
    from .capture import reap
    reaped = reap(args.pid, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"reaped {len(reaped)} zombie child(ren) of pid {args.pid}"
          + (f": {', '.join(map(str, reaped))}" if reaped else ""))
    return 0



def main(argv=None):
    install()
    try:
        try:
            return _run(build_parser().parse_args(argv))
        except Interrupted as e:
            print(f"arthur: {e}", file=sys.stderr)
            return 130
    finally:
        finish()


def _run(args):
    try:
        return {"capture": cmd_capture, "info": cmd_info, "reap": cmd_reap,
                "decompress": cmd_decompress, "crash-handler": cmd_crash_handler,
                "watch": cmd_watch}[args.cmd](args)
    except Interrupted:
        raise
    except ArthurError as e:
        print(f"arthur: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"arthur: {e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - never a traceback at the user
        print(f"arthur: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
