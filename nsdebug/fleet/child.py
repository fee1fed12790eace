"""The per-core analysis in a process of its own, so that a core that hangs it, eats
its memory or crashes it costs that process only, never the worker or the run.

    python -m nsdebug.fleet.child CORE HEAP MEMORY_LIMIT

HEAP: "1", "0" or "auto"; MEMORY_LIMIT: bytes of data segment (RLIMIT_DATA: the heap
and anonymous mappings, not the core's file mapping), 0 for none. Prints one JSON
document, {"summary": ...} or {"error": ...}; exits 3 when out of memory."""

import json
import resource
import sys

EXIT_MEMORY = 3
RESERVE_PIECES = 8          # MiB kept back for the interpreter's own arenas at the limit


def main(argv):
    path, heap, limit = argv[0], argv[1], int(argv[2])
    if limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        _reserve_arenas()
    try:
        from nsdebug.errors import NsdebugError
        from nsdebug.fleet.summary import summarize
        try:
            result = {"summary": summarize(path, None if heap == "auto" else heap == "1")}
        except NsdebugError as e:
            result = {"error": str(e), "kind": "error"}
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError,
                OverflowError, RecursionError) as e:
            result = {"error": f"internal error: {type(e).__name__}: {e}", "kind": "error"}
        sys.stdout.write(json.dumps(result, separators=(",", ":")))
        sys.stdout.flush()
    except MemoryError:
        sys.stdout = None
        return EXIT_MEMORY
    return 0


def _reserve_arenas():
    """Room for the interpreter's own small objects once the limit is met, given back
    only while a MemoryError is on its way out (corefile/_vector.c, arena_reserve):
    3.11 could otherwise spin for ever unwinding it, at 100% CPU, until the engine's
    timeout (seen in a heap walk under --memory-limit: the int of a handler's last
    instruction could not be made). Without the compiled module, none."""
    try:
        from nsdebug.corefile._vector import arena_reserve
        arena_reserve(RESERVE_PIECES, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass            # (OSError: the limit leaves no room for it; the walk goes on)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
