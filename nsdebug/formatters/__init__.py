"""Text of every result: one module per command family, named as the family's module in
commands/ (commands/heap.py -> formatters/heap.py). Each registers, by result type, the
lines of its text (base.formatter) and the tables the shell draws (base.tabular).

The family modules are imported when first needed (`bt` renders without the heap's
formatters): formatter_of() loads them one by one until the result's type is known,
load_all() loads every one (the shell's tables, the tests)."""

from ..families import Families
from .base import FORMATTERS, TABLES, type_key

# In the order formatter_of() tries them: the stacks' family first.
FAMILIES = Families(__name__, ("python", "process", "heap", "triage"))


def load_all():
    FAMILIES.load_all()


def formatter_of(result_type):
    """f(result) -> lines registered for `result_type`, or None."""
    key = type_key(result_type)
    FAMILIES.load_until(lambda: key in FORMATTERS)
    return FORMATTERS.get(key)


__all__ = ["FORMATTERS", "TABLES", "type_key", "formatter_of", "load_all"]
