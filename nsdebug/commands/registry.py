"""The command table: one entry per command, shared by -c batch mode, --json and the shell."""

from __future__ import annotations

import argparse
import shlex

from ..errors import CommandError
from ..record import Factory, record


@record
class Arg:
    """One argument or option of a command, as argparse takes it."""
    flags: tuple
    kwargs: dict = Factory(dict)
    complete: str | None = None   # what the shell completes here: type, local, address


@record
class Command:
    name: str
    func: object
    summary: str
    args: list
    aliases: tuple = ()
    category: str = "general"
    needs_core: bool = True

    @property
    def description(self):
        return (self.func.__doc__ or self.summary).strip()

    def parser(self):
        # A fixed width keeps help text (and docs/commands.md) the same on any terminal.
        p = _Parser(prog=self.name, description=self.description, add_help=False,
                    formatter_class=lambda prog: argparse.HelpFormatter(prog, width=88))
        for a in self.args:
            p.add_argument(*a.flags, **a.kwargs)
        return p

    def usage(self):
        return self.parser().format_usage().replace("usage: ", "").strip()

    def help_text(self):
        return self.parser().format_help()


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CommandError(f"{self.prog}: {message} (usage: {self.format_usage()[7:].strip()})")

    def exit(self, status=0, message=None):
        raise CommandError(message or f"{self.prog}: bad arguments")


COMMANDS: dict[str, Command] = {}
ALIASES: dict[str, str] = {}


def command(name, summary, *args, aliases=(), category="general", needs_core=True):
    """Register a function `f(session, ns)` as a command."""
    def deco(func):
        cmd = Command(name, func, summary, list(args), tuple(aliases), category, needs_core)
        COMMANDS[name] = cmd
        for a in aliases:
            ALIASES[a] = name
        return func
    return deco


def lookup(name):
    name = ALIASES.get(name, name)
    if name not in COMMANDS:
        close = [c for c in COMMANDS if c.startswith(name)]
        if len(close) == 1:
            return COMMANDS[close[0]]
        hint = f"; did you mean {', '.join(sorted(close))}?" if close else "; type 'help'"
        raise CommandError(f"unknown command {name!r}{hint}")
    return COMMANDS[name]


def help_lines(args):
    """The text of `help` (every command by category) or `help CMD`, line by line."""
    if args:
        yield from lookup(args[0]).help_text().splitlines()
        return
    by_cat = {}
    for c in COMMANDS.values():
        by_cat.setdefault(c.category, []).append(c)
    for cat in ("general", "python", "heap"):
        yield f"{cat} commands:"
        for c in sorted(by_cat.get(cat, []), key=lambda c: c.name):
            alias = f" ({', '.join(c.aliases)})" if c.aliases else ""
            yield f"  {c.name:<10} {c.summary}{alias}"
    yield ("help CMD for a command's options; in the shell, Ctrl-C stops a command and "
           "Ctrl-D quits.")


def parse(line):
    """(Command, argparse.Namespace) for one command line. Every command also takes
    --json (ns.json): its result as one JSON document, in the shell as in batch."""
    try:
        words = shlex.split(line)
    except ValueError as e:
        raise CommandError(f"cannot parse {line!r}: {e}") from None
    if not words:
        raise CommandError("empty command")
    cmd = lookup(words[0])
    as_json = "--json" in words[1:]
    ns = cmd.parser().parse_args([w for w in words[1:] if w != "--json"])
    ns.json = as_json
    return cmd, ns


def run(session, line):
    """Run one command line; returns the command's plain-data result."""
    return run_line(session, line)[0]


def run_line(session, line):
    """(result, whether the line asked for JSON) for one command line."""
    cmd, ns = parse(line)
    return cmd.func(session, ns), ns.json
