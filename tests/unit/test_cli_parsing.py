"""The quick parsers (nsdebug's own options, each command's) give what argparse gives
for every form they accept, and leave every other form to argparse."""

import argparse
import shlex

import pytest

from nsdebug import cli
from nsdebug.commands import COMMANDS, load_all
from nsdebug.commands.registry import split_words

pytestmark = pytest.mark.unit
load_all()


def _samples(arg):
    kw = arg.kwargs
    if "choices" in kw:
        return [str(c) for c in kw["choices"]] + ["nonsense"]
    if kw.get("type") is int:
        return ["7", "0", "x1", "-3"]
    return ["word", "0x7f00", "a.b"]


def _forms(cmd):
    """Word lists for a command: none, each flag and positional alone and with a value,
    all of them together, and some that only argparse can read or refuse."""
    forms = [[]]
    every = []
    for a in cmd.args:
        for flag in a.flags:
            if a.kwargs.get("action") == "store_true":
                forms.append([flag])
                every.append(flag)
            elif flag.startswith("-"):
                for v in _samples(a):
                    forms.append([flag, v])
                forms.append([flag])
                every += [flag, _samples(a)[0]]
            else:
                for v in _samples(a):
                    forms.append([v])
                every.append(_samples(a)[0])
        if a.flags[0].startswith("--"):
            forms.append([a.flags[0][:4]])                   # an abbreviation
            forms.append([a.flags[0] + "=1"])
    forms += [every, every + ["extra"], ["--no-such-flag"], ["--"]]
    return forms


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_reads_as_argparse_reads(name):
    cmd = COMMANDS[name]
    accepted = 0
    for words in _forms(cmd):
        quick = cmd.quick_parse(words)
        try:
            full = vars(cmd.parser().parse_args(words))
        except Exception:                                    # noqa: BLE001 - CommandError
            full = None
        if quick is not None:
            accepted += 1
            assert full is not None and vars(quick) == full, words
    assert accepted >= 1                    # the bare command at least


@pytest.mark.parametrize("argv", [
    ["core"], ["core", "-c", "bt --all"], ["core", "-c", "bt", "-c", "threads", "--json"],
    ["core", "--json", "--no-cache", "--command", "info"], ["core", "--traceback"],
    ["core", "-c"], ["core", "exe"], ["core", "--max-depth", "3"], ["-c", "bt", "core"],
    ["core", "--snapshot", "x", "--force"],
])
def test_nsdebug_options_read_as_argparse_reads(argv):
    quick = cli.quick_args(argv)
    try:
        full = vars(cli.build_parser().parse_args(argv))
    except SystemExit:
        full = None
    if quick is not None:
        assert vars(quick) == full
    assert (quick is None) == (argv[1:2] not in ([], ["-c"], ["--json"], ["--command"],
                                                 ["--traceback"]) or argv == ["core", "-c"])


@pytest.mark.parametrize("line", [
    "bt --all", "  bt   --all ", "print 0x7f00+16", "x 'a b'", 'x "a\\"b"', "x a\\ b",
    "x\ta", "x \u00a0y", "instances builtins.dict", "x #c"])
def test_command_words_split_as_a_shell_splits_them(line):
    assert split_words(line) == shlex.split(line)


def test_no_argparse_for_the_common_forms():
    assert cli.quick_args(["core", "-c", "bt --all"]) is not None
    assert COMMANDS["bt"].quick_parse(["--all"]).all is True
    assert isinstance(cli.build_parser(), argparse.ArgumentParser)
