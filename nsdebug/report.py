"""`nsdebug report CORE [--json]`: a one-shot triage report, in the spirit of Node's
diagnostic report. Sections are gathered as data, then rendered as text or JSON."""

from __future__ import annotations

import argparse
import sys

from .errors import NsdebugError


def build_parser():
    p = argparse.ArgumentParser(prog="nsdebug report",
                                description="One-shot triage report of a core file.")
    p.add_argument("core")
    p.add_argument("executable", nargs="?")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.add_argument("--sysroot", metavar="DIR")
    p.add_argument("--lib-path", metavar="DIR[:DIR]", default="")
    p.add_argument("--top", type=int, default=10, help="rows per heap table (default 10)")
    p.add_argument("--no-heap", action="store_true", help="skip the heap walk")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the report to FILE (created 0600) instead of standard output")
    p.add_argument("--force", action="store_true", help="overwrite FILE")
    p.add_argument("--html", metavar="FILE",
                   help="write the report as one self-contained HTML page to FILE: the "
                        "memory treemap, suspects, threads and their flame graph, tasks, "
                        "the type table, a view of every object listed")
    p.add_argument("--no-redact", action="store_true",
                   help="show the values held under secret-looking names (token, "
                        "password...) and the environment's secrets")
    p.add_argument("--objects", type=int, default=1500, metavar="N",
                   help="objects the HTML treemap shows, the largest first (default 1500)")
    return p


def _section(fn, errors, name):
    try:
        return fn()
    except NsdebugError as e:
        errors.append(f"{name}: {e}")
        return None


def gather(target, top=10, heap=True, bounds=None):
    """The report as plain data (a dict of library records and lists) and the secret
    values it hides: every section from a library call on the Target (`bounds`, a
    Preview, says what previews show: redact=False shows the secrets)."""
    from .cpython.environment import gc_state, loaded_modules, redacted_environment
    from .cpython.objects import Preview
    from .model import stacks
    from .model.info import process_info
    bounds = bounds or Preview(redact=True)
    p = target.process
    errors = []
    rep = {"info": process_info(target)}
    crashed = p.crashed_thread
    sel = stacks.Selection(crashed.index if crashed is not None else 0)
    # The locks looked at once: their section, and what each thread waits for.
    from .model.locks import locks
    found = _section(lambda: locks(target), errors, "locks")
    waits = stacks.wait_phrases(target, found) if found is not None else None
    if crashed is not None:
        from .native.disasm import disassembly
        rep["crash"] = {"summary": rep["info"].crash,
                        "instructions": _section(lambda: disassembly(p, crashed.pc, 4),
                                                 errors, "disassembly"),
                        "stack": _section(lambda: stacks.backtrace(
                            target, native="python", bounds=bounds, sel=sel, waits=waits),
                            errors, "native stack")}
    rep["threads"] = _section(lambda: stacks.backtrace(target, True, True, bounds=bounds,
                                                       sel=sel, waits=waits),
                              errors, "threads")
    rep["locks"] = found
    hidden = _redact_locals(rep["threads"]) if bounds.redact else []
    if heap:
        from .heap import memory, stats, suspects, tasks
        rep["memory"] = _section(lambda: memory.memory(target), errors, "memory")
        rep["heap"] = {sort: _section(lambda s=sort: stats.by_type(target.heap, s, top),
                                      errors, "heap") for sort in ("count", "size", "retained")}
        rep["suspects"] = _section(lambda: suspects.suspects(target), errors, "suspects")
        rep["tasks"] = _section(lambda: tasks.tasks(target, bounds=bounds), errors, "tasks")
    rep["gc"] = _section(lambda: gc_state(target.runtime), errors, "gc")
    rep["modules"] = _section(lambda: [{"name": n, "version": v, "file": f}
                                       for n, v, f in loaded_modules(target.runtime)],
                              errors, "modules")
    rep["libraries"] = [{"path": m.path, "build_id": m.core_build_id or
                         (m.file.build_id if m.file else None),
                         "found": m.disk_path, "problem": m.problem} for m in p.modules]
    env, secrets = redacted_environment(p)
    if not bounds.redact:
        env, secrets = _environment(p), []
    rep["environment"] = [{"name": k, "value": v} for k, v in env]
    rep["errors"] = errors
    return rep, secrets + hidden


def _environment(process):
    """The environment as the process had it, nothing hidden (--no-redact)."""
    from .cpython.environment import environment
    return environment(process)


