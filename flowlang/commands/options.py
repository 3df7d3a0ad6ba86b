"""Options shared by the commands: each is defined here once and reused, so `-d` means the
deployment file everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

FORMAT_OPTION = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for editors and CI",
)


def deployment_option(
    help: str = "the deployment file (queues, skills, templates, ...)",
    *,
    required: bool = False,
) -> Callable[[F], F]:
    """`-d/--deployment FILE`: an existing file, passed to the command as `deployment`."""
    return click.option(
        "-d",
        "--deployment",
        "deployment",
        required=required,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help=help,
    )
