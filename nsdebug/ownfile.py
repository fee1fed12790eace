"""Opening a file nsdebug wrote for itself (the heap index, the DWARF and place caches)
only when it is still ours: not a symlink, a regular file, owned by this user, and
writable by nobody else. The checks are made on the opened descriptor (fstat), and the
caller reads through that descriptor: a file swapped between a check and its use is
never read. A heap index sits beside the core, often in a directory others can write
to (/tmp, a shared crash directory); its arrays reach compiled code, and the caches are
marshal and raw bytes. A file that fails is ignored (and rebuilt), never an error."""

from __future__ import annotations

import errno
import os
import stat


class NotOurs(OSError):
    """The file is not one this user wrote for itself."""


def open_own(path):
    """A binary file object of `path`, opened without following a symlink, after its
    descriptor shows a regular file owned by us and not writable by group or others;
    raises NotOurs (or OSError) otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotOurs(f"{path} is a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotOurs(f"{path} is not a regular file")
        if st.st_uid != os.geteuid():
            raise NotOurs(f"{path} is owned by uid {st.st_uid}, not by this user")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise NotOurs(f"{path} is writable by others (mode {st.st_mode & 0o777:o})")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
