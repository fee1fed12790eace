"""Bytes from the core never reach the terminal raw: a core whose names hold bytes that
are not UTF-8 and terminal control sequences gives standard output that is valid UTF-8,
free of control characters, with those bytes written as \\xNN; and JSON that parses.
Run under LC_ALL=C, where Python would otherwise pass undecodable bytes through."""

import json
import os
import subprocess

import targets

CONTROL = bytes(range(0x20)).replace(b"\n", b"").replace(b"\t", b"") + b"\x7f"


def run(core, *args):
    env = dict(os.environ, LC_ALL="C", LANG="C")
    r = subprocess.run(targets.nsdebug_cmd() + [core, *args], capture_output=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_hostile_names_are_escaped(cores, tmp_path):
    cap = targets.gcore_capture(targets.default_build(), "hostile_text_target.py",
                                str(tmp_path))
    cmds = ["-c", "bt --all --locals", "-c", "threads", "-c", "objects --top 200"]
    text = run(cap.core, *cmds)
    text.decode("utf-8")                              # strict: valid UTF-8
    assert not any(b in CONTROL for b in text), "a control character reached stdout"
    shown = text.decode()
    assert "evil\\x1b[2Jname\\x07" in shown           # the function's name
    assert "/tmp/bad-\\xff-file.py" in shown          # the file name's byte
    assert "thread\\x1b]0;title\\x07" in shown        # the thread's name
    assert "Cls\\x1b[31mRed" in shown                 # the class, in objects
    for line in run(cap.core, *cmds, "--json").decode("utf-8").splitlines():
        doc = json.loads(line)
        assert "\x1b" not in json.dumps(doc, ensure_ascii=False)


def test_printable_all_is_printable_of_each():
    from nsdebug.escape import printable, printable_all
    texts = ["plain", "", "tab\tok", "bell\x07", "\udcff byte", "é", "x\x1b[31my", "z" * 50,
             "\ud800", "end\x9f"]
    assert printable_all(texts) == [printable(t) for t in texts]
    clean = ["a", "b", "\u4e2d"]
    assert printable_all(clean) is clean
