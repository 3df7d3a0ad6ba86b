"""The deployment file of a command: the one `-d` names, else the one found beside the flows or
in the working directory (`resolve`); its diagnostics, or the model (`load_or_exit`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from flowlang.commands.exits import ExitCode, Stop
from flowlang.config import load_deployment
from flowlang.config.models import Deployment
from flowlang.diagnostics import SourceFile, render_all


def resolve(given: Path | None, beside: Iterable[Path] = ()) -> Path | None:
    """`given` (the `-d` option) when there is one; else `deployment.yaml` (or `.yml`) beside
    `beside` (a file's folder, or a folder), else in the working directory, named on stderr;
    None when there is none."""
    if given is not None:
        return given
    from flowlang.workspace import find_deployment

    found = find_deployment(beside)
    if found is not None:
        click.echo(f"using the deployment file {found}", err=True)
    return found


def require(given: Path | None, beside: Iterable[Path], needed_for: str) -> Path:
    """`resolve`'s file for a command that cannot go on without one (`needed_for` says which);
    none is a usage error (exit 2) saying where it was looked for."""
    places = list(beside)
    found = resolve(given, places)
    if found is not None:
        return found
    where = [str(p if p.is_dir() else p.parent) for p in places[:1]]
    looked = " or ".join(f"{place}/" for place in dict.fromkeys([*where, "."]))
    raise click.UsageError(
        f"{needed_for} needs a deployment file: give -d FILE "
        f"(no deployment.yaml or deployment.yml in {looked})"
    )


def load_or_exit(path: Path) -> Deployment:
    """The checked deployment; on errors, print every diagnostic and stop with exit code 1."""
    loaded, problems = load_deployment(path)
    if loaded is None:
        source = SourceFile(str(path), path.read_text("utf-8", errors="replace"))
        click.echo(render_all(problems, {str(path): source}))
        raise Stop(ExitCode.FINDINGS)
    return loaded
