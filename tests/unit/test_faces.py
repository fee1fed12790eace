"""The faces without a CPython: the command table's parsing and help, the address syntax
of the shell, text and JSON of results (every formatter named for a record that
exists), printable output whatever the core holds, and @record."""

import importlib
import json
import subprocess
import sys

import pytest

import elfwriter as w
from nsdebug import render
from nsdebug.commands import COMMANDS, Session, load_all, parse
from nsdebug.errors import CommandError
from nsdebug.escape import printable
from nsdebug.formatters import FORMATTERS, TABLES
from nsdebug.formatters import load_all as load_formatters
from nsdebug.model import open_target
from nsdebug.record import Factory, fields_of, record
from nsdebug.units import human_size

pytestmark = pytest.mark.unit
load_all()
load_formatters()


@pytest.mark.parametrize("key", sorted(set(FORMATTERS) | set(TABLES)))
def test_every_formatter_is_named_for_a_record_that_exists(key):
    module, name = key.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    assert fields_of(cls.__new__(cls)), key


def test_every_command_result_has_its_formatter():
    """The results the commands return are records the text knows (a missing one would
    print indented JSON to a user who asked for text)."""
    import nsdebug.commands.heap as h
    import nsdebug.commands.process as p
    import nsdebug.commands.python as py
    for mod in (h, p, py):
        for name in dir(mod):
            obj = getattr(mod, name)
            if isinstance(obj, type) and name.endswith("Result") and \
                    obj.__module__ == mod.__name__:
                assert f"{mod.__name__}.{name}" in FORMATTERS, name


@pytest.mark.parametrize("line, name, attrs", [
    ("bt --all --locals", "bt", {"all": True, "locals": True, "native": False}),
    ("where -a", "bt", {"all": True}),
    ("objects -n 5 --sort retained --json", "objects", {"top": 5, "sort": "retained",
                                                        "json": True}),
    ("x $rsp 32", "x", {"address": "$rsp", "count": "32"}),
    ("p 'a name'", "print", {"what": "a name"}),
    ("obj", "objects", {}),                       # a unique prefix
])
def test_command_lines_parse(line, name, attrs):
    cmd, ns = parse(line)
    assert cmd.name == name
    for k, v in attrs.items():
        assert getattr(ns, k) == v


@pytest.mark.parametrize("line, why", [
    ("nonsense", "unknown command 'nonsense'"),
    ("s", "did you mean"),
    ("objects --sort color", "invalid choice"),
    ("bt 'unclosed", "cannot parse"),
    ("", "empty command"),
])
def test_bad_command_lines_are_one_line_errors(line, why):
    with pytest.raises(CommandError, match=why):
        parse(line)


def test_help_lists_every_command():
    from nsdebug.commands.registry import help_lines
    text = "\n".join(help_lines([]))
    assert all(name in text for name in COMMANDS)
    assert "usage" in "\n".join(help_lines(["bt"])).lower()


@pytest.fixture
def session(tmp_path):
    img = w.Image(w.ET_EXEC, 0x400000)
    text = img.add(".text", b"\x90" * 32, flags=w.SHF_ALLOC | w.SHF_EXECINSTR, align=0x1000)
    img.add_symbols([("start", text, 32, "func")])
    exe = tmp_path / "app"
    exe.write_bytes(img.build())
    regs = {"rip": text + 4, "rsp": 0x7000_0000, "rbp": 0x7000_0100}
    core = tmp_path / "core"
    core.write_bytes(w.core([(b"CORE", w.NT_PRSTATUS, w.prstatus(31, regs)),
                             (b"CORE", w.NT_PRSTATUS, w.prstatus(32, regs)),
                             (b"CORE", w.NT_FILE, w.nt_file([(0x400000, 0x402000, 0,
                                                              str(exe))]))],
                            [(0x7000_0000, bytes(64), None, 6)]))
    return Session(open_target(str(core))), text


@pytest.mark.parametrize("text, want", [
    ("0x1000", 0x1000), ("4096", 4096), ("ff00", 0xFF00), ("$pc", "pc"), ("$sp", 0x7000_0000),
    ("$rbp+0x10", 0x7000_0110), ("start", "start"), ("start+4", "start4"),
])
def test_the_address_syntax(session, text, want):
    s, func = session
    want = {"pc": func + 4, "start": func, "start4": func + 4}.get(want, want)
    assert s.parse_address(text) == want


