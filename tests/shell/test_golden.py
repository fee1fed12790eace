"""The outputs of the main commands kept the same across refactoring: `bt --all --locals`,
`path`, `refs` and `retained` of named objects, `tasks`, and `diff`, in text and JSON,
on every build, compared with copies recorded in tests/golden/<build>/.

What changes from one run to the next is replaced by a placeholder first: addresses,
thread and process ids, the temporary and checkout directories, the interpreter's patch
release, and line numbers in the standard library (a new Debian upload moves them);
heap totals are left out (they count the test environment's own strings). Everything
else must be byte for byte what was recorded. NSDEBUG_GOLDEN_UPDATE=1 rewrites the
copies: review their diff before committing it. tools/golden.py does the same
unnormalized, on a fixed set of cores kept on disk.
"""

import json
import os
import re

import pytest

import targets

GOLDEN = os.path.join(os.path.dirname(os.path.dirname(__file__)), "golden")
NAMED = ("widget", "widget_dict", "tags", "table_value", "shared", "ring_a")
UPDATE = bool(os.environ.get("NSDEBUG_GOLDEN_UPDATE"))


def normalize(text, cap_dirs):
    for d in cap_dirs:
        text = text.replace(d, "<TMP>")
    text = text.replace(targets.ROOT, "<ROOT>")
    text = re.sub(r"(<TMP>/core[\w-]*)\.\d+", r"\1.PID", text)      # gcore's core.PID
    text = re.sub(r"0x[0-9a-f]{5,}", "0xADDR", text)
    text = re.sub(r"\b(3\.\d+)\.\d+\b", r"\1.x", text)             # patch releases
    text = re.sub(r"(Thread|thread|tid|pid) \d+", r"\1 N", text)
    # A standard library file's line numbers move with each patch release.
    text = re.sub(r'(File "(?!<ROOT>)[^"]+", line )\d+', r"\1N", text)
    text = re.sub(r"\(((?!<ROOT>)[\w.]+\.py):\d+\)", r"(\1:N)", text)
    return text


def run(nsdebug, *args):
    r = nsdebug(*args, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    return r.stdout


# Fields that count the whole heap, the test environment's own strings and dicts too.
TOTALS = {"objects_before", "objects_after", "size_before", "size_after", "new_objects",
          "gone_objects", "count_before", "count_after", "retained_before",
          "retained_after"}


def _plain(value):
    """A JSON document with addresses, thread and process ids zeroed (any int of 2**24
    or more: a non-PIE build's heap starts low; and tid, pid, thread_id, *address), the
    standard library's line numbers too, and the heap's totals left out."""
    if isinstance(value, dict):
        out = {k: _plain(v) for k, v in value.items() if k not in TOTALS}
        if isinstance(out.get("locations"), list):   # diff: see drop_totals
            out["locations"] = [g for g in out["locations"]
                                if not str(g.get("path", "")).startswith("<C ")]
        out.pop("retained_change", None)    # counts the noise of C roots too
        if isinstance(out.get("types"), list):  # diff: the fixture's types, not noise
            out["types"] = [t for t in out["types"] if not isinstance(t, dict)
                            or abs(t.get("count_change", 100)) >= 100]
        for k in out:
            if (k in ("tid", "pid", "thread_id") or "address" in k) and \
                    isinstance(out[k], int):
                out[k] = 0
        if isinstance(out.get("file"), str) and not out["file"].startswith(targets.ROOT) \
                and isinstance(out.get("line"), int):
            out["line"] = 0
        return out
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1 << 24:
        return 0
    return value


def drop_totals(text):
    """diff's text without what counts the whole heap: the totals line, and the before
    and after columns of the table of types (the change columns stay); and without the
    groups held from C roots (a stale stack slot or malloc block that happens to point at
    a new object: which ones do differs from run to run)."""
    text = re.sub(r"^  [+-][\d,]+ objects?, .*: <C .*\n(      .*\n)?", "", text, flags=re.M)
    text = re.sub(r"^\d[\d,]* -> [\d,]+ objects.*$", "<totals>", text, flags=re.M)
    text = re.sub(r"^before\s+after\s+", "", text, flags=re.M)
    text = re.sub(r"^\s*\d+\s+\d+\s+([+-])", r"\1", text, flags=re.M)
    # Types whose count barely changed are the run's noise, not the fixture's growth.
    return re.sub(r"^[+-]\d{1,2} +\S+ \S+ +\S+ \S+ +\S+\n", "", text, flags=re.M)


def outputs(cores, build, nsdebug):
    stacks, heap, tasks = cores.stacks(build), cores.heap(build), cores.asyncio(build)
    old, new = cores.leak(build)
    dirs = sorted({c.workdir for c in (stacks, heap, tasks, old, new)}, key=len, reverse=True)
    out = {}
    for fmt in ("txt", "json"):
        extra = ["--json"] if fmt == "json" else []
        out[f"bt.{fmt}"] = run(nsdebug, stacks.core, "-c", "bt --all --locals", *extra)
        lines = []
        for name in NAMED:
            addr = f"{heap.truth['named'][name]['id']:#x}"
            head = "" if extra else f"== {name}\n"
            lines.append(head + run(nsdebug, heap.core, "-c", f"path {addr}", "-c",
                                    f"refs {addr}", "-c", f"retained {addr} -n 5", *extra))
        out[f"objects.{fmt}"] = "".join(lines)
        out[f"tasks.{fmt}"] = run(nsdebug, tasks.core, "-c", "tasks --all --locals", *extra)
        out[f"diff.{fmt}"] = drop_totals(run(nsdebug, "diff", old.core, new.core, "--top", "12",
                                             *extra))
    for k in [k for k in out if k.endswith(".json")]:
        out[k] = "".join(json.dumps(_plain(json.loads(line)), sort_keys=True) + "\n"
                         for line in out[k].splitlines())
    return {k: normalize(v, dirs) for k, v in out.items()}


def test_outputs_are_the_recorded_ones(cores, build, nsdebug):
    got = outputs(cores, build, nsdebug)
    folder = os.path.join(GOLDEN, build.id)
    if UPDATE:
        os.makedirs(folder, exist_ok=True)
        for name, text in got.items():
            with open(os.path.join(folder, name), "w") as f:
                f.write(text)
        pytest.skip("golden copies rewritten")
    differ = []
    # diff's figures on Debian's builds (arthur captures of a live heap) vary with
    # what C roots hold from run to run; its truth is checked by tests/heap/test_diff*.
    for name, text in got.items():
        if name.startswith("diff.") and build.id.startswith("debian"):
            continue
        path = os.path.join(folder, name)
        assert os.path.exists(path), f"no recorded copy {path} (NSDEBUG_GOLDEN_UPDATE=1)"
        with open(path) as f:
            want = f.read()
        if want != text:
            differ.append(name)
    assert not differ, f"outputs changed on {build.id}: {differ} (see tests/golden/)"
