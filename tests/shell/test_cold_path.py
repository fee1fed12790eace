"""What a cold `nsdebug CORE -c "bt --all"` and `threads` load: only what they use. The
heap, the DWARF reader, the unwinder, capstone and numpy load on first use; `re`,
`json`, `argparse`, `shlex`, `tokenize`, `signal` and `enum` (together a third of such a
run) not at all. The time itself is benchmarks/bt_vs_pystack.py's to measure."""

import json
import subprocess
import sys

import pytest

NOT_LOADED = ("re", "json", "argparse", "shlex", "tokenize", "linecache", "signal", "enum",
              "nsdebug.heap", "nsdebug.native.unwind", "nsdebug.native.cfi",
              "nsdebug.native.dwarf", "nsdebug.native._dwarfc", "capstone", "numpy",
              "nsdebug.repl", "nsdebug.report")

SCRIPT = """
import io, sys
before = set(sys.modules)
from nsdebug.cli import main
out, sys.stdout = sys.stdout, io.StringIO()
status = main(sys.argv[1:])
text, sys.stdout = sys.stdout.getvalue(), out
modules = sorted(set(sys.modules) - before)
import json
print(json.dumps([status, text, modules]))
"""


@pytest.mark.parametrize("command", ["bt --all", "threads"])
def test_a_cold_stack_command_loads_only_what_it_uses(cores, build, command, tmp_path):
    cap = cores.stacks(build)
    # Not from the checkout's directory: `-c` would import its nsdebug, not the
    # installed one.
    r = subprocess.run([sys.executable, "-c", SCRIPT, cap.core, "-c", command],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    status, out, modules = json.loads(r.stdout)
    # (An editable install's import hook loads `re` before this script starts.)
    assert status == 0 and "in system call futex" in out, r.stderr
    loaded = [m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_LOADED)]
    assert loaded == [], loaded
