"""The `flowlang` command line: thin click commands over the library.

Exit codes (every command, `commands.exits.ExitCode`): 0 success (warnings allowed), 1 findings
(errors in the input, failed tests, blocked or undelivered messages), 2 usage error (bad
arguments, missing files). A command returns its code or raises `Stop`; `main` alone exits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from flowlang import __version__, codes
from flowlang.commands import report as report_commands
from flowlang.commands import send as send_commands
from flowlang.commands import serve as serve_commands
from flowlang.commands import simulate as simulate_commands
from flowlang.commands import store as store_commands
from flowlang.commands import users as users_commands
from flowlang.commands.exits import ExitCode, Stop
from flowlang.commands.loading import emit_diagnostics, load_program
from flowlang.commands.options import FORMAT_OPTION, deployment_option
from flowlang.commands.outbound import OUTBOUND_OPTION, outbound_adapter


class _Cli(click.Group):
    """The one place the exit status is decided: a command's returned `ExitCode`, or a `Stop`'s."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
        except Stop as stop:
            ctx.exit(stop.code)
        code = ExitCode.OK if result is None else ExitCode(result)
        if code is not ExitCode.OK:
            ctx.exit(code)
        return result


@click.group(
    cls=_Cli,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="flowlang")
def main() -> None:
    """flowlang: write, check and run contact-center message flows.

    \b
    Typical use:
      flowlang validate flows/ examples/deployment.yaml
      flowlang fmt --check flows/
      flowlang dry-run flows/messaging.flow -d examples/deployment.yaml -m examples/messages.yaml
      flowlang test flows/tests/
      flowlang simulate examples/simulation.yaml -d examples/deployment.yaml
    """


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@deployment_option("the deployment file (or give it among PATHS)")
@FORMAT_OPTION
def validate(paths: tuple[Path, ...], deployment: Path | None, output_format: str) -> ExitCode:
    """Check flows and a deployment file; report every problem with file:line:col.

    PATHS are .flow files, folders of them, and the deployment .yaml file (or -d FILE).

    \b
    Examples:
      flowlang validate flows/ examples/deployment.yaml
      flowlang validate flows/ -d examples/deployment.yaml
    """
    from flowlang.workspace import validate as run_validate

    ws = run_validate(paths, deployment)
    emit_diagnostics(ws.diagnostics, ws.sources, output_format)
    errors = len(ws.errors)
    warnings = len(ws.diagnostics) - errors
    if output_format == "text":
        summary = (
            f"{ws.files_checked} flow file(s) checked"
            + (f" against {ws.deployment_path}" if ws.deployment_path else "")
            + f": {errors} error(s), {warnings} warning(s)"
        )
        click.echo(("\n" if ws.diagnostics else "") + summary)
    if any(d.code in (codes.CANNOT_READ, codes.NOT_A_FLOW_OR_DEPLOYMENT) for d in ws.errors):
        return ExitCode.USAGE
    return ExitCode.FINDINGS if errors else ExitCode.OK


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True, help="only report files that are not formatted")
@click.option("--diff", "show_diff", is_flag=True, help="show what would change")
def fmt(paths: tuple[Path, ...], check: bool, show_diff: bool) -> ExitCode:
    """Rewrite flows in the canonical layout (comments kept; running it twice changes nothing).

    \b
    Examples:
      flowlang fmt flows/            # rewrite in place
      flowlang fmt --check flows/    # exit 1 if any file would change (for CI)
    """
    import difflib

    from flowlang.language.formatter import format_text
    from flowlang.workspace import expand

    flows, _deployments, problems = expand(paths)
    if problems:
        emit_diagnostics(problems, {}, "text")
        return ExitCode.USAGE
    changed = failed = 0
    for path in flows:
        text = path.read_text("utf-8", errors="replace")
        result = format_text(text, str(path))
        if result.text is None:
            failed += 1
            emit_diagnostics(result.diagnostics, {str(path): result.source}, "text")
            continue
        if result.text == text:
            continue
        changed += 1
        if show_diff:
            click.echo(
                "".join(
                    difflib.unified_diff(
                        text.splitlines(True), result.text.splitlines(True), str(path), str(path)
                    )
                )
            )
        if check:
            click.echo(f"would reformat {path}")
        else:
            path.write_text(result.text, "utf-8")
            click.echo(f"reformatted {path}")
    verb = "would be reformatted" if check else "reformatted"
    click.echo(f"{len(flows)} file(s): {changed} {verb}, {failed} with syntax errors")
    return ExitCode.FINDINGS if failed or (check and changed) else ExitCode.OK


