"""The heap index: written by the first heap command, mapped by the next ones, the same
answers as a fresh walk, and never trusted when stale, foreign, truncated or garbled."""

import json
import os
import shutil

import pytest
import targets

COMMANDS = ["objects --top 50", "largest -n 5", "instances Widget -n 5",
            "strings widget-4 -n 5"]


@pytest.fixture
def core(cores, tmp_path):
    """A private copy of a heap core (the index is written beside it)."""
    cap = cores.heap(targets.default_build())
    dst = tmp_path / "core"
    shutil.copyfile(cap.core, dst)
    return cap, str(dst)


def test_second_command_maps_the_index_and_answers_the_same(core, nsdebug, tmp_path):
    cap, path = core
    widget = cap.truth["named"]["widget"]["id"]
    table = cap.truth["named"]["table"]["id"]
    shared = cap.truth["named"]["shared"]["id"]
    cmds = COMMANDS + [f"path {widget:#x}", f"refs {shared:#x}", f"retained {table:#x}"]
    args = [a for c in cmds for a in ("-c", c)]
    fresh = nsdebug(path, "--no-cache", *args, "--json")
    assert fresh.returncode == 0 and not os.path.exists(path + ".nsdebug-index")
    first = nsdebug(path, *args, "--json")
    assert os.path.exists(path + ".nsdebug-index")
    assert oct(os.stat(path + ".nsdebug-index").st_mode & 0o777) == "0o600"
    second = nsdebug(path, *args, "--json")
    docs = [[json.loads(x) for x in r.stdout.splitlines()] for r in (fresh, first, second)]
    assert docs[0][0]["heap_source"] == "walk" and docs[1][0]["heap_source"] == "walk"
    assert docs[2][0]["heap_source"] == "index"
    for d in docs:
        d[0].pop("heap_source")
    assert docs[0] == docs[1] == docs[2]
    assert docs[2][4]["path"] == "sys.modules['__main__'].widgets[42]"
    # The snapshot from the index is the snapshot from a walk, byte for byte.
    a, b = tmp_path / "a.heapsnapshot", tmp_path / "b.heapsnapshot"
    assert nsdebug(path, "--no-cache", "--snapshot", a).returncode == 0
    assert nsdebug(path, "--snapshot", b).returncode == 0
    assert a.read_bytes() == b.read_bytes()


def test_a_spilled_walk_names_its_scratch_file_the_index(core, tmp_path):
    """A walk that spilled makes its scratch file the index: the arrays the walk wrote
    there stay (no copy into a new file), the walk's dropped arrays are holes, and so
    are those still in use when the process ends. The next commands map it and answer
    as a fresh walk does, after a first run of several commands (their temporaries
    made in the file once it had its name)."""
    import subprocess
    cap, path = core
    table = cap.truth["named"]["table"]["id"]
    shared = cap.truth["named"]["shared"]["id"]
    widget = cap.truth["named"]["widget"]["id"]
    cmds = COMMANDS + [f"retained {table:#x}", f"refs {shared:#x}", f"path {widget:#x}",
                       "suspects", "waste"]
    args = [a for c in cmds for a in ("-c", c)]
    env = targets.nsdebug_env(dict(os.environ, NSDEBUG_SPILL="always",
                                   XDG_CACHE_HOME=str(tmp_path / "cache")))

    def run(*extra):
        r = subprocess.run(targets.nsdebug_cmd() + [path, *extra, *args, "--json"],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        return [json.loads(x) for x in r.stdout.splitlines()], r.stderr

    fresh, _ = run("--no-cache")
    first, _ = run()
    index = path + ".nsdebug-index"
    st = os.stat(index)
    assert oct(st.st_mode & 0o777) == "0o600"
    with open(index, "rb") as f:
        prefix = f.read(64)
        meta = json.loads(_header(f, prefix))
    arrays = meta["arrays"].values()
    data = sum(a["len"] * int(a["dtype"][2:]) for a in arrays)
    page = os.sysconf("SC_PAGE_SIZE")
    # Allocated: the arrays, each in pages of its own, the header and the prefix's page,
    # and the file system's map of a file with holes (32 pages allowed for it); nothing
    # of the walk's other arrays (holes), which the file's length still spans.
    assert st.st_blocks * 512 <= data + (len(arrays) + 2 + 32) * page + \
        len(_header_bytes(meta))
    assert st.st_size > st.st_blocks * 512 + 16 * page
    second, err = run()
    assert second[0]["heap_source"] == "index" and "ignoring" not in err, err
    for docs in (fresh, first, second):
        docs[0].pop("heap_source")
    assert fresh == first == second


def _header(f, prefix):
    import struct
    _, at, n = struct.unpack("<8sQI", prefix[:20])
    f.seek(at)
    return f.read(n)


def _header_bytes(meta):
    return json.dumps(meta, separators=(",", ":")).encode()


def _objects(nsdebug, path):
    r = nsdebug(path, "-c", "objects --top 5", "--json")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout), r.stderr


