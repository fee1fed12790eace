"""nsdebug: an offline debugger for core files of CPython processes."""

__version__ = "0.2.0"

from .api import Core, Heap, Object, open  # noqa: E402,A004 - the library API (docs/api.md)

__all__ = ["Core", "Heap", "Object", "open", "__version__"]
