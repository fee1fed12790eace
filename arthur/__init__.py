"""arthur: capture a core of a live process, pausing it only for a fork. Stdlib + lz4 only."""

__version__ = "0.2.0"
