"""The docs match the code, and the README's first command runs the demo on a fresh clone."""

import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_command_reference_is_current(monkeypatch):
    # (sys.path as it was after, monkeypatch restoring it: Dask's workers start with this
    # process's path, and one with the work tree first imported its nsdebug, without
    # compiled modules.)
    monkeypatch.syspath_prepend(os.path.join(ROOT, "tools"))
    import gen_command_docs
    with open(os.path.join(ROOT, "docs", "commands.md")) as f:
        assert f.read() == gen_command_docs.render(), \
            "docs/commands.md is stale: run tools/gen_command_docs.py"


def readme_commands():
    with open(os.path.join(ROOT, "README.md")) as f:
        return re.findall(r"^    (python3 -m venv .*)$", f.read(), re.M)


def test_readme_first_command_runs_the_demo_on_a_fresh_clone(tmp_path):
    first = readme_commands()[0]
    assert first.endswith("nsdebug demo")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", ROOT, str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    r = subprocess.run(["bash", "-c", first], cwd=clone, capture_output=True, text=True,
                       timeout=900, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    out = r.stdout
    assert re.search(r"arthur: paused pid \d+ for [\d.]+ ms", out)
    assert "-c 'info'" in out and "Thread" in out and "report-worker" in out
    assert re.search(r"400 objects of type __main__\.RequestContext", out)
    assert "sys.modules['__main__']._audit_log[" in out
