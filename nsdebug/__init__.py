"""nsdebug: an offline debugger for core files of CPython processes."""

__version__ = "0.2.0"

__all__ = ["Core", "Heap", "Object", "open", "triage", "__version__"]


def __getattr__(name):
    """The library API (docs/api.md), imported on first use: the command line starts
    without it."""
    if name in ("Core", "Heap", "Object", "open", "triage"):
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'nsdebug' has no attribute {name!r}")
