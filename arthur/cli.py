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
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    i = sub.add_parser("info", help="describe a capture")
    i.add_argument("file")
    i.add_argument("--json", action="store_true")
    r = sub.add_parser("reap", help="reap the zombie children a killed arthur left under PID")
    r.add_argument("pid", type=int)
    d = sub.add_parser("decompress", help="turn a .lz4 capture into a plain core")
    d.add_argument("file")
    d.add_argument("-o", "--output", help="output core (default: FILE without .lz4)")
    d.add_argument("--force", action="store_true")
    return p


def cmd_capture(args):
    from .capture import capture
    if not 0 <= args.level <= 12:
        raise ArthurError("--level must be between 0 and 12")
    r = capture(args.pid, args.output, args.force, args.level, not args.no_compress,
                args.stop, args.lean, log=lambda m: print(m, file=sys.stderr, flush=True))
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
                "decompress": cmd_decompress}[args.cmd](args)
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
