"""The one error tree of nsdebug: every failure a user can act on."""


class NsdebugError(Exception):
    """Root of every error nsdebug reports as a one-line message."""

    hint = ""

    def __str__(self):
        msg = super().__str__()
        return f"{msg} ({self.hint})" if self.hint else msg


class CoreFileError(NsdebugError):
    """The core file cannot be read: not ELF, not a core, truncated, corrupt."""


class FaultError(NsdebugError):
    """Memory at an address is not available in the core or its files."""

    def __init__(self, message, address):
        super().__init__(message)
        self.address = address


class SymbolError(NsdebugError, KeyError):
    """A symbol name or address was looked up and not found."""

    def __str__(self):
        return NsdebugError.__str__(self)


class CommandError(NsdebugError):
    """A command was given bad arguments or cannot run on this core."""


class PythonNotFoundError(NsdebugError):
    """The core holds no CPython interpreter nsdebug can find."""

    hint = "is this a core of a Python process? try --lib-path if libpython moved"


class LayoutMissing(NsdebugError):
    """What was asked needs struct layouts this build has no table for (a layout made
    from _Py_DebugOffsets alone covers threads and stacks, not the heap)."""


class LayoutError(NsdebugError):
    """No struct layout can be trusted for this build: reading on would mean guessing."""
