"""The interactive shell: prompt_toolkit over the same command table as -c and --json."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from .errors import NsdebugError
from .escape import printable

ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{6,16}")
MAX_REMEMBERED_ADDRESSES = 500


def history_path():
    """$XDG_STATE_HOME/nsdebug/history (default ~/.local/state/nsdebug/history)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"),
                                                            ".local", "state")
    return os.path.join(base, "nsdebug", "history")


class ShellCompleter:
    """Completes command names, their options, and per-argument values: type names,
    local names of the selected frame, and addresses printed earlier."""

    def __init__(self, session, addresses):
        from prompt_toolkit.completion import Completer, Completion
        self.session = session
        self.addresses = addresses
        self.Completion = Completion
        outer = self

        class _C(Completer):
            def get_completions(self, document, complete_event):
                yield from outer.complete(document.text_before_cursor)
        self.completer = _C()

    def _values(self, kind):
        s = self.session
        try:
            if kind == "type":
                return known_type_names(s)
            if kind == "local":
                rt, f, _ = s.selected_frame()
                return [loc.name for loc in rt.frame_walker.locals_of(f)]
            if kind == "address":
                return list(reversed(self.addresses))
        except NsdebugError:
            return []
        return []

    def complete(self, text):
        from .commands.registry import ALIASES, COMMANDS, load_all
        load_all()
        words = text.split()
        if not words or (len(words) == 1 and not text.endswith(" ")):
            prefix = words[0] if words else ""
            for name in sorted(list(COMMANDS) + list(ALIASES) + ["quit"]):
                if name.startswith(prefix):
                    yield self.Completion(name, -len(prefix))
            return
        cmd = COMMANDS.get(ALIASES.get(words[0], words[0]))
        if cmd is None:
            return
        prefix = "" if text.endswith(" ") else words[-1]
        if prefix.startswith("-"):
            for a in cmd.args:
                for flag in a.flags:
                    if flag.startswith(prefix):
                        yield self.Completion(flag, -len(prefix))
            return
        positional = [a for a in cmd.args if not a.flags[0].startswith("-")]
        n_given = len([w for w in words[1:] if not w.startswith("-")]) - (1 if prefix else 0)
        if n_given < len(positional) and positional[n_given].complete:
            for v in self._values(positional[n_given].complete):
                if v.startswith(prefix) or v.rsplit(".", 1)[-1].startswith(prefix):
                    yield self.Completion(v, -len(prefix))


def known_type_names(session):
    """Type names for completion: the heap's, once walked; before that, the classes in
    every module's namespace (no walk needed) and the types already met."""
    t = session.target
    if t.has("heap"):
        return sorted({x.qualname for x in t.heap.types})
    return t.runtime.class_names()


def prompt_text(session):
    t = session.thread
    label = f"tid {t.tid}"
    try:
        _rt, f, idx = session.selected_frame()
        label += f" #{idx} {f.function}"
    except NsdebugError:
        pass
    return f"nsdebug [{label}]> "


def rich_render(result, console):
    """Results shown richly: tables as tables, source with syntax colours."""
    from rich.syntax import Syntax
    from rich.table import Table

    from . import render
    from .formatters import TABLES, load_all, type_key
    from .model.stacks import ListResult
    load_all()
    if isinstance(result, ListResult) and not result.error:
        code = "\n".join(result.lines)
        console.print(Syntax(code, "python", line_numbers=True, start_line=result.first,
                             highlight_lines={result.line}))
        return
    spec = TABLES.get(type_key(type(result)))
    if spec is not None:
        title, headers, rows = spec(result)
        if title:
            console.print(title, markup=False, highlight=False)
        table = Table(*headers, show_edge=False, pad_edge=False)
        for row in rows:
            table.add_row(*[str(c) for c in row])
        console.print(table)
        return
    for line in render.to_lines(result):
        console.print(line, markup=False, highlight=False)


def page(text, console):
    """Long output through a pager (less -FRX quits at once when it fits)."""
    height = shutil.get_terminal_size().lines
    if text.count("\n") < height - 1 or not shutil.which("less") or \
            os.environ.get("NSDEBUG_PAGER") == "none":
        sys.stdout.write(text)
        return
    subprocess.run(["less", "-FRX"], input=text.encode(), check=False)


def _tab_binding():
    """Tab applies a single completion even when it replaces what was typed
    ('Wid' -> '__main__.Widget'); with several, it opens the menu and cycles."""
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.key_binding import KeyBindings
    kb = KeyBindings()

    @kb.add("tab")
    def _(event):
        b = event.current_buffer
        if b.complete_state:
            b.complete_next()
            return
        comps = list(b.completer.get_completions(b.document,
                                                 CompleteEvent(completion_requested=True)))
        if len(comps) == 1:
            b.apply_completion(comps[0])
        elif comps:
            b.start_completion(insert_common_part=True)
    return kb


def run_shell(session):
    """The shell; returns an exit status."""
    if not sys.stdin.isatty():
        from .batch import run_batch
        return run_batch(session, sys.stdin.read().splitlines(), False)
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from rich.console import Console

    from .commands.registry import run_line
    path = history_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        history = FileHistory(path)
    except OSError:
        history = InMemoryHistory()
    addresses = []
    completer = ShellCompleter(session, addresses)
    prompt = PromptSession(history=history, completer=completer.completer,
                           complete_while_typing=False, key_bindings=_tab_binding())
    width = shutil.get_terminal_size().columns
    p = session.target.process
    print(f"nsdebug: {p.path}, pid {p.pid}, {len(p.threads)} threads. Type 'help'.")
    while True:
        try:
            line = prompt.prompt(prompt_text(session)).strip()
        except KeyboardInterrupt:
            continue
        except EOFError:
            print()
            return 0
        if not line:
            continue
        if line in ("quit", "exit", "q"):
            return 0
        try:
            result, line_json = run_line(session, line)
            if line_json:
                from . import render
                print(render.to_json(result))
                continue
            console = Console(record=True, width=width, file=open(os.devnull, "w"),
                              force_terminal=True)
            rich_render(result, console)
            text = console.export_text(styles=True)
            addresses.extend(ADDRESS_RE.findall(console.export_text(clear=False)))
            del addresses[:-MAX_REMEMBERED_ADDRESSES]
            page(text, console)
        except KeyboardInterrupt:
            print("\ninterrupted")
        except NsdebugError as e:
            print(f"error: {printable(str(e))}")
        for w in session.new_warnings():
            print(f"warning: {printable(w)}")
