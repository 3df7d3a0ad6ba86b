"""`flowlang lsp`: the language server editors start (docs/editors.md)."""

from __future__ import annotations

import click


@click.command(name="lsp")
@click.option(
    "--stdio", is_flag=True, help="talk over stdin/stdout (the default and only transport)"
)
def lsp_command(stdio: bool) -> None:
    """Run the language server over stdio: diagnostics, completion, hover, definitions,
    symbols, formatting and quick fixes for .flow files (docs/editors.md).

    The deployment file is found as `flowlang validate` finds it: deployment.yaml beside the
    flow, else in the working directory (the folder the editor opened).
    """
    from flowlang.lsp.server import run

    run()
