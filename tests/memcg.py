"""Run a program in a memory cgroup of its own, made under the test's (v1 or v2), and read
its peak: how tests put nsdebug under a container's memory limit. Root only; the cgroup
is removed on every path."""

import contextlib
import os
import subprocess

from arthur.cgroups import controller_dir


def _own():
    """(directory of this process's memory cgroup, v1?) or None."""
    where = controller_dir(os.getpid(), "memory")
    return None if where is None else (where[2], where[0] == 1)


def why_unavailable():
    """Why a memory cgroup cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "not root"
    own = _own()
    if own is None:
        return "no memory cgroup controller"
    d, v1 = own
    if not os.access(d, os.W_OK):
        return f"{d} is not writable"
    if not v1:
        with open(os.path.join(d, "cgroup.subtree_control")) as f:
            if "memory" not in f.read().split():
                return f"the memory controller is not enabled below {d}"
    return None


class MemoryCgroup:
    """A child memory cgroup; run() starts programs in it."""

    def __init__(self, name):
        parent, self.v1 = _own()
        self.path = os.path.join(parent, name)
        os.mkdir(self.path)

    def _file(self, v1_name, v2_name):
        return os.path.join(self.path, v1_name if self.v1 else v2_name)

    def set_limit(self, nbytes):
        with open(self._file("memory.limit_in_bytes", "memory.max"), "w") as f:
            f.write(str(nbytes))
        # No swap either, where the machine has some (v1 accounts it only with swap
        # accounting on, as memsw).
        if self.v1 and os.path.exists(os.path.join(self.path, "memory.memsw.limit_in_bytes")):
            with open(os.path.join(self.path, "memory.memsw.limit_in_bytes"), "w") as f:
                f.write(str(nbytes))
        if not self.v1:
            with open(os.path.join(self.path, "memory.swap.max"), "w") as f:
                f.write("0")

    def peak(self):
        """The most memory charged to the cgroup so far (anonymous and page cache)."""
        with open(self._file("memory.max_usage_in_bytes", "memory.peak")) as f:
            return int(f.read())

    def reset_peak(self):
        with open(self._file("memory.max_usage_in_bytes", "memory.peak"), "w") as f:
            f.write("0")

    def _enter(self):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def run(self, cmd, **kw):
        return subprocess.run(cmd, preexec_fn=self._enter, **kw)

    def popen(self, cmd, **kw):
        return subprocess.Popen(cmd, preexec_fn=self._enter, **kw)

    def remove(self):
        # Its processes have ended; v1 may keep charges a moment: force them out first.
        if self.v1:
            with contextlib.suppress(OSError), \
                    open(os.path.join(self.path, "memory.force_empty"), "w") as f:
                f.write("0")
        os.rmdir(self.path)


@contextlib.contextmanager
def memory_cgroup(name):
    cg = MemoryCgroup(f"{name}-{os.getpid()}")
    try:
        yield cg
    finally:
        cg.remove()


@contextlib.contextmanager
def dirty_limit(nbytes):
    """The kernel's background dirty limit (vm.dirty_background_bytes) set to `nbytes`
    for the block, as on a machine whose page cache is already full of dirty pages;
    restored on every path (root only). Writing the bytes zeroes the ratio: whichever
    was set is written back."""
    base = "/proc/sys/vm/dirty_background_"
    with open(base + "bytes") as f:
        old_bytes = int(f.read())
    with open(base + "ratio") as f:
        old_ratio = int(f.read())
    try:
        with open(base + "bytes", "w") as f:
            f.write(str(nbytes))
        yield
    finally:
        if old_bytes:
            with open(base + "bytes", "w") as f:
                f.write(str(old_bytes))
        else:
            with open(base + "ratio", "w") as f:
                f.write(str(old_ratio))
