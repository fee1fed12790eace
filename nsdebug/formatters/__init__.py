"""Text of every result: one module per command family, named as the family's module in
commands/ (commands/heap.py -> formatters/heap.py). Each registers, by result type, the
lines of its text (base.formatter) and the tables the shell draws (base.tabular)."""

from . import heap, process, python, triage  # noqa: F401 - each registers its formatters
from .base import FORMATTERS, TABLES, type_key

__all__ = ["FORMATTERS", "TABLES", "type_key"]
