"""The command table: one entry per command, shared by -c batch mode, --json and the shell."""

from __future__ import annotations

from types import SimpleNamespace

from ..errors import CommandError
from ..families import Families
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
        import argparse
        # A fixed width keeps help text (and docs/commands.md) the same on any terminal.
        p = _parser_class()(prog=self.name, description=self.description, add_help=False,
                            formatter_class=lambda prog: argparse.HelpFormatter(prog,
                                                                                width=88))
        for a in self.args:
            p.add_argument(*a.flags, **a.kwargs)
        return p

    def usage(self):
        return self.parser().format_usage().replace("usage: ", "").strip()

    def help_text(self):
        return self.parser().format_help()


    def quick_parse(self, words):
        """The namespace of `words` when each is a flag this command declares by its
        full spelling (a store_true, or an option with its value), or one of its
        positionals, and every value converts; None for anything else (abbreviations,
        `--opt=value`, a bad value, a missing argument), which parser() reads and
        explains. argparse with `re` costs a fifth of a `bt`; this reads the same
        declarations."""
        flags, positionals, ns = {}, [], {}
        for a in self.args:
            kw = a.kwargs
            if a.flags[0].startswith("-"):
                long = next((f for f in a.flags if f.startswith("--")), a.flags[0])
                dest = kw.get("dest") or long.lstrip("-").replace("-", "_")
                action = kw.get("action")
                if action not in (None, "store_true") or "nargs" in kw:
                    return None
                ns[dest] = kw.get("default", False if action else None)
                for f in a.flags:
                    flags[f] = (dest, action, kw)
            else:
                if kw.get("nargs") not in (None, "?") or kw.get("action"):
                    return None
                dest = kw.get("dest") or a.flags[0]
                ns[dest] = kw.get("default")
                positionals.append((dest, kw))
        given = []
        i = 0
        while i < len(words):
            w = words[i]
            if w.startswith("-"):
                if w not in flags:
                    return None
                dest, action, kw = flags[w]
                if action == "store_true":
                    ns[dest] = True
                else:
                    if i + 1 >= len(words) or words[i + 1].startswith("-"):
                        return None
                    i += 1
                    value = _convert(words[i], kw)
                    if value is None:
                        return None
                    ns[dest] = value
            else:
                given.append(w)
            i += 1
        if len(given) > len(positionals):
            return None
        for (dest, kw), w in zip(positionals, given):
            value = _convert(w, kw)
            if value is None:
                return None
            ns[dest] = value
        if any(kw.get("nargs") is None for _dest, kw in positionals[len(given):]):
            return None                    # a required positional is missing
        return SimpleNamespace(**ns)


def _convert(word, kw):
    """A word as the declaration's type (int or str) and choices take it, else None."""
    kind = kw.get("type", str)
    if kind not in (int, str):
        return None
    try:
        value = kind(word)
    except ValueError:
        return None
    if "choices" in kw and value not in kw["choices"]:
        return None
    return value


def _parser_class():
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message):
            raise CommandError(f"{self.prog}: {message} "
                               f"(usage: {self.format_usage()[7:].strip()})")

        def exit(self, status=0, message=None):
            raise CommandError(message or f"{self.prog}: bad arguments")
    return _Parser


COMMANDS: dict[str, Command] = {}
ALIASES: dict[str, str] = {}
# The command modules, imported when a name is first looked up, in this order: `bt`
# finds its command without importing the heap's (load_all() imports every one: help,
# the shell's completion, a prefix of a name).
FAMILIES = Families(__package__, ("python", "process", "heap"))


def load_all():
    """Import every command module so the table is complete."""
    FAMILIES.load_all()


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
    FAMILIES.load_until(lambda: ALIASES.get(name, name) in COMMANDS)
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
    load_all()
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
    words = split_words(line)
    if not words:
        raise CommandError("empty command")
    cmd = lookup(words[0])
    as_json = "--json" in words[1:]
    rest = [w for w in words[1:] if w != "--json"]
    ns = cmd.quick_parse(rest) or cmd.parser().parse_args(rest)
    ns.json = as_json
    return cmd, ns


def split_words(line):
    """A command line's words as a POSIX shell splits them (shlex); a line of printable
    ASCII without quotes or backslashes split on its spaces, which is the same."""
    if line.isascii() and line.isprintable() and not any(c in line for c in "'\"\\"):
        return line.split()              # printable ASCII: the space is its only blank
    import shlex
    try:
        return shlex.split(line)
    except ValueError as e:
        raise CommandError(f"cannot parse {line!r}: {e}") from None


def run(session, line):
    """Run one command line; returns the command's plain-data result."""
    return run_line(session, line)[0]


def run_line(session, line):
    """(result, whether the line asked for JSON) for one command line."""
    cmd, ns = parse(line)
    return cmd.func(session, ns), ns.json
