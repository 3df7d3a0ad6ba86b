"""The deployment file for commands that only need it read: its diagnostics, or the model."""

from __future__ import annotations

from pathlib import Path

import click

from flowlang.commands.exits import ExitCode, Stop
from flowlang.config import load_deployment
from flowlang.config.models import Deployment
from flowlang.diagnostics import SourceFile, render_all


def load_or_exit(path: Path) -> Deployment:
    """The checked deployment; on errors, print every diagnostic and stop with exit code 1."""
    loaded, problems = load_deployment(path)
    if loaded is None:
        source = SourceFile(str(path), path.read_text("utf-8", errors="replace"))
        click.echo(render_all(problems, {str(path): source}))
        raise Stop(ExitCode.FINDINGS)
    return loaded
