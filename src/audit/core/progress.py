"""Progress reporting with rich (counts and ETA); silent when no progress is attached."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def track(progress: Any, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(k)``; shows a rich task when ``progress`` is a ``rich.progress.Progress``."""
    if progress is None:
        yield lambda k=1: None
        return
    task = progress.add_task(description, total=total)
    try:
        yield lambda k=1: progress.advance(task, k)
    finally:
        progress.update(task, completed=total)


def make_progress(console: Any = None) -> Any:
    """A rich Progress showing description, bar, count and time remaining."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console, transient=True,
    )
