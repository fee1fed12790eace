"""Commands: one module per family; each returns plain data and never prints."""

from .registry import COMMANDS, Arg, Command, command, lookup, parse, run
from .session import Options, Session


def load_all():
    """Import every command module so the table is complete."""
    from . import heap_cmds, process_cmds, python_cmds  # noqa: F401


__all__ = ["COMMANDS", "Arg", "Command", "command", "lookup", "parse", "run", "Options",
           "Session", "load_all"]
