"""Loading what a command runs: a flow and its deployment into a `Project`, with every problem
shown before the command stops. Used by `flowlang.cli` and the command modules alike."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from flowlang.commands.exits import ExitCode, Stop
from flowlang.commands.options import color_enabled
from flowlang.diagnostics import Diagnostic, SourceFile, render_all, to_json

if TYPE_CHECKING:
    from flowlang.project import Project


def emit_diagnostics(
    diagnostics: list[Diagnostic],
    sources: Mapping[str, Any],
    fmt: str,
    *,
    warnings_fail: bool = False,
) -> None:
    """Print diagnostics as text (the quoted source lines, coloured on a terminal), JSON, SARIF,
    JUnit XML (a test case per file read) or GitHub annotations."""
    from flowlang.commands import formats

    if fmt == "json":
        click.echo(to_json(diagnostics))
    elif fmt == "sarif":
        click.echo(formats.diagnostics_sarif(diagnostics))
    elif fmt == "github":
        if diagnostics:
            click.echo(formats.diagnostics_github(diagnostics))
    elif fmt == "junit":
        files = list(dict.fromkeys([*sources, *(d.span.file for d in diagnostics)]))
        known: dict[str, SourceFile] = dict(sources)
        rendered = {
            file: render_all([d for d in diagnostics if d.span.file == file], known)
            for file in files
        }
        click.echo(
            formats.diagnostics_junit(files, diagnostics, rendered, warnings_fail=warnings_fail)
        )
    elif diagnostics:
        color = color_enabled()
        click.echo(render_all(diagnostics, dict(sources), color=color), color=color)


def load_program(flow: Path, deployment: Path | None, environment: str | None = None) -> Project:
    """The project of one flow, with `environment`'s parameter values when one is named; a flow
    with errors shows them and stops the command with `ExitCode.FINDINGS`."""
    from flowlang.commands.deployment import resolve
    from flowlang.project import load_project

    deployment = resolve(deployment, [flow])
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
