"""The CPython runtime model: versions, layouts, threads, frames and objects. Knows CPython,
not the UI."""

from .runtime import PyThread, Runtime, attach

__all__ = ["PyThread", "Runtime", "attach"]