def test_a_changed_core_gets_a_new_index(core, nsdebug):
    _, path = core
    _objects(nsdebug, path)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))     # the core changed
    doc, err = _objects(nsdebug, path)
    assert doc["heap_source"] == "walk" and "made for another core" in err
    doc, err = _objects(nsdebug, path)
    assert doc["heap_source"] == "index" and err == ""


def _rewrite_array(index, name, change):
    """Change array `name` of an index in place and give it its new CRC-32: a file that
    passes every checksum but holds hostile values (as a crafted one would)."""
    import zlib

    import numpy as np

    from nsdebug.heap.index import layout, with_header
    with open(index, "r+b") as f:
        raw = bytearray(f.read())
        meta, data_at, _, _ = layout(raw)
        spec = meta["arrays"][name]
        dtype = np.dtype(spec["dtype"])
        at = data_at + spec["offset"]
        a = np.frombuffer(raw, dtype, spec["len"], at).copy()
        change(a)
        raw[at:at + a.nbytes] = a.tobytes()
        spec["crc32"] = zlib.crc32(a.tobytes())
        f.seek(0)
        f.write(with_header(raw, meta))
        f.truncate()


@pytest.mark.parametrize("damage", ["truncated", "foreign", "another-user",
                                    "group-writable", "symlink"])
