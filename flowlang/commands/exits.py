"""The command line's exit codes, and how a command stops early with one.

A command returns its `ExitCode` (None is `OK`), or raises `Stop` from wherever it found that it
cannot go on, once it has said why; `flowlang.cli.main` turns either into the process's exit
status. Click's own usage errors (a bad option, a missing file) exit with `USAGE` as always.
"""

from __future__ import annotations

from enum import IntEnum

from flowlang.errors import FlowError


class ExitCode(IntEnum):
    """What a `flowlang` command's exit status means, the same for every command."""

    OK = 0
    """It did what was asked; warnings may have been shown."""
    FINDINGS = 1
    """The input has errors, tests failed, or a message was blocked or not delivered."""
    USAGE = 2
    """The command was called wrongly: bad arguments, or files that are missing or unreadable."""


class Stop(FlowError):
    """A command cannot go on; it has shown the reason, and the CLI exits with `code`."""

    def __init__(self, code: ExitCode) -> None:
        super().__init__(code.name)
        self.code = code
