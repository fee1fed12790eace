"""Writing patched copies of real cores."""

import shutil

from nsdebug.corefile import open_core


def patch_core(src, dst, patches):
    """Copy a core and overwrite process memory at {address: bytes} in the copy."""
    shutil.copyfile(src, dst)
    p = open_core(src)
    with open(dst, "r+b") as f:
        for addr, data in patches.items():
            seg = p.memory.find_segment(addr)
            assert seg is not None and addr - seg.start + len(data) <= seg.filesz
            f.seek(seg.offset + addr - seg.start)
            f.write(data)
