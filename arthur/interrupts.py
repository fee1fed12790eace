"""SIGINT, SIGTERM and SIGHUP: the first one stops arthur, later ones are let go.

A handler that raises where the signal lands can land in the interpreter's own
callbacks (an import's module-lock finalizer, a thread pool's weakref callback), where
the exception is only printed ("Exception ignored ...") and lost. So the handler raises
only in arthur's own code; elsewhere it leaves the signal pending, and `check()`, called
between the steps of a capture and of its dump, raises it there.
"""

from __future__ import annotations

import os
import signal

from .errors import ArthurError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_state = {"first": None, "pending": False}


class Interrupted(ArthurError):
    pass


def _interrupted(signum):
    return Interrupted(f"interrupted by {signal.Signals(signum).name}; the target was "
                       f"left running")


def on_signal(signum, frame):
    if _state["first"] is not None:
        return
    _state["first"] = signum
    if frame is not None and frame.f_code.co_filename.startswith(_HERE):
        raise _interrupted(signum)
    _state["pending"] = True


def check():
    """Raise a signal that arrived outside arthur's own code."""
    if _state["pending"]:
        _state["pending"] = False
        raise _interrupted(_state["first"])


def install():
    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)


def finish():
    """The work is done or undone: a late signal has nothing left to interrupt."""
    _state["first"] = _state["first"] or 0
    _state["pending"] = False
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
