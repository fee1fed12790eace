"""nsdebug: an offline debugger for core files of CPython processes."""

__version__ = "0.2.0"
