"""Text of every result: one module per command family, named as the family's module in
commands/ (commands/heap.py -> formatters/heap.py). Each registers, by result type, the
lines of its text (base.formatter) and the tables the shell draws (base.tabular).

The family modules are imported when first needed (`bt` renders without the heap's
formatters): formatter_of() loads them one by one until the result's type is known,
load_all() loads every one (the shell's tables, the tests)."""

from importlib import import_module

from .base import FORMATTERS, TABLES, type_key

# In the order formatter_of() tries them: the stacks' family first.
FAMILIES = ("python", "process", "heap", "triage")
_loaded = set()


def _load_next():
    for family in FAMILIES:
        if family not in _loaded:
            _loaded.add(family)
            import_module(f"{__name__}.{family}")
            return True
    return False


def load_all():
    while _load_next():
        pass


def formatter_of(result_type):
    """f(result) -> lines registered for `result_type`, or None."""
    key = type_key(result_type)
    while key not in FORMATTERS and _load_next():
        pass
    return FORMATTERS.get(key)


__all__ = ["FORMATTERS", "TABLES", "type_key", "formatter_of", "load_all"]
