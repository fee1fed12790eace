"""Bytes -> process image: ELF cores, their notes, memory and symbols. Knows ELF, not Python."""

from .process import Process, Thread, open_core, open_live

__all__ = ["Process", "Thread", "open_core", "open_live"]
