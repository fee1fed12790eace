"""`nsdebug triage PATH... [--jobs N] [--dask ADDRESS] [--heap] [--json] [--html FILE]`:
argument parsing and output of the fleet triage (the work is nsdebug.fleet.s)."""

from __future__ import annotations

import argparse
import os
import sys

from .errors import NsdebugError


def build_parser():
    p = argparse.ArgumentParser(
        prog="nsdebug triage",
        description="Group many cores by crash signature, and find what grows across "
                    "instances of a service.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a core, an arthur .lz4 capture, or a directory searched "
                        "recursively (an arthur spool with its records)")
    p.add_argument("--jobs", "-j", type=int, metavar="N",
                   help="cores analysed at once on this machine (default: its CPUs)")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run the analyses on the Dask cluster whose scheduler is at "
                        "ADDRESS (tcp://host:8786); the workers must read the cores at "
                        "the same paths")
    heap = p.add_mutually_exclusive_group()
    heap.add_argument("--heap", action="store_true", default=None,
                      help="walk every heap: types, suspects, memory, growth (default: "
                           "only for captures made by arthur watch)")
    heap.add_argument("--no-heap", dest="heap", action="store_false",
                      help="walk no heap")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="give up on a core after this long (default 600)")
    p.add_argument("--memory-limit", metavar="SIZE", default="auto",
                   help="memory one core's analysis may use, e.g. 2G (default: this "
                        "machine's memory divided by --jobs; none on Dask); 0 for none")
    p.add_argument("--rules", metavar="FILE",
                   help='JSON {"skip": [...], "prefix": [...]}: regular expressions '
                        "added to the signature rules (docs/guide.md)")
    p.add_argument("--cache", metavar="DIR",
                   help="where the per-core summaries are kept (default "
                        "~/.cache/nsdebug/triage)")
    p.add_argument("--no-cache", action="store_true", help="read every core again")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.add_argument("--html", metavar="FILE", help="write the fleet page to FILE")
    p.add_argument("--force", action="store_true", help="overwrite the --html FILE")
    return p


def _size(text):
    from arthur.errors import ArthurError
    from arthur.spool import parse_size
    try:
        return parse_size(text)
    except ArthurError as e:
        raise NsdebugError(f"--memory-limit: {e}") from None


def _memory_limit(args, jobs):
    if args.memory_limit != "auto":
        return _size(args.memory_limit)
    if args.dask:
        return 0
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0
    return total // max(jobs, 1)


def main(argv):
    from . import render
    from .progress import progress_reporter
    from .fleet import engine, triage
    from .fleet.cache import default_dir
    from .fleet.signature import Rules
    args = build_parser().parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        raise NsdebugError("--jobs must be at least 1")
    if args.timeout <= 0:
        raise NsdebugError("--timeout must be more than 0")
    jobs = args.jobs or engine.default_jobs()
    rules = Rules.load(args.rules)
    cache = None if args.no_cache else (args.cache or default_dir())
    with progress_reporter("triage", "cores", total=True) as report:
        result = triage(args.paths, jobs=jobs, dask=args.dask, heap=args.heap,
                        timeout=args.timeout, memory_limit=_memory_limit(args, jobs),
                        cache_dir=cache, rules=rules,
                        progress=(lambda done, total: report(done, total)) if report else None)
    if args.html:
        from .html.fleet import fleet_page
        from .outfile import write_text
        write_text(args.html, fleet_page(result), args.force)
    if args.json:
        sys.stdout.write(render.to_json(result) + "\n")
    elif not args.html or sys.stdout.isatty():
        for line in render.to_lines(result):
            sys.stdout.write(line + "\n")
    return 0
