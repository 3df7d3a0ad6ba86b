"""A progress bar for long runs: on stderr when it is a terminal, silent in CI and pipes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

LONG_RUN = 200
"""With `--progress auto`, runs of fewer items than this show no bar (they end at once)."""


def in_ci() -> bool:
    """Whether this runs in CI: CI=true (or 1, yes), as CI services set it; CI=false is not."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def wants_progress(choice: str, total: int, stderr_is_tty: bool, ci: bool = False) -> bool:
    """`always`, `never`, or with `auto` a terminal on stderr, not in CI (some CI runners give
    jobs a terminal, and a log is no place for a bar), and at least `LONG_RUN` items."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    return stderr_is_tty and not ci and total >= LONG_RUN


@contextmanager
def progress_bar(choice: str, total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A function to call with the items done since the last call; it draws the bar on stderr
    when `wants_progress` says so, else does nothing."""
    stderr = sys.stderr
    if not wants_progress(choice, total, stderr.isatty(), in_ci()):
        yield lambda _done: None
        return
    with click.progressbar(length=total, label=label, file=stderr) as bar:

        def advance(done: int) -> None:
            bar.update(done)

        yield advance
