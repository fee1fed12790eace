"""Progress for long walks: a rich bar on a terminal, nothing on a pipe."""

from __future__ import annotations

import contextlib
import sys


@contextlib.contextmanager
def progress_reporter(description, unit, total=False):
    """Yields report(count) (report(count, total) with `total`) or None; draws on stderr
    only when it is a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"),
                  TextColumn("{task.completed:,} " + unit), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)
        if total:
            yield lambda done, of: bar.update(task, completed=done, total=of)
        else:
            yield lambda done: bar.update(task, completed=done)