def _redact_locals(bt):
    """Locals whose name looks secret (token, password...) shown as <redacted>; returns
    their previews, to be hidden wherever else they show up."""
    from .cpython.environment import REDACTED, is_secret
    hidden = []
    for stack in (bt.threads if bt is not None else []):
        for frame in stack.frames:
            for row in frame.locals or []:
                if is_secret(row.name) and row.value != REDACTED:
                    text = row.value.strip("'\"b")
                    if len(text) >= 4:
                        hidden.append(text)
                    row.value = REDACTED
    return hidden


def scrub(text, secrets):
    """Hide every secret value wherever else it shows up (a local, a string preview...)."""
    for s in sorted(set(secrets), key=len, reverse=True):
        if len(s) >= 4:
            text = text.replace(s, "<redacted>")
    return text


def text_lines(rep):
    """The report as text; a deadlock, when the threads are in one, comes first."""
    from . import render
    deadlocks = rep.get("locks").deadlocks if rep.get("locks") is not None else []
    if deadlocks:
        yield "=== deadlock"
        for d in deadlocks:
            yield d.text
        yield ""
    yield "=== process"
    yield from render.to_lines(rep["info"])
    if "crash" in rep:
        yield ""
        yield "=== crash"
        yield rep["crash"]["summary"] or "(no Python crash location)"
        if rep["crash"]["instructions"] is not None:
            yield "faulting instruction:"
            yield from render.to_lines(rep["crash"]["instructions"])
        if rep["crash"].get("stack") is not None:
            yield "the crashed thread, C and Python:"
            yield from render.to_lines(rep["crash"]["stack"])
    yield ""
    yield "=== threads"
    if rep["threads"] is not None:
        yield from render.to_lines(rep["threads"])
    if rep.get("locks") is not None and any(t.phrase or t.holds
                                            for t in rep["locks"].threads):
        yield ""
        yield "=== locks"
        yield from render.to_lines(rep["locks"])
    for sort, res in (rep.get("heap") or {}).items():
        yield ""
        yield f"=== heap by {sort}"
        if res is not None:
            yield from render.to_lines(res)
    for key, title in (("memory", "memory"), ("suspects", "leak suspects"),
                       ("tasks", "asyncio tasks")):
        if key in rep:
            yield ""
            yield f"=== {title}"
            if rep[key] is not None:
                yield from render.to_lines(rep[key])
    yield ""
    yield "=== gc"
    if rep["gc"]:
        yield f"enabled: {rep['gc'].get('enabled')}  collecting: {rep['gc'].get('collecting')}"
        for g in rep["gc"]["generations"]:
            yield f"  generation {g['generation']}: {g['count']} / threshold {g['threshold']}"
    yield ""
    yield "=== python modules"
    for m in rep["modules"] or []:
        yield f"  {m['name']:<40} {m['version'] or '':<12} {m['file'] or ''}".rstrip()
    yield ""
    yield "=== shared libraries"
    for lib in rep["libraries"]:
        state = lib["problem"] or ("" if lib["found"] else "not found")
        yield f"  {lib['path']}  {lib['build_id'] or ''}  {state}".rstrip()
    yield ""
    yield "=== environment (secrets redacted)"
    for e in rep["environment"]:
        yield f"  {e['name']}={e['value']}"
    for err in rep["errors"]:
        yield f"warning: {err}"


def main(argv):
    from . import render
    from .batch import error
    from .model import open_target
    args = build_parser().parse_args(argv)
    target = open_target(args.core, args.executable, sysroot=args.sysroot,
                         lib_path=[d for d in args.lib_path.split(":") if d])
    for w in target.process.warnings:
        error(f"warning: {w}")
    from .cpython.objects import Preview
    bounds = Preview(redact=not args.no_redact)
    rep, secrets = gather(target, args.top, not args.no_heap, bounds)
    if args.html:
        from .html.report import report_page
        from .outfile import write_text
        page = scrub(report_page(target, rep, bounds, max(args.objects, 1)), secrets)
        write_text(args.html, page, args.force)
        return 0
    text = scrub(render.to_json(rep) if args.json else "\n".join(text_lines(rep)), secrets)
    if args.output is None:
        sys.stdout.write(text + "\n")
        return 0
    from .outfile import write_text
    write_text(args.output, text + "\n", args.force)
    return 0
