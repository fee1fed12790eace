"""Files nsdebug writes for the user (a snapshot, a report, a page): private (0600),
never through a symlink, whole or not at all (arthur.safefile), and a failure to write
one is a one-line NsdebugError."""

from __future__ import annotations

import contextlib

from .errors import NsdebugError


@contextlib.contextmanager
def private_output(path, force=False, binary=False):
    """The open output (`.write()`, `.f`); committed when the block ends without error.
    `force` replaces an existing file."""
    from arthur.safefile import OutputError, PrivateOutput
    try:
        with PrivateOutput(path, force, binary=binary) as out:
            yield out
    except OutputError as e:
        raise NsdebugError(e.strerror) from None
    except OSError as e:
        raise NsdebugError(f"cannot write {path}: {e.strerror or e}") from None


def write_text(path, text, force=False):
    """Write `text` to the private file `path`."""
    with private_output(path, force) as out:
        out.write(text)
