"""Files that hold process memory are private (0600), appear whole or not at all, and
are never written through a symlink someone planted in a shared directory; snapshots
and reports can hide secrets."""

import json
import os
import stat
import sys

import pytest
import targets
from helpers import run_arthur


@pytest.fixture
def shared_dir(tmp_path):
    """A world-writable, sticky directory (like /tmp) with a file to protect."""
    d = tmp_path / "shared"
    d.mkdir()
    os.chmod(d, 0o1777)
    victim = tmp_path / "precious"
    victim.write_text("precious data\n")
    return d, victim


def plant(d, name, victim):
    """Symlinks to the victim at the output's name and at every temporary name an
    earlier version used (FILE.partial, .FILE.arthur-PID.partial)."""
    for link in (name, name + ".partial", f".{name}.arthur-{os.getpid()}.partial"):
        p = d / link
        if not os.path.lexists(p):
            os.symlink(victim, p)


def private_file(path):
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode), f"{path} is not a regular file"
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)


def untouched(victim):
    assert victim.read_text() == "precious data\n"


def one_line(stderr):
    lines = [x for x in stderr.strip().splitlines() if not x.startswith("arthur: paused")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture(scope="module")
def secrets_target(tmp_path_factory):
    d = tmp_path_factory.mktemp("secrets")
    proc, truth_path = targets.start_target(sys.executable, "secrets_target.py", str(d))
    with open(truth_path) as f:
        truth = json.load(f)
    yield proc, truth
    targets.stop(proc)


def test_capture_and_decompress_never_follow_a_planted_symlink(secrets_target, shared_dir):
    proc, _ = secrets_target
    d, victim = shared_dir
    plant(d, "c.lz4", victim)
    r = run_arthur("capture", proc.pid, "-o", d / "c.lz4")
    assert r.returncode != 0 and "exists" in one_line(r.stderr)
    untouched(victim)
    r = run_arthur("capture", proc.pid, "-o", d / "c.lz4", "--force")
    assert r.returncode == 0, r.stderr
    private_file(d / "c.lz4")
    untouched(victim)
    plant(d, "c", victim)
    r = run_arthur("decompress", d / "c.lz4")
    assert r.returncode != 0 and "exists" in one_line(r.stderr)
    r = run_arthur("decompress", d / "c.lz4", "--force")
    assert r.returncode == 0, r.stderr
    private_file(d / "c")
    untouched(victim)
    # Nothing else appeared: no temporary file left, the planted links left alone.
    assert sorted(os.listdir(d)) == sorted(["c.lz4", "c", "c.lz4.partial", "c.partial",
                                            f".c.lz4.arthur-{os.getpid()}.partial",
                                            f".c.arthur-{os.getpid()}.partial"])


def test_snapshot_and_report_never_follow_a_planted_symlink(secrets_target, shared_dir,
                                                            nsdebug, tmp_path):
    proc, _ = secrets_target
    d, victim = shared_dir
    core = targets.arthur(proc.pid, str(tmp_path / "core.lz4"))
    for name, cmd in (("s.heapsnapshot", lambda out, *f: nsdebug(core, "-c",
                                                                  " ".join(["snapshot", out, *f]))),
                      ("r.txt", lambda out, *f: nsdebug("report", core, "--no-heap", "-o",
                                                        out, *f))):
        plant(d, name, victim)
        out = str(d / name)
        r = cmd(out)
        assert r.returncode != 0 and "exists" in r.stderr and "Traceback" not in r.stderr
        untouched(victim)
        r = cmd(out, "--force")
        assert r.returncode == 0, r.stderr
        private_file(out)
        untouched(victim)
    leftovers = [f for f in os.listdir(d) if not os.path.islink(d / f)]
    assert sorted(leftovers) == ["r.txt", "s.heapsnapshot"]


def test_snapshot_redact_hides_the_secrets(secrets_target, nsdebug, tmp_path):
    proc, truth = secrets_target
    core = targets.arthur(proc.pid, str(tmp_path / "core.lz4"))
    plain, redacted = tmp_path / "plain.heapsnapshot", tmp_path / "red.heapsnapshot"
    r = nsdebug(core, "-c", f"snapshot {plain}", "-c", f"snapshot {redacted} --redact",
                timeout=300)
    assert r.returncode == 0, r.stderr
    text, red = plain.read_text(), redacted.read_text()
    for value in truth["secrets"]:
        assert value in text, value            # the test's secrets are really there...
        assert value not in red, value         # ...and --redact hides every one
    for value in truth["visible"]:
        assert value in red, value             # names that are not secret stay
    doc = json.loads(red)
    assert "<redacted>" in doc["strings"]
    assert doc["snapshot"]["node_count"] == json.loads(text)["snapshot"]["node_count"]
    # The report hides the secret local too, wherever it would show.
    r = nsdebug("report", core, "--no-heap")
    assert r.returncode == 0
    for value in truth["secrets"]:
        assert value not in r.stdout, value