def test_a_damaged_index_is_rebuilt_not_trusted(core, nsdebug, tmp_path, damage):
    _, path = core
    want, _ = _objects(nsdebug, path)
    index = path + ".nsdebug-index"
    size = os.path.getsize(index)
    if damage == "truncated":
        with open(index, "r+b") as f:
            f.truncate(size * 2 // 3)
        why = "truncated"
    elif damage == "foreign":
        with open(index, "wb") as f:
            f.write(b"not an index at all\n" * 100)
        why = "not an nsdebug heap index"
    elif damage == "another-user":
        os.chown(index, 65534, 65534)        # root runs the suite: nobody's file now
        why = "owned by uid 65534"
    elif damage == "group-writable":
        os.chmod(index, 0o660)
        why = "writable by others"
    else:
        os.rename(index, index + ".real")
        os.symlink(index + ".real", index)
        why = "is a symbolic link"
    doc, err = _objects(nsdebug, path)
    assert doc["heap_source"] == "walk" and why in err, err
    assert len(err.strip().splitlines()) == 1
    doc.pop("heap_source"), want.pop("heap_source")
    assert doc == want
    doc, _ = _objects(nsdebug, path)
    assert doc["heap_source"] == "index"


def _garble(index, name):
    """64 bytes in the middle of array `name` overwritten, its CRC-32 left as it was."""
    from nsdebug.heap.index import layout
    with open(index, "r+b") as f:
        raw = f.read()
        meta, data_at, _, _ = layout(raw)
        spec = meta["arrays"][name]
        nbytes = spec["len"] * int(spec["dtype"][2:])
        f.seek(data_at + spec["offset"] + nbytes // 2)
        f.write(b"\xa5" * min(64, nbytes // 2))


# (array, how it is damaged, what the error says, the command that reads it)
ARRAY_DAMAGE = [
    ("e_to", "garbled", "array e_to fails its checksum", "path"),
    ("e_to", "out of range", "edge targets out of range", "path"),
    ("idom", "out of range", "dominators or address order out of range", "suspects"),
    ("hist_size", "garbled", "array hist_size fails its checksum", "objects")]


@pytest.mark.parametrize("name,damage,why,reader", ARRAY_DAMAGE)
def test_a_damaged_array_is_never_used(core, nsdebug, name, damage, why, reader):
    """Each array of the index is checked when a command first reads it: a command that
    does not read the damaged one answers from the rest, one that does fails in one line
    and removes the index, and the next command walks the heap again."""
    cap, path = core
    want, _ = _objects(nsdebug, path)
    index = path + ".nsdebug-index"
    if damage == "garbled":
        _garble(index, name)
    elif name == "e_to":
        _rewrite_array(index, "e_to", lambda a: a.__setitem__(len(a) // 2, 1 << 30))
    else:
        _rewrite_array(index, "idom", lambda a: a.__setitem__(len(a) - 1, -7))
    if reader != "objects":
        doc, err = _objects(nsdebug, path)       # the per-type columns only
        assert doc == dict(want, heap_source="index") and err == "", err
    widget = cap.truth["named"]["widget"]["id"]
    cmd = {"path": f"path {widget:#x}", "suspects": "suspects",
           "objects": "objects --top 5"}[reader]
    r = nsdebug(path, "-c", cmd)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and why in lines[0] and "removed it" in lines[0], r.stderr
    assert not os.path.exists(index)
    doc, err = _objects(nsdebug, path)
    assert doc["heap_source"] == "walk" and err == ""
    doc.pop("heap_source"), want.pop("heap_source")
    assert doc == want


def test_an_index_that_cannot_go_beside_the_core_goes_to_the_cache(core, tmp_path):
    """The core's directory refuses the index (here: a directory squats its name, which
    no permission bit would stop root from writing): $XDG_CACHE_HOME/nsdebug holds it."""
    import subprocess
    _, path = core
    os.mkdir(path + ".nsdebug-index")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))

    def run():
        r = subprocess.run(targets.nsdebug_cmd() + [path, "-c", "objects -n 1", "--json"],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["heap_source"]

    assert run() == "walk" and run() == "index"
    assert len(list((tmp_path / "cache" / "nsdebug").glob("heap-*.nsdebug-index"))) == 1


def test_a_full_disk_mid_index_leaves_no_index_and_a_good_answer(core, tmp_path):
    """The index is written by a thread while the dominators are computed: a write that
    fails part way (here the file size limit, as a full disk would) costs the index
    only, with a one-line note, and leaves no file, beside the core or in the cache."""
    import resource
    import subprocess
    _, path = core
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    limit = 256 << 10                  # far below the index, above what else is written

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    fresh = subprocess.run(targets.nsdebug_cmd() + [path, "--no-cache", "-c", "objects -n 5"],
                           capture_output=True, text=True, timeout=300)
    r = subprocess.run(targets.nsdebug_cmd() + [path, "-c", "objects -n 5"],
                       capture_output=True, text=True, env=env, timeout=300,
                       preexec_fn=small_files)
    assert r.returncode == 0, r.stderr
    assert r.stdout == fresh.stdout
    notes = [line for line in r.stderr.splitlines() if "index" in line]
    assert len(notes) == 1 and "heap index not written" in notes[0], r.stderr
    assert "Traceback" not in r.stderr
    left = [p for p in os.listdir(os.path.dirname(path)) if "nsdebug-index" in p]
    cache = tmp_path / "cache" / "nsdebug"
    assert left == [] and (not cache.exists() or not list(cache.iterdir()))


@pytest.mark.unit
@pytest.mark.parametrize("step", [3, 1 << 20])
def test_the_value_checks_see_every_piece(monkeypatch, step):
    """_bad_values compares edge starts and edge names a piece at a time: a fault in the
    last piece, or across two pieces, is seen as in one."""
    import numpy as np
    from nsdebug.heap import index
    from nsdebug.heap.fields import ELEMENT, PROPERTY
    monkeypatch.setattr(index, "CHECK_STEP", step)
    starts = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], np.int64)
    P = PROPERTY
    kinds = np.array([ELEMENT, P, P, ELEMENT, P, P, P, P, P, ELEMENT], np.int8)
    names = np.array([99, 0, 1, 99, 2, 0, 1, 2, 1, 99], np.int32)

    class Arrays:
        _specs = {"e_to": (None, 0, 10, 0), "key_refs": (None, 0, 1, 0)}

        def __getitem__(self, name):
            return {"e_kind": kinds}[name]

    meta = {"n": 10, "names": ["a", "b", "c"]}
    assert index._bad_values(meta, "edge_start", starts, Arrays()) is None
    assert index._bad_values(meta, "e_name", names, Arrays()) is None
    for at in (3, 9):              # on a piece's edge for step 3, and in the last piece
        bad = starts.copy()
        bad[at] = 0
        assert index._bad_values(meta, "edge_start", bad, Arrays()) == \
            "edge starts out of order"
    for at, value in ((8, 3), (2, -2)):
        bad = names.copy()
        bad[at] = value
        assert index._bad_values(meta, "e_name", bad, Arrays()) == "edge names out of range"
