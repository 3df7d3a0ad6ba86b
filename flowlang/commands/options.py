"""Options shared by the commands: each is defined here once and reused, so `-d` means the
deployment file everywhere."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

CI_FORMAT_OPTION = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "sarif", "junit", "github"]),
    default="text",
    show_default=True,
    help="text for people; json for editors; sarif (code scanning), junit (test reports) "
    "or github (workflow annotations) for CI",
)

COLOR_CHOICES = ("auto", "always", "never")


def wants_color(choice: str, stream: IO[str] | None = None) -> bool:
    """Whether to colour output: `always`, `never`, or with `auto` when the stream is a terminal,
    NO_COLOR is unset or empty and TERM is not `dumb`."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    target = stream if stream is not None else sys.stdout
    try:
        return target.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


def color_enabled() -> bool:
    """The `--color` choice of the running command line, decided for its standard output."""
    ctx = click.get_current_context(silent=True)
    choice = "auto"
    if ctx is not None:
        choice = str(ctx.find_root().meta.get("flowlang.color", "auto"))
    return wants_color(choice, sys.stdout)


FORMAT_OPTION = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for editors and CI",
)


def deployment_option(
    help: str = (
        "the deployment file (queues, skills, templates, ...; default: deployment.yaml beside "
        "the flow, else in the working directory)"
    ),
    *,
    required: bool = False,
) -> Callable[[F], F]:
    """`-d/--deployment FILE`: an existing file, passed to the command as `deployment` (None
    when not given: the command finds one with `commands.deployment.resolve` or `require`)."""
    return click.option(
        "-d",
        "--deployment",
        "deployment",
        required=required,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help=help,
    )