@main.command(name="compile")
@click.argument("flow", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@deployment_option()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the graph to .json or .yaml (default: JSON on stdout)",
)
def compile_command(flow: Path, deployment: Path | None, output: Path | None) -> ExitCode:
    """Compile a flow to its executable graph (IR); its version is a content hash."""
    project = load_program(flow, deployment)
    data = project.graph.to_dict()
    if output is not None and output.suffix in (".yaml", ".yml"):
        from ruamel.yaml import YAML

        yaml = YAML()
        yaml.default_flow_style = False
        with output.open("w", encoding="utf-8") as handle:
            yaml.dump(data, handle)
    else:
        text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
        if output is None:
            click.echo(text)
        else:
            output.write_text(text + "\n", "utf-8")
    if output is not None:
        click.echo(f"{output}: {len(project.graph.nodes)} nodes, version {project.graph.version}")
    return ExitCode.OK


@main.command()
@click.argument("flow", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@deployment_option()
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["mermaid", "dot", "svg"]),
    default="mermaid",
    show_default=True,
)
@click.option(
    "--trace",
    "trace_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="sample messages (as for dry-run): highlight the path they take",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
def graph(
    flow: Path,
    deployment: Path | None,
    output_format: str,
    trace_file: Path | None,
    output: Path | None,
) -> ExitCode:
    """Draw a flow as Mermaid or Graphviz (svg needs Graphviz's `dot`)."""
    from flowlang.compiler.draw import to_dot, to_mermaid, to_svg

    project = load_program(flow, deployment)
    visited: set[str] = set()
    if trace_file is not None:
        from flowlang.harness import SampleError, load_samples, run_samples

        try:
            samples = load_samples(trace_file)
        except SampleError as exc:
            emit_diagnostics(exc.diagnostics, {}, "text")
            return ExitCode.FINDINGS
        visited = run_samples(project, samples).visited_nodes()
    if output_format == "mermaid":
        text = to_mermaid(project.graph, visited)
    elif output_format == "dot":
        text = to_dot(project.graph, visited)
    else:
        try:
            text = to_svg(project.graph, visited)
        except FileNotFoundError:
            click.echo(
                "--format svg needs Graphviz's `dot` on the PATH "
                "(apt-get install graphviz); use --format dot or mermaid",
                err=True,
            )
            return ExitCode.USAGE
    if output is None:
        click.echo(text)
    else:
        output.write_text(text, "utf-8")
        click.echo(f"wrote {output}")
    return ExitCode.OK


@main.command(name="dry-run")
@click.argument("flow", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@deployment_option()
@click.option(
    "-m",
    "--messages",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="sample conversations (YAML): messages, bot outcomes, agent actions",
)
@click.option(
    "-e",
    "--environment",
    help="run with this environment's parameter values from the deployment file (e.g. test)",
)
@click.option(
    "--store",
    "store_path",
    type=store_commands.StoreLocation(),
    help="keep customers, conversations and history in this SQLite file (created if missing) "
    "or postgresql:// database; the next run continues from it",
)
@OUTBOUND_OPTION
@FORMAT_OPTION
def dry_run(
    flow: Path,
    deployment: Path | None,
    messages: Path,
    environment: str | None,
    store_path: str | Path | None,
    outbound: tuple[str, ...],
    output_format: str,
) -> ExitCode:
    """Run a flow on sample messages; print each event's path, effects and blocked replies.

    Time comes from the samples' timestamps, so the 24 h and 72 h rules can be tried out.
    Exit 1 when an --outbound adapter did not take every message (each failure is shown).
    """
    from flowlang.harness import SampleError, load_samples, run_samples

    project = load_program(flow, deployment, environment)
    try:
        samples = load_samples(messages)
    except SampleError as exc:
        emit_diagnostics(exc.diagnostics, {}, "text")
        return ExitCode.FINDINGS
    adapters = [outbound_adapter(spec) for spec in outbound]
    if store_path is None:
        report = run_samples(project, samples, adapters=adapters)
    else:
        with store_commands.open_store(store_path) as db:
            report = run_samples(project, samples, store=db, adapters=adapters)
    if output_format == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(report.render())
    return ExitCode.FINDINGS if report.undelivered else ExitCode.OK


@main.command(name="test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--coverage", is_flag=True, help="list the steps and branches no test reached")
@FORMAT_OPTION
def test_command(paths: tuple[Path, ...], coverage: bool, output_format: str) -> ExitCode:
    """Run flow test files (YAML): given history, events, expected path, routes and replies.

    Exit 0 when every test passes, 1 when any fails, 2 when a test file cannot be read.
    """
    from flowlang.harness import run_test_paths

    outcome = run_test_paths(list(paths), coverage=coverage)
    if output_format == "json":
        click.echo(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(outcome.render())
    if outcome.unreadable:
        return ExitCode.USAGE
    return ExitCode.FINDINGS if outcome.failed else ExitCode.OK


# Commands of other areas, one module each under flowlang/commands/ (one line per command here).
main.add_command(store_commands.store)
main.add_command(store_commands.replay)
main.add_command(simulate_commands.simulate_command)
main.add_command(report_commands.report_command)
main.add_command(send_commands.send_command)
main.add_command(serve_commands.serve_command)
main.add_command(users_commands.users)


if __name__ == "__main__":  # pragma: no cover
    main()
