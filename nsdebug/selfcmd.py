"""Running a module of this very nsdebug in a new interpreter (a triage analysis, the
demo's service).

`python -m` puts its working directory first on sys.path: started from a source
checkout, or from any directory that holds an `nsdebug` folder, the child imports that
one, not the nsdebug that started it, and a checkout's has no compiled modules. CI ran
every triage analysis so (its working directory is the checkout), on numpy fallbacks and
without the end at the memory limit (freemem.exit_when_exhausted): 2 in 8 analyses of a
capture under 110 MiB then spun in 3.11's unwinding until the timeout. So the child is
started in the directory this nsdebug was imported from, which `-m` puts first instead.
"""

from __future__ import annotations

import os
import sys

# The directory that holds this nsdebug package (site-packages, or a checkout's root for
# an editable install).
HOME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def module_command(module, *args):
    """(argv, cwd) that run `python -m module args...` with this nsdebug: file arguments
    must be absolute (the child runs elsewhere)."""
    return [sys.executable, "-m", module, *map(str, args)], \
        (HOME if os.path.isdir(os.path.join(HOME, "nsdebug")) else None)
