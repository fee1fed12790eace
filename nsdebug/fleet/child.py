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


def main(argv):
    path, heap, limit = argv[0], argv[1], int(argv[2])
    if limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        # At the limit a small allocation refused ends this process at once (freemem):
        # 3.11-3.13 could otherwise spin unwinding the MemoryError until the timeout.
        from nsdebug.freemem import exit_when_exhausted
        exit_when_exhausted(EXIT_MEMORY, "nsdebug: out of memory at the data segment limit")
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
