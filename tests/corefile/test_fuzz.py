"""A short seeded run of tools/fuzz_cores.py, as CI's guard against hostile cores: kernel
crash cores of two CPython builds and an arthur .lz4 capture (with its file extracts),
mutated in their headers, notes, object memory, length and container; nsdebug must never
end in an internal error, print invalid UTF-8 or bad JSON, hang or crash. The long run's
figures are in the note of issue 10."""

import os
import subprocess
import sys

import targets

FUZZER = os.path.join(os.path.dirname(targets.FIXTURES), "tools", "fuzz_cores.py")


def test_short_seeded_fuzz_run(cores, tmp_path):
    seeds = [cores.crash("3.8").core, cores.crash(targets.default_build()).core]
    proc, _truth = targets.start_target(targets.default_build().exe, "stacks_target.py",
                                        str(tmp_path), threads=4)
    try:
        seeds.append(targets.arthur(proc.pid, str(tmp_path / "c.lz4")))
    finally:
        targets.stop(proc)
    r = subprocess.run([sys.executable, FUZZER, *seeds, "--mutants", "150", "--seed", "7",
                        "--jobs", "2", "--timeout", "60", "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=1200,
                       env=targets.nsdebug_env())
    assert "150 mutants of 3 seed(s)" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.listdir(tmp_path / "out") == []
