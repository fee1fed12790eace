"""Files that hold process memory (cores, snapshots, reports): private, never half
written, never written through someone else's symlink.

The data goes to an unnamed file (O_TMPFILE) in the output's directory, mode 0600, and
gets its name only when complete (linkat, or a rename over an old output with --force);
a killed writer leaves nothing behind. Where the file system has no O_TMPFILE, a fresh
hidden name is created with O_EXCL | O_NOFOLLOW (which never follows a symlink planted
there) and renamed into place; one a killed run left behind is removed by the next.
rename() replaces a symlink at the output's name, never what it points to. Shared by
arthur and nsdebug (both write such files).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat

MODE = 0o600


class OutputError(OSError):
    """An output that cannot be created or put in place; str() is one line."""


class PrivateOutput:
    """`with PrivateOutput(path, force) as f: f.write(...)`: the file appears at `path`
    only when the block ends without an exception."""

    def __init__(self, path, force=False, binary=True, buffering=1 << 20, durable=True):
        name = self._target(path, force, durable)
        fd = self._open_unnamed()
        if fd is None:
            fd = self._open_named(name)
        mode = "wb" if binary else "w"
        kw = {} if binary else {"encoding": "utf-8"}
        self.f = os.fdopen(fd, mode, buffering=buffering, **kw)

    @classmethod
    def adopt(cls, path, fd, force=False, durable=True):
        """The output at `path` made of a file already written: `fd`, an unnamed file
        (O_TMPFILE, mode 0600) in path's directory, which commit() names and which the
        output owns from now on (closed by commit or discard)."""
        self = cls.__new__(cls)
        try:
            self._target(path, force, durable)
        except BaseException:
            os.close(fd)
            raise
        self.f = os.fdopen(fd, "wb", buffering=0)
        return self

    def _target(self, path, force, durable):
        """Check the output's name and set what every output holds; returns its base name."""
        self.durable = durable          # False: a cache, checked when read; no fsync
        self.path = os.path.abspath(path)
        self.shown = path
        if os.path.lexists(self.path) and not force:
            raise OutputError(errno.EEXIST, f"{path} exists (use --force to overwrite)")
        if os.path.isdir(self.path):
            raise OutputError(errno.EISDIR, f"{path} is a directory")
        self.dir, name = os.path.split(self.path)
        self.tmp = None
        return name

    def _open_unnamed(self):
        try:
            return unnamed_file(self.dir)
        except OSError as e:
            raise OutputError(e.errno, f"cannot write {self.shown}: {e.strerror}") from None

    def _open_named(self, name):
        _remove_stale(self.dir, name)
        self.tmp = os.path.join(self.dir, f".{name}.{os.getpid()}-{secrets.token_hex(4)}"
                                          f".partial")
        try:
            return os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                           MODE)
        except OSError as e:
            self.tmp = None
            raise OutputError(e.errno, f"cannot write {self.shown}: {e.strerror}") from None

    def write(self, data):
        return self.f.write(data)

    def fileno(self):
        return self.f.fileno()

    def seek(self, offset):
        """Go to `offset` (a file written out of order, as the heap index)."""
        return self.f.seek(offset)

    def commit(self):
        """Give the finished file its name."""
        self.f.flush()
        if self.durable:
            os.fsync(self.f.fileno())
        try:
            if self.tmp is None:
                self._link_unnamed()
            else:
                os.rename(self.tmp, self.path)
                self.tmp = None
        except OSError as e:
            raise OutputError(e.errno, f"cannot write {self.shown}: {e.strerror}") from None
        finally:
            self.f.close()

    def _link_unnamed(self):
        # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N names an O_TMPFILE file (os.link
        # calls linkat, not link, only when given a directory fd).
        src = f"/proc/self/fd/{self.f.fileno()}"
        name = os.path.basename(self.path)
        dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            try:
                os.link(src, name, dst_dir_fd=dfd, follow_symlinks=True)
                return
            except FileExistsError:
                pass
            # --force over an existing output: a fresh name, then rename over it.
            tmp = f".{name}.{secrets.token_hex(4)}.new"
            os.link(src, tmp, dst_dir_fd=dfd, follow_symlinks=True)
            try:
                os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except OSError:
                os.unlink(tmp, dir_fd=dfd)
                raise
        finally:
            os.close(dfd)

    def discard(self):
        try:
            self.f.close()
        except OSError:
            pass
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass
            self.tmp = None

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.commit()
        else:
            self.discard()
        return False


def unnamed_file(directory, access=os.O_WRONLY):
    """A new file with no name in `directory` (O_TMPFILE, mode 0600), which linkat can
    name later; None where the file system makes none. Raises OSError otherwise."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return None
    try:
        return os.open(directory, flag | access, MODE)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return None
        raise


def _remove_stale(directory, name):
    """Temporary files of this output left by a writer that was killed (its pid gone)."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.(\d+)-[0-9a-f]{{8}}\.partial$")
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        m = pattern.match(entry)
        if not m or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        path = os.path.join(directory, entry)
        try:
            st = os.lstat(path)
            if st.st_uid == os.getuid() and stat.S_ISREG(st.st_mode):
                os.unlink(path)
        except OSError:
            pass
