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


def _installed(names, package):
    """The path of a browser, installed with apt-get when missing (root on Debian)."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{package} is not installed, and this is not root on Debian to "
                    f"install it (apt-get install {package})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-q", package], capture_output=True,
                       text=True, timeout=900, env=env)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600, env=env)
        r = subprocess.run(["apt-get", "install", "-y", "-q", package],
                           capture_output=True, text=True, timeout=900, env=env)
    found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if not found:
        pytest.skip(f"{package} could not be installed: {r.stderr.strip()[-300:]}")
    return found


def chromium():
    return _installed(("chromium", "chromium-browser"), "chromium")


def firefox():
    return _installed(("firefox-esr", "firefox"), "firefox-esr")


def browse(page, steps, dark=False, timeout=300, in_firefox=False, **extra):
    """Run browse.mjs over a page (in Chromium, or Firefox); its {"errors", "values",
    "paint"}."""
    plan = dict(page=str(page), dark=dark, steps=steps, **extra)
    if in_firefox:
        plan["firefox"] = firefox()
    else:
        plan["chromium"] = chromium()
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
