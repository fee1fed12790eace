"""Test hooks of a capture: named steps at which a test makes arthur fail or die.

capture.py calls faultpoint(name) and vanish_point(name) at each step of a capture;
they do nothing unless the environment names that step. The tests use them to prove
that the target is left untouched whatever fails (a raised exception, as a bug would
raise) and whenever arthur itself dies (as SIGKILL would end it).
"""

from __future__ import annotations

import os
import time

FAULT_ENV = "ARTHUR_FAULT"          # tests: raise at a named step (see faultpoint)
VANISH_ENV = "ARTHUR_VANISH"        # tests: die at a named step (see vanish_point)
TIMELINE_ENV = "ARTHUR_TIMELINE"


class InjectedFault(Exception):
    """Raised by faultpoint(): an unexpected exception, as a bug would raise."""


_FIRED = set()


def vanish_point(name):
    """Tests: end arthur at once, as SIGKILL would, when ARTHUR_VANISH names this step;
    and the time of each step (CLOCK_MONOTONIC, ns) appended to ARTHUR_TIMELINE, so a
    test can aim a real SIGKILL at the injection window."""
    path = os.environ.get(TIMELINE_ENV)
    if path:
        with open(path, "a") as f:
            f.write(f"{name} {time.monotonic_ns()}\n")
    if os.environ.get(VANISH_ENV) == name:
        os._exit(137)


def faultpoint(name):
    """Raise once at step `name` when ARTHUR_FAULT names it: proves cleanup from every
    step (and that a retried step then succeeds)."""
    if os.environ.get(FAULT_ENV) == name and name not in _FIRED:
        _FIRED.add(name)
        raise InjectedFault(f"injected fault at {name}")