@pytest.mark.parametrize("text, why", [
    ("$xyz", "no register"), ("nosuchsymbol", "not an address or known symbol"),
    ("0x10+zz", "not an offset"), ("-5", "not an address"),
])
def test_bad_addresses(session, text, why):
    s, _ = session
    with pytest.raises(CommandError, match=why):
        s.parse_address(text)


def test_selecting_threads(session):
    s, _ = session
    assert s.select_thread(32).tid == 32 and s.thread_index == 1
    assert s.select_thread(0).tid == 31                      # by index when no such tid
    with pytest.raises(CommandError, match="no thread 99"):
        s.select_thread(99)


def test_process_commands_on_a_core_without_python(session):
    from nsdebug.commands import run
    s, func = session
    assert run(s, "sym $pc").symbol == "start"
    assert run(s, "x $sp 16").data == "00" * 16
    info = run(s, "info")
    assert info.threads == 2 and "error" in info.python
    lines = render.to_lines(run(s, "maps"))
    assert lines[0].split()[:3] == ["range", "perm", "size"]


def test_text_is_always_printable():
    assert printable("ok\tline\n") == "ok\tline\n"
    assert printable("\x1b[31mred") == "\\x1b[31mred"
    assert printable(b"\xff\xfe".decode("utf-8", "surrogateescape")) == "\\xff\\xfe"
    assert printable("\ud800") == "\\ud800"


def test_json_of_records_is_printable_and_complete():
    @record
    class Row:
        name: str
        data: bytes
        items: list = Factory(list)
    doc = json.loads(render.to_json(Row("a\x07b", b"\x01\x02", [Row("x", b"")])))
    assert doc == {"name": "a\\x07b", "data": "0102",
                   "items": [{"name": "x", "data": "", "items": []}]}


def test_records_check_their_arguments():
    @record
    class R:
        a: int
        b: list = Factory(list)
    r1, r2 = R(1), R(2)
    assert r1.b is not r2.b and repr(r1) == "R(a=1, b=[])"
    with pytest.raises(TypeError):
        R()
    with pytest.raises(TypeError):
        R(1, [], 3)
    with pytest.raises(TypeError):
        R(1, c=2)


@pytest.mark.parametrize("n, text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"),
                                     (5 << 20, "5.0 MiB"), (-2048, "-2.0 KiB")])
def test_sizes_in_words(n, text):
    assert human_size(n) == text


def test_bt_imports_neither_the_heap_commands_nor_their_text():
    """The command and formatter modules load by family as a name or result type is
    first asked for: rendering a `bt` leaves the heap's and triage's out."""
    code = ("import sys; from nsdebug.commands.registry import lookup; "
            "from nsdebug.formatters import formatter_of; "
            "from nsdebug.model.stacks import BacktraceResult; "
            "assert lookup('bt').name == 'bt'; assert formatter_of(BacktraceResult); "
            "print(' '.join(m for m in sys.modules if m.startswith('nsdebug.')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    loaded = set(r.stdout.split())
    assert "nsdebug.commands.python" in loaded and "nsdebug.formatters.python" in loaded
    for late in ("nsdebug.commands.heap", "nsdebug.formatters.heap",
                 "nsdebug.formatters.triage", "nsdebug.heap"):
        assert late not in loaded, late
    # a prefix must be unique among all commands, so it loads every family
    code = ("import sys; from nsdebug.commands.registry import lookup; "
            "print(lookup('objec').name, 'nsdebug.commands.heap' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.split() == ["objects", "True"], r.stderr


def test_a_backtrace_imports_no_functools_collections_or_array():
    """What a cold `bt --all` imports of the standard library is what it uses: struct,
    bisect and mmap (functools would add collections, operator, reprlib and keyword;
    array is loaded when symbols are)."""
    code = ("import sys; base = set(sys.modules); "
            "import nsdebug.cli, nsdebug.commands.python, nsdebug.formatters.python, "
            "nsdebug.model.locks, nsdebug.native.stacks; "
            "print(' '.join(sorted(set(sys.modules) - base)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    loaded = set(r.stdout.split())
    assert "nsdebug.model.stacks" in loaded
    assert not loaded & {"functools", "collections", "array", "re", "json"}, loaded
