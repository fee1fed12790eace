"""Commands: one module per family (process, python, heap), each a table entry per
command that parses its arguments, calls the library (target/, heap/, cpython/) and
returns the library's plain data; nothing here prints or reads the core itself."""

from .registry import COMMANDS, Arg, Command, command, load_all, lookup, parse, run
from .session import Options, Session

__all__ = ["COMMANDS", "Arg", "Command", "command", "lookup", "parse", "run", "Options",
           "Session", "load_all"]
