"""nsdebug triage on real cores: four bugs (a C extension's NULL read, os.abort(), a stack
overflow, a wild pointer through ctypes) crashed by the kernel on three CPython builds,
each through different call paths, lines and fault addresses, with a truncated core, a
non-Python core and an empty file beside them; captures of three instances of a leaky
service; the same run on a real Dask LocalCluster with two worker processes."""

import glob
import json
import os
import resource
import shutil
import subprocess
import time

import pytest
import targets

BUGS = ("cext", "abort", "overflow", "ctypes")
BUILDS = ("3.8", "3.11", "3.13")
SCRIPT = os.path.join(targets.FIXTURES, "triage_target.py")
LIMIT = "110M"        # more than a crash core's analysis needs, less than a big heap's


def _unlimited_core():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,) * 2)


def _crash(python, workdir, *args):
    """Run python with args in workdir, cores on; the kernel's core there."""
    os.makedirs(workdir)
    proc = subprocess.run([python, *args], cwd=workdir, preexec_fn=_unlimited_core,
                          capture_output=True, timeout=60)
    assert proc.returncode < 0, proc.stderr.decode()[-500:]
    found = glob.glob(os.path.join(workdir, "core*"))
    assert found, f"no core in {workdir}"
    return found[0]


def _build_ext(exe, outdir):
    """fixtures/crashext.c built for the interpreter `exe`, in outdir."""
    info = subprocess.run([exe, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['include']); print(sysconfig.get_config_var('EXT_SUFFIX'))"],
                          capture_output=True, text=True, check=True).stdout.split()
    os.makedirs(outdir, exist_ok=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-g", f"-I{info[0]}",
                    os.path.join(targets.FIXTURES, "crashext.c"),
                    "-o", os.path.join(outdir, "crashext" + info[1])], check=True)
    return outdir


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A directory of crash cores ({core path: bug}) and three bad files."""
    ok, why = targets.kernel_core_pattern_ok()
    if not ok:
        pytest.skip(f"the kernel cannot write cores here: {why}")
    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the C extension")
    builds = [targets.build(b) for b in BUILDS]
    missing = [b.id for b in builds if not b.exe]
    if missing:
        pytest.skip(f"CPython {', '.join(missing)} not installed")
    root = str(tmp_path_factory.mktemp("fleet"))
    spool = os.path.join(root, "cores")
    truth = {}
    for k, b in enumerate(builds):
        ext = _build_ext(b.exe, os.path.join(root, "ext", b.id))
        for i, bug in enumerate(BUGS):
            # Each bug from several call paths, lines and addresses across the builds.
            for variant in sorted({k % 3, (k + i + 1) % 3}):
                d = os.path.join(spool, f"{bug}-{b.id}-{variant}")
                core = _crash(b.exe, d, SCRIPT, "truth.json", bug, str(variant), ext)
                truth[core] = bug
    # A truncated core, an empty file and a core of a process that is not Python.
    cut = os.path.join(spool, "bad", "core.truncated")
    os.makedirs(os.path.dirname(cut))
    with open(next(iter(truth)), "rb") as f:
        head = f.read(200_000)
    with open(cut, "wb") as f:
        f.write(head)
    empty = os.path.join(spool, "bad", "core.empty")
    open(empty, "w").close()
    sleeper = _crash("/bin/sh", os.path.join(spool, "notpython"), "-c", "kill -SEGV $$")
    return {"dir": spool, "truth": truth, "bad": {cut, empty, sleeper}, "root": root}


def triage(nsdebug, *args, timeout=600):
    r = nsdebug("triage", *args, "--json", timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr == "", r.stderr          # no progress bar on a pipe
    return json.loads(r.stdout)


def test_groups_are_exactly_the_bugs(fleet, nsdebug, tmp_path):
    doc = triage(nsdebug, fleet["dir"], "--cache", str(tmp_path / "cache"))
    truth = fleet["truth"]
    assert doc["cores"] == len(truth) + len(fleet["bad"])
    assert len(doc["groups"]) == len(BUGS), [g["signature"] for g in doc["groups"]]
    seen = set()
    for g in doc["groups"]:
        bugs = {truth[c] for c in g["cores"]}
        assert len(bugs) == 1, (g["signature"], bugs)          # one bug per signature
        bug = bugs.pop()
        assert bug not in seen                                   # one signature per bug
        seen.add(bug)
        assert sorted(g["cores"]) == sorted(c for c, b in truth.items() if b == bug)
        assert g["count"] == len(g["cores"])
        # One signature across builds, call paths, lines and fault addresses.
        assert g["versions"] == sorted(g["versions"], key=lambda v: tuple(map(int, v.split("."))))
        assert len(g["versions"]) == len(BUILDS)
        assert g["first_seen"] <= g["last_seen"]
        assert g["example"] in g["cores"] and g["stack"]
        assert not any("0x" in part for part in g["signature"].split(" | ")[1:])
    by_bug = {truth[g["cores"][0]]: g for g in doc["groups"]}
    assert by_bug["cext"]["signature"] == "SIGSEGV | read_field | triage_target:load_blob"
    assert by_bug["abort"]["signature"] == "SIGABRT | triage_target:check_invariant"
    assert by_bug["overflow"]["signature"] == \
        "SIGSEGV (stack overflow) | triage_target:walk_tree"
    assert by_bug["ctypes"]["signature"] == \
        "SIGSEGV | string_at | ctypes:string_at | triage_target:peek_header"
    # The lines stay in the details: the example's stack names file and line.
    assert any("triage_target.py:" in line for line in by_bug["cext"]["stack"])
    # The bad files are failed, each with its reason; the counts add up.
    failed = {f["core"]: f["error"] for f in doc["failed"]}
    assert set(failed) == fleet["bad"]
    reasons = " ".join(failed.values())
    assert "empty" in reasons and "truncated" in reasons and "not a CPython" in reasons
    assert sum(g["count"] for g in doc["groups"]) + len(doc["failed"]) + doc["captures"] \
        == doc["cores"]
    assert doc["captures"] == 0


def test_second_run_reads_only_new_cores(fleet, nsdebug, tmp_path):
    cache = str(tmp_path / "cache")
    first = triage(nsdebug, fleet["dir"], "--cache", cache)
    assert first["cached"] == 0 and first["analyzed"] == first["cores"]
    # A new core arrives (a copy is another file: its own inode and key).
    new = os.path.join(fleet["dir"], "late", "core.late")
    os.makedirs(os.path.dirname(new), exist_ok=True)
    shutil.copy(sorted(fleet["truth"])[0], new)
    try:
        second = triage(nsdebug, fleet["dir"], "--cache", cache)
    finally:
        shutil.rmtree(os.path.dirname(new))
    assert second["analyzed"] == 1 and second["cached"] == first["cores"]
    assert second["cores"] == first["cores"] + 1
    assert sum(g["count"] for g in second["groups"]) == \
        sum(g["count"] for g in first["groups"]) + 1
    # From the cache, the same answer as read afresh.
    third = triage(nsdebug, fleet["dir"], "--cache", cache)
    assert third["analyzed"] == 0 and third["groups"] == first["groups"]


def test_rules_file_extends_the_skip_list(fleet, nsdebug, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"skip": ["^read_field$"]}))
    doc = triage(nsdebug, fleet["dir"], "--no-cache", "--rules", str(rules), "--no-heap")
    sigs = [g["signature"] for g in doc["groups"]]
    assert "SIGSEGV | boom | triage_target:load_blob" in sigs
    rules.write_text("{\"skip\": [\"(\"]}")
    r = nsdebug("triage", fleet["dir"], "--rules", str(rules))
    assert r.returncode != 0 and "bad rules" in r.stderr and "Traceback" not in r.stderr


def test_timeout_fails_the_core_not_the_run(fleet, nsdebug):
    core = sorted(fleet["truth"])[0]
    doc = triage(nsdebug, core, "--no-cache", "--timeout", "0.05")
    assert doc["groups"] == [] and len(doc["failed"]) == 1
    assert doc["failed"][0]["kind"] == "timeout" and "--timeout" in doc["failed"][0]["error"]


@pytest.fixture(scope="module")
def leaky(tmp_path_factory):
    """Three instances of fixtures/leak_target.py (one command line), each captured by
    arthur three times at increasing uptimes, with a spool-like record beside each."""
    build = targets.default_build()
    root = str(tmp_path_factory.mktemp("leaky"))
    out = os.path.join(root, "captures")
    os.makedirs(out)
    procs = []
    try:
        for i in range(3):
            d = os.path.join(root, f"instance{i}")
            os.makedirs(d)
            procs.append(subprocess.Popen(
                [build.exe, os.path.join(targets.FIXTURES, "leak_target.py"), "truth.json"],
                cwd=d, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for step, n in enumerate((700, 300, 300)):
            for i, p in enumerate(procs):
                p.stdin.write(f"serve {n + 40 * i}\n")
                p.stdin.flush()
                assert p.stdout.readline().strip() == "ready"
                targets.arthur(p.pid, os.path.join(out, f"i{i}-{step}.lz4"))
            time.sleep(0.3)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    return out


def test_growth_names_the_leak_and_its_holder(leaky, nsdebug):
    doc = triage(nsdebug, leaky, "--no-cache", "--heap")
    assert doc["groups"] == [] and doc["captures"] == 9 and doc["failed"] == []
    top = doc["growth"][0]
    assert top["type"] == "__main__.AuditRecord", [g["text"] for g in doc["growth"][:5]]
    assert top["growing_in"] == 3 and top["compared"] == 3 and top["instances"] == 3
    # Each instance serves 300 + 40 * i requests between captures: 340 on average.
    assert top["count_per_capture"] == pytest.approx(340, abs=3)
    assert top["path"] == "sys.modules['__main__'].BUS.listeners" and top["path_in"] == 3
    assert top["rho_uptime"] == pytest.approx(1.0)
    # The bounded LRU churns but stays at 500 entries: not growth.
    assert not any(g["type"].endswith("CacheEntry") for g in doc["growth"])


@pytest.fixture(scope="module")
def big_heap(tmp_path_factory):
    """An arthur capture of a million-object heap: its walk needs more than LIMIT, even
    spilled (about 130 MiB of data segment; one of 300k objects came within a few MiB
    of it once the walk's threads took small stacks, and was analysed in one run of two)."""
    build = targets.default_build()
    d = str(tmp_path_factory.mktemp("bigheap"))
    proc, _ = targets.start_target(build.exe, "app_target.py", d, "1000000")
    try:
        return targets.arthur(proc.pid, os.path.join(d, "big.lz4"))
    finally:
        targets.stop(proc)


def test_dask_local_cluster_gives_the_local_answer(fleet, leaky, big_heap, nsdebug, tmp_path):
    distributed = pytest.importorskip("distributed")
    big = os.path.join(fleet["root"], "big", "app.lz4")
    os.makedirs(os.path.dirname(big), exist_ok=True)
    shutil.copy(big_heap, big)
    paths = [fleet["dir"], leaky, os.path.dirname(big)]
    # (--timeout under the call's own: an analysis that hangs is named as that core's.)
    local = triage(nsdebug, *paths, "--no-cache", "--heap", "--memory-limit", LIMIT,
                   "--timeout", "240", "--jobs", "2")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            pids = client.run(os.getpid)        # real worker processes, not threads
        assert len(pids) == 2 and os.getpid() not in pids.values()
        remote = triage(nsdebug, *paths, "--no-cache", "--heap", "--memory-limit", LIMIT,
                        "--timeout", "240", "--dask", cluster.scheduler_address)
    failed = {f["core"]: f for f in remote["failed"]}
    assert remote == local, _differences(local, remote)
    assert failed[big]["kind"] == "memory" and "--memory-limit" in failed[big]["error"]
    assert set(failed) == fleet["bad"] | {big}
    assert len(remote["groups"]) == len(BUGS)
    assert remote["growth"][0]["type"] == "__main__.AuditRecord"


def test_an_analysis_runs_the_nsdebug_that_started_it(fleet, tmp_path):
    """`nsdebug triage` run from a directory that holds another `nsdebug` package (a
    source checkout: CI's working directory) analyses with its own nsdebug, where
    `python -m` would import the one there first (nsdebug/selfcmd.py). The decoy here
    ends any process that imports it."""
    decoy = tmp_path / "nsdebug" / "fleet"
    decoy.mkdir(parents=True)
    (decoy.parent / "__init__.py").write_text('raise SystemExit("the decoy was imported")\n')
    (decoy / "__init__.py").write_text("")
    core = sorted(fleet["truth"])[0]
    r = subprocess.run(targets.nsdebug_cmd() + ["triage", core, "--no-cache", "--json"],
                       capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
                       env=targets.nsdebug_env())
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["cores"] == 1 and doc["failed"] == [] and len(doc["groups"]) == 1, doc


def _differences(local, remote):
    """Where two triage documents differ, field by field down to a group's, each side's
    value short enough for an assertion's message."""
    out = []
    for key in sorted(set(local) | set(remote)):
        a, b = local.get(key), remote.get(key)
        if a == b:
            continue
        if key == "groups" and len(a) == len(b):
            for ga, gb in zip(a, b):
                out += [(ga["signature"], k, str(ga.get(k))[:300], str(gb.get(k))[:300])
                        for k in sorted(set(ga) | set(gb)) if ga.get(k) != gb.get(k)]
        else:
            out.append((key, str(a)[:600], str(b)[:600]))
    return out


def test_bad_arguments_one_line(nsdebug, tmp_path):
    (tmp_path / "core.1").write_bytes(b"")      # one core to send to the cluster
    for args, words in ((["/no/such/dir"], "no such file"), ([str(tmp_path), "--jobs", "0"],
                        "--jobs"), ([str(tmp_path), "--memory-limit", "lots"], "not a size"),
                        ([str(tmp_path), "--dask", "tcp://127.0.0.1:9"], "Dask")):
        r = nsdebug("triage", *args, timeout=120)
        assert r.returncode != 0 and words in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_html_fleet_page(fleet, nsdebug, tmp_path):
    """The page is one file that fetches nothing, with every group and failed core in its
    data (tests/report draws it in a real browser)."""
    import re
    from html.parser import HTMLParser
    out = tmp_path / "fleet.html"
    r = nsdebug("triage", fleet["dir"], "--no-cache", "--html", str(out))
    assert r.returncode == 0, r.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    text = out.read_text()

    class Fetches(HTMLParser):
        found = []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if a.get("src") or a.get("href", "#").split("#")[0] or tag in ("link", "img"):
                self.found.append((tag, a))

    p = Fetches()
    p.feed(text)
    assert p.found == []                       # self-contained: nothing to fetch
    data = json.loads(re.search(r'id="nsdebug-data">(.*?)</script>', text, re.S).group(1)
                      .replace("<\\/", "</"))
    doc = triage(nsdebug, fleet["dir"], "--no-cache")
    assert [g["signature"] for g in data["groups"]] == [g["signature"] for g in doc["groups"]]
    assert {f["core"] for f in data["failed"]} == {f["core"] for f in doc["failed"]}
    again = nsdebug("triage", fleet["dir"], "--no-cache", "--html", str(out))
    assert again.returncode != 0 and "exists" in again.stderr
