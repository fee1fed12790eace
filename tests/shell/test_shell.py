"""The real shell in a pseudo-terminal: typing, completion, selection, Ctrl-C, Ctrl-D."""

import os
import time

import pexpect
import pytest
import targets

PROMPT = r"nsdebug \[tid \d+ #\d+ [^\]]*\]>"


@pytest.fixture(scope="module")
def big_heap_core(tmp_path_factory):
    """A heap large enough that its first walk takes seconds (to be interrupted)."""
    d = str(tmp_path_factory.mktemp("bigheap"))
    return targets.gcore_capture(targets.default_build(), "heap_target.py", d, "10")


def spawn(core, tmp_path):
    env = dict(os.environ, NSDEBUG_PAGER="none", TERM="xterm", HOME=str(tmp_path),
               PROMPT_TOOLKIT_NO_CPR="1",
               XDG_STATE_HOME=str(tmp_path / "state"))
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(targets.nsdebug_cmd()[0], targets.nsdebug_cmd()[1:] + [core],
                          env=env, dimensions=(50, 200), encoding="utf-8", timeout=60)
    child.expect(PROMPT)
    return child


def test_shell_session(big_heap_core, tmp_path):
    child = spawn(big_heap_core.core, tmp_path)
    try:
        child.sendline("threads")
        child.expect("clock_nanosleep|nanosleep|select")
        child.expect(PROMPT)
        child.sendline("bt")
        child.expect(r'line \d+, in park')
        child.expect(PROMPT)
        # A long command, interrupted: the prompt comes back, the shell lives on.
        child.sendline("objects")
        child.expect("walking the heap")     # running, not still being read as a line
        time.sleep(0.2)
        child.sendintr()
        # Interrupted, or (on a loaded machine) finished before the signal landed: either
        # way the prompt comes back and the shell lives on (the commands below).
        if child.expect(["interrupted", PROMPT]) == 0:
            child.expect(PROMPT)
        # Completion of a type name that replaces what was typed.
        child.send("instances Wid")
        child.send("\t")
        child.expect(r"__main__\.Widget")
        child.sendline("")
        child.expect(r"30,000 objects of type __main__\.Widget", timeout=120)
        child.expect(PROMPT)
        child.sendline("frame 0")
        child.expect(r"in park")
        child.expect(r"nsdebug \[tid \d+ #0 park\]>")
        child.send("print wid")
        child.send("\t")
        child.expect("get_count")      # completes "wid" to widget_count
        child.sendline("")
        child.expect(r"30000\s")
        child.expect(PROMPT)
        child.sendline("help instances")
        child.expect("usage: instances")
        child.expect(PROMPT)
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    history = (tmp_path / "state" / "nsdebug" / "history").read_text()
    assert "instances __main__.Widget" in history and "print widget_count" in history


def test_shell_on_every_build(cores, build, tmp_path):
    """The shell is the same command table on every build: stacks, a local, the heap."""
    cap = cores.heap(build)
    child = spawn(cap.core, tmp_path)
    try:
        child.sendline("bt")
        child.expect(r"line \d+, in park")
        child.expect(PROMPT)
        child.sendline("print widget_count")
        child.expect(r"3000\s")
        child.expect(PROMPT)
        child.sendline("instances Widget -n 1")
        child.expect(r"3,000 objects of type __main__\.Widget", timeout=120)
        child.expect(PROMPT)
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
