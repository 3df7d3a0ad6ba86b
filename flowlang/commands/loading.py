"""Loading what a command runs: a flow and its deployment into a `Project`, with every problem
shown before the command stops. Used by `flowlang.cli` and the command modules alike."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from flowlang.commands.exits import ExitCode, Stop
from flowlang.diagnostics import Diagnostic, render_all, to_json

if TYPE_CHECKING:
    from flowlang.project import Project


def emit_diagnostics(diagnostics: list[Diagnostic], sources: Mapping[str, Any], fmt: str) -> None:
    """Print diagnostics as text (with the quoted source lines) or as JSON."""
    if fmt == "json":
        click.echo(to_json(diagnostics))
    elif diagnostics:
        click.echo(render_all(diagnostics, dict(sources)), err=False)


def load_program(flow: Path, deployment: Path | None, environment: str | None = None) -> Project:
    """The project of one flow, with `environment`'s parameter values when one is named; a flow
    with errors shows them and stops the command with `ExitCode.FINDINGS`."""
    from flowlang.project import load_project

    project, ws = load_project(flow, deployment)
    if project is None:
        emit_diagnostics(ws.diagnostics, ws.sources, "text")
        click.echo(f"\n{flow}: cannot run a flow with errors ({len(ws.errors)} error(s))", err=True)
        raise Stop(ExitCode.FINDINGS)
    if environment is not None:
        known = sorted(project.deployment.environments) if project.deployment else []
        if project.deployment is None or environment not in known:
            raise click.BadParameter(
                f"{environment!r} is not an environment of the deployment file "
                f"(environments: {', '.join(known) or 'none'})",
                param_hint="--environment",
            )
        project.environment = environment
        project.params = dict(project.deployment.environments[environment])
    return project
