"""Which files under the given paths are cores, and the spool records that describe
them (arthur's crash handler and watch write one JSON record beside each capture)."""

from __future__ import annotations

import json
import os
import re
from collections import namedtuple

from arthur.coreformat import ELF_MAGIC, ET_CORE, FRAME_MAGIC

from ..errors import NsdebugError

Candidate = namedtuple("Candidate", "path record")   # record: the spool's, or None

CORE_NAME = re.compile(r"^core(\.[^/]*)?$|\.core$|\.lz4$")
SIDECARS = (".nsdebug-index", ".json", ".tmp", ".part")


def _looks_like_core(path, name):
    if name.endswith(SIDECARS):
        return False
    if CORE_NAME.search(name):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(18)
    except OSError:
        return False
    if head.startswith(FRAME_MAGIC):
        return True
    # An ELF file of type ET_CORE (e_type, little-endian, at offset 16).
    return head.startswith(ELF_MAGIC) and len(head) >= 18 and \
        int.from_bytes(head[16:18], "little") == ET_CORE


def _record(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("tool") == "arthur" and "pid" in data:
        return data
    return None


def find_cores(paths):
    """([Candidate] in a stable order, [spool records whose core was dropped]). A path
    is a core (any file named is one) or a directory searched recursively."""
    files, records = [], {}
    for top in paths:
        if os.path.isdir(top):
            for d, subdirs, names in os.walk(top):
                subdirs.sort()
                for name in sorted(names):
                    full = os.path.join(d, name)
                    if name.endswith(".json"):
                        rec = _record(full)
                        if rec is not None:
                            records[full] = rec
                    elif os.path.isfile(full) and _looks_like_core(full, name):
                        files.append(os.path.abspath(full))
        elif os.path.exists(top):
            files.append(os.path.abspath(top))
        else:
            raise NsdebugError(f"no such file or directory: {top}")
    by_core, dropped = {}, []
    for where, rec in records.items():
        if rec.get("core"):
            by_core[os.path.abspath(os.path.join(os.path.dirname(where), rec["core"]))] = rec
        else:
            dropped.append(rec)
    seen, out = set(), []
    for f in files:
        if f not in seen:
            seen.add(f)
            out.append(Candidate(f, by_core.get(f)))
    return out, dropped
