"""Bad arguments to every command family: one clear line, exit status 1, no traceback."""

import json

import targets
import pytest

BAD = [
    ("print nosuchname", "is not a local, global or builtin"),
    ("frame 99", "no frame 99"),
    ("thread 12345678", "no thread 12345678"),
    ("path 0x10", "is not an object of the heap"),
    ("refs 0x10", "is not an object of the heap"),
    ("retained 0x10", "is not an object of the heap"),
    ("instances NoSuchType", "no objects of type 'NoSuchType'"),
    ("print @12345", "no object has snapshot id 12345"),
    ("snapshot /nonexistent/dir/x.heapsnapshot", "cannot write"),
    ("objects --sort nonsense", "invalid choice"),
    ("bt --frobnicate", "unrecognized arguments"),
    ("frame c99", "no native frame c99"),
    ("frame cx", "not a native frame number"),
    ("frame x", "not a frame number"),
    ("nosuchcommand", "unknown command 'nosuchcommand'; type 'help'"),
    ("help nosuchcommand", "unknown command 'nosuchcommand'"),
]


@pytest.mark.parametrize("line,message", BAD)
def test_bad_python_and_heap_commands(cores, nsdebug, line, message):
    cap = cores.stacks(targets.default_build())
    r = nsdebug(cap.core, "-c", line)
    assert r.returncode == 1, (line, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nsdebug: ") and message in lines[0]


def test_help_in_batch_as_in_the_shell(cores, nsdebug):
    """The error for an unknown command says to type 'help': that works in batch too."""
    from nsdebug.commands import load_all
    from nsdebug.commands.registry import COMMANDS
    load_all()
    cap = cores.stacks(targets.default_build())
    r = nsdebug(cap.core, "-c", "help", "-c", "help bt")
    assert r.returncode == 0, r.stderr
    for name in COMMANDS:
        assert f"  {name} " in r.stdout, name
    assert "usage: bt" in r.stdout
    doc = json.loads(nsdebug(cap.core, "-c", "help", "--json").stdout)
    assert any(line.startswith("  objects ") for line in doc["help"])


def test_inspect_of_a_garbage_pointer_is_an_answer(cores, nsdebug):
    cap = cores.stacks(targets.default_build())
    r = nsdebug(cap.core, "-c", "inspect 0x10", "--json")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["preview"].startswith("<invalid 0x10:") and doc["error"]


def test_python_commands_on_a_core_without_python(cores, nsdebug):
    cap = cores.native()
    r = nsdebug(cap.core, "-c", "bt")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "is this a core of a Python process?" in r.stderr
    r = nsdebug("report", cap.core, "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["info"]["threads"] == 1 and rep["errors"]
    assert rep["environment"]
