"""A real browser for the tests: Node with puppeteer-core (tests/devtools, installed by
`npm ci` when missing) driving Debian's Chromium (installed with apt when missing and
this is root on Debian). What cannot be had is named, and the test skips with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

DEVTOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "devtools")
PACKAGES = ("heap-snapshot-toolkit", "puppeteer-core")


def node_modules():
    """tests/devtools/node_modules with every package of its package.json."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed (DevTools' loader, the browser tests)")
    if not all(os.path.isdir(os.path.join(DEVTOOLS, "node_modules", p)) for p in PACKAGES):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=DEVTOOLS,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    return os.path.join(DEVTOOLS, "node_modules")


def chromium():
    """The path of Chromium, installed with apt-get when missing (root on Debian)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("Chromium is not installed, and this is not root on Debian to "
                    "install it (apt-get install chromium)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], capture_output=True,
                       text=True, timeout=900, env=env)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600, env=env)
        r = subprocess.run(["apt-get", "install", "-y", "-q", "chromium"],
                           capture_output=True, text=True, timeout=900, env=env)
    found = shutil.which("chromium")
    if not found:
        pytest.skip(f"Chromium could not be installed: {r.stderr.strip()[-300:]}")
    return found


def browse(page, steps, dark=False, timeout=300, **extra):
    """Run browse.mjs over a page; its {"errors", "values", "paint"}."""
    plan = dict(page=str(page), chromium=chromium(), dark=dark, steps=steps, **extra)
    path = os.path.join(os.path.dirname(str(page)), f".plan-{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump(plan, f)
    try:
        r = subprocess.run(["node", "browse.mjs", path], cwd=DEVTOOLS, capture_output=True,
                           text=True, timeout=timeout)
    finally:
        os.unlink(path)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])
