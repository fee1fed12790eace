"""A spool: the directory where unattended captures (crashes, watch) land, and its rules.

Each capture is a pair of files sharing a stem, `core.<exe>.<pid>.<time>`: the capture
(`.lz4`, or `.core` when only the plain core could be written) and its JSON record
(`.json`, kept also when the core was dropped, saying why). The rules (how many
captures, how many bytes, the free space never to eat into, the rate per executable)
are the crash handler's (crashhandler.py keeps them with its installation).

Files are created 0600 by root through safefile (never through a symlink) and then
made readable to the captured process's owner alone with a POSIX ACL entry, as
systemd-coredump does; a setuid process's core (suid_dumpable = 2) stays root's.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
import struct
import time
from collections import namedtuple
from contextlib import contextmanager

from .errors import ArthurError
from .safefile import OutputError, PrivateOutput

LOCK = ".arthur-spool.lock"
CAPTURE_SUFFIXES = (".lz4", ".core")
RECORDS_PER_CAPTURE = 4          # records of dropped cores kept: this many per capture
# One capture's files in the spool: its stem, its record ({} if none), the capture's
# file name (None when the core was dropped) and its bytes.
Entry = namedtuple("Entry", "stem record capture size")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text):
    """'512M', '2G', '1.5G', '4096' -> bytes (powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.I)
    if not m:
        raise ArthurError(f"not a size: {text!r} (write 512M, 2G, ...)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def parse_duration(text):
    """'30s', '5m', '1h', '90' (seconds) -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", str(text))
    if not m:
        raise ArthurError(f"not a duration: {text!r} (write 30s, 5m, 1h, ...)")
    scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return float(m.group(1)) * scale


def safe_name(text, limit=40):
    """A file-name part from an executable's name: no slash, no dot-file, printable."""
    out = re.sub(r"[^A-Za-z0-9_.+-]", "_", text)[:limit].lstrip(".")
    return out or "unknown"


class Spool:
    """The spool directory: its rules, its files, and writing into it."""

    def __init__(self, path, create=False):
        self.path = os.path.abspath(path)
        if create and not os.path.lexists(self.path):
            # Searchable by all, so that a process's owner can open the capture the ACL
            # lets them read; nothing in it is readable by others.
            os.makedirs(self.path, mode=0o755)
            os.chmod(self.path, 0o755)
        try:
            st = os.lstat(self.path)
        except OSError as e:
            raise ArthurError(f"spool {path}: {e.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise ArthurError(f"spool {path} is not a directory (a symlink is refused)")
        if st.st_mode & 0o022 or (os.geteuid() == 0 and st.st_uid != 0):
            raise ArthurError(f"spool {path} is writable by others or not owned by root: "
                              f"captures hold process memory")

    @contextmanager
    def locked(self):
        """The spool to this process alone (ten handlers of ten crashes prune in turn)."""
        fd = os.open(os.path.join(self.path, LOCK),
                     os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- what it holds -------------------------------------------------------------------
    def entries(self):
        """[Entry], the oldest first (by the record's time, else the file's)."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return []
        stems = {}
        for name in names:
            if not name.startswith("core."):
                continue
            for suffix in (".json", *CAPTURE_SUFFIXES):
                if name.endswith(suffix):
                    stems.setdefault(name[:-len(suffix)], {})[suffix] = name
        out = []
        for stem, files in stems.items():
            record, when, cap, size = {}, None, None, 0
            if ".json" in files:
                try:
                    with open(os.path.join(self.path, files[".json"])) as f:
                        record = json.load(f)
                    when = float(record.get("time") or 0) or None
                except (OSError, ValueError):
                    record = {}
            for suffix in CAPTURE_SUFFIXES:
                if suffix in files:
                    cap = files[suffix]
                    try:
                        st = os.lstat(os.path.join(self.path, cap))
                        size = st.st_size
                        when = when or st.st_mtime
                    except OSError:
                        cap = None
            out.append((stem, record, cap, size, when or 0))
        out.sort(key=lambda e: (e[4], e[0]))
        return [Entry(*e[:4]) for e in out]

    def free_bytes(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def prune(self, keep=None, max_total=None, pid=None, protect=()):
        """Drop the oldest captures past `keep` (of process `pid` only, if given) or
        `max_total` bytes, with their records; records of dropped cores past
        RECORDS_PER_CAPTURE x keep. Returns the stems whose capture was removed."""
        entries = self.entries()
        if pid is not None:
            entries = [e for e in entries if e.record.get("pid") == pid]
        caps = [e for e in entries if e.capture]
        removed = []
        total = sum(e.size for e in caps)
        for stem, _rec, cap, size in caps:
            over_count = keep is not None and len(caps) - len(removed) > keep
            over_size = max_total is not None and total > max_total
            if not (over_count or over_size) or stem in protect:
                continue
            self._remove(stem, cap)
            removed.append(stem)
            total -= size
        bare = [e for e in entries if not e.capture and e.stem not in protect]
        if keep is not None and len(bare) > RECORDS_PER_CAPTURE * max(keep, 1):
            for stem, *_ in bare[:len(bare) - RECORDS_PER_CAPTURE * max(keep, 1)]:
                self._remove(stem, None)
        return removed

    def _remove(self, stem, cap):
        # With the capture goes the heap index nsdebug wrote beside it.
        for name in ([cap, cap + ".nsdebug-index"] if cap else []) + [stem + ".json"]:
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass

    def recent(self, executable, seconds, now=None):
        """How many cores of `executable` the last `seconds` kept or are keeping (the rate
        limit: the records of dropped ones do not count)."""
        now = now or time.time()
        return sum(1 for _s, rec, _c, _n in self.entries()
                   if rec.get("executable") == executable and not rec.get("dropped") and
                   now - float(rec.get("time") or 0) < seconds)

    # -- writing -------------------------------------------------------------------------
    def stem(self, executable, pid, when):
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(when))
        base = f"core.{safe_name(os.path.basename(executable or 'unknown'))}.{pid}.{stamp}"
        stem, n = base, 1
        while any(os.path.lexists(os.path.join(self.path, stem + s))
                  for s in (".json", *CAPTURE_SUFFIXES)):
            n += 1
            stem = f"{base}.{n}"
        return stem

    def output(self, name):
        """A PrivateOutput for a new file of the spool (0600, never through a link)."""
        try:
            return PrivateOutput(os.path.join(self.path, name))
        except OutputError as e:
            raise ArthurError(e.strerror) from None

    def write_record(self, stem, record, owner=None):
        path = os.path.join(self.path, stem + ".json")
        with PrivateOutput(path, force=True, binary=False) as f:
            json.dump(record, f, indent=1, sort_keys=True)
            f.write("\n")
        if owner is not None:
            share_with(path, owner)
        return path


# POSIX ACL in its extended-attribute form (linux/posix_acl_xattr.h): a version, then
# (tag, permissions, id) entries in tag order.
_ACL_VERSION = 2
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_MASK, _ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_ACL_UNDEFINED_ID = 0xFFFFFFFF


def share_with(path, uid):
    """Let user `uid` (and root) read `path`, nobody else: an ACL entry on a 0600 root
    file. Returns False where the file system keeps no ACLs (the file stays root's)."""
    if uid == 0:
        return True
    entries = [(_ACL_USER_OBJ, 6, _ACL_UNDEFINED_ID), (_ACL_USER, 4, uid),
               (_ACL_GROUP_OBJ, 0, _ACL_UNDEFINED_ID), (_ACL_MASK, 4, _ACL_UNDEFINED_ID),
               (_ACL_OTHER, 0, _ACL_UNDEFINED_ID)]
    blob = struct.pack("<I", _ACL_VERSION) + b"".join(
        struct.pack("<HHI", *e) for e in entries)
    try:
        os.setxattr(path, "system.posix_acl_access", blob, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
            return False
        raise
    return True
