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
from flowlang.commands import lsp as lsp_commands
from flowlang.commands import report as report_commands
from flowlang.commands import send as send_commands
from flowlang.commands import serve as serve_commands
from flowlang.commands import simulate as simulate_commands
from flowlang.commands import store as store_commands
from flowlang.commands import users as users_commands
from flowlang.commands.exits import ExitCode, Stop
from flowlang.commands.loading import emit_diagnostics, load_program
from flowlang.commands.options import (
    CI_FORMAT_OPTION,
    COLOR_CHOICES,
    FORMAT_OPTION,
    color_enabled,
    deployment_option,
)
from flowlang.commands.outbound import OUTBOUND_OPTION, outbound_adapter
from flowlang.commands.progress import progress_bar


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
@click.version_option(__version__, "-V", "--version", prog_name="flowlang")
@click.option(
    "--color",
    type=click.Choice(COLOR_CHOICES),
    default="auto",
    show_default=True,
    help="colour the output: auto (on a terminal, unless NO_COLOR is set), always or never",
)
@click.pass_context
def main(ctx: click.Context, color: str) -> None:
    """flowlang: write, check and run contact-center message flows.

    \b
    Typical use:
      flowlang validate flows/ -d examples/deployment.yaml
      flowlang fmt --check flows/
      flowlang dry-run flows/messaging.flow -d examples/deployment.yaml -m examples/messages.yaml
      flowlang test flows/tests/
      flowlang simulate examples/simulation.yaml -d examples/deployment.yaml

    docs/cli.md lists every command, option, exit code and output format.
    """
    ctx.meta["flowlang.color"] = color


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@deployment_option(
    "the deployment file (default: deployment.yaml beside the flows, else in the working "
    "directory; giving it among PATHS still works but is deprecated)"
)
@CI_FORMAT_OPTION
@click.option(
    "--warnings-as-errors", is_flag=True, help="exit 1 when there are warnings, not only errors"
)
def validate(
    paths: tuple[Path, ...],
    deployment: Path | None,
    output_format: str,
    warnings_as_errors: bool,
) -> ExitCode:
    """Check flows and a deployment file; report every problem with file:line:col.

    PATHS are .flow files and folders of them. Exit 0 when there is no error (1 with
    --warnings-as-errors when there are warnings), 1 on errors, 2 when a path cannot be read.

    \b
    Examples:
      flowlang validate flows/ -d examples/deployment.yaml
      flowlang validate flows/ --format sarif > flowlang.sarif
      flowlang validate flows/ --format github --warnings-as-errors
    """
    from flowlang.workspace import DEPLOYMENT_SUFFIXES
    from flowlang.workspace import validate as run_validate

    if any(p.suffix in DEPLOYMENT_SUFFIXES for p in paths) and output_format == "text":
        click.echo(
            "note: giving the deployment file among PATHS is deprecated; use -d FILE", err=True
        )
    ws = run_validate(paths, deployment, discover=True)
    emit_diagnostics(ws.diagnostics, ws.sources, output_format, warnings_fail=warnings_as_errors)
    errors = len(ws.errors)
    warnings = len(ws.diagnostics) - errors
    if output_format == "text":
        summary = (
            f"{ws.files_checked} flow file(s) checked"
            + (f" against {ws.deployment_path}" if ws.deployment_path else "")
            + f": {errors} error(s), {warnings} warning(s)"
            + (" (warnings count as errors)" if warnings_as_errors and warnings else "")
        )
        click.echo(("\n" if ws.diagnostics else "") + summary)
    if any(d.code in (codes.CANNOT_READ, codes.NOT_A_FLOW_OR_DEPLOYMENT) for d in ws.errors):
        return ExitCode.USAGE
    if errors or (warnings_as_errors and warnings):
        return ExitCode.FINDINGS
    return ExitCode.OK


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True, help="only report files that are not formatted")
@click.option(
    "--diff",
    "show_diff",
    is_flag=True,
    help="print a unified diff of what would change; write nothing",
)
def fmt(paths: tuple[Path, ...], check: bool, show_diff: bool) -> ExitCode:
    """Rewrite flows in the canonical layout (comments kept; running it twice changes nothing).

    \b
    Examples:
      flowlang fmt flows/            # rewrite in place
      flowlang fmt --check flows/    # exit 1 if any file would change (for CI)
      flowlang fmt --diff flows/     # show the changes, write nothing
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
        elif not show_diff:
            path.write_text(result.text, "utf-8")
            click.echo(f"reformatted {path}")
    verb = "would be reformatted" if check or show_diff else "reformatted"
    # with --diff, stdout is the patch alone
    summary = f"{len(flows)} file(s): {changed} {verb}, {failed} with syntax errors"
    click.echo(summary, err=show_diff)
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
@click.option(
    "--allow-blocked",
    is_flag=True,
    help="exit 0 even when the channel policy blocked or held back a reply",
)
@click.option(
    "--progress",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="a progress bar on stderr: auto shows it on a terminal for long runs",
)
def dry_run(
    flow: Path,
    deployment: Path | None,
    messages: Path,
    environment: str | None,
    store_path: str | Path | None,
    outbound: tuple[str, ...],
    output_format: str,
    allow_blocked: bool,
    progress: str,
) -> ExitCode:
    """Run a flow on sample messages; print each event's path, effects and blocked replies.

    Time comes from the samples' timestamps, so the 24 h and 72 h rules can be tried out.
    Exit 1 when a reply was blocked or held back by the channel policy (unless
    --allow-blocked) or an --outbound adapter did not take every message (each is shown).
    """
    from flowlang.harness import SampleError, load_samples, run_samples

    project = load_program(flow, deployment, environment)
    try:
        samples = load_samples(messages)
    except SampleError as exc:
        emit_diagnostics(exc.diagnostics, {}, "text")
        return ExitCode.FINDINGS
    adapters = [outbound_adapter(spec) for spec in outbound]
    with progress_bar(progress, len(samples.events), "events") as advance:
        if store_path is None:
            report = run_samples(project, samples, adapters=adapters, progress=advance)
        else:
            with store_commands.engine_store(store_path, "flowlang dry-run") as db:
                report = run_samples(
                    project, samples, store=db, adapters=adapters, progress=advance
                )
    if output_format == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(report.render())
    blocked = report.blocked_count()
    if blocked and not allow_blocked:
        click.echo(
            f"{blocked} reply(ies) blocked or held back: exit 1 (--allow-blocked to accept)",
            err=True,
        )
        return ExitCode.FINDINGS
    return ExitCode.FINDINGS if report.undelivered else ExitCode.OK


@main.command(name="test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-k",
    "keyword",
    metavar="EXPR",
    help="only run tests whose name or file matches EXPR: words (case-insensitive substrings) "
    "with and, or, not and parentheses, e.g. -k 'whatsapp and not template'",
)
@click.option("--coverage", is_flag=True, help="list the steps and branches no test reached")
@click.option(
    "--fail-under",
    type=click.FloatRange(0, 100),
    metavar="PERCENT",
    help="with --coverage: exit 1 when steps and branches reached are below PERCENT",
)
@CI_FORMAT_OPTION
def test_command(
    paths: tuple[Path, ...],
    keyword: str | None,
    coverage: bool,
    fail_under: float | None,
    output_format: str,
) -> ExitCode:
    """Run flow test files (YAML): given history, events, expected path, routes and replies.

    Exit 0 when every test passes, 1 when any fails (or coverage is below --fail-under), 2 when
    a test file cannot be read or -k is not a valid expression.

    \b
    Examples:
      flowlang test flows/tests/
      flowlang test flows/tests/ -k 'whatsapp and not template'
      flowlang test flows/tests/ --coverage --fail-under 90 --format junit > report.xml
    """
    from flowlang.commands import formats
    from flowlang.harness import KeywordError, keyword_filter, run_test_paths

    if fail_under is not None and not coverage:
        raise click.UsageError("--fail-under needs --coverage")
    try:
        selected = keyword_filter(keyword) if keyword else None
    except KeywordError as exc:
        raise click.BadParameter(str(exc), param_hint="-k") from exc
    outcome = run_test_paths(list(paths), coverage=coverage, select=selected)
    if output_format == "json":
        click.echo(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False, default=str))
    elif output_format == "junit":
        click.echo(formats.tests_junit(outcome))
    elif output_format == "sarif":
        click.echo(formats.tests_sarif(outcome))
    elif output_format == "github":
        click.echo(formats.tests_github(outcome))
    else:
        color = color_enabled()
        click.echo(outcome.render(color=color), color=color)
    if outcome.unreadable:
        return ExitCode.USAGE
    if keyword and not outcome.results:
        click.echo(f"no test matches -k {keyword!r}", err=True)
        return ExitCode.FINDINGS
    if fail_under is not None and outcome.coverage_percent() < fail_under:
        click.echo(
            f"coverage {outcome.coverage_percent():.1f}% is below --fail-under {fail_under:g}%",
            err=True,
        )
        return ExitCode.FINDINGS
    return ExitCode.FINDINGS if outcome.failed else ExitCode.OK


# Commands of other areas, one module each under flowlang/commands/ (one line per command here).
main.add_command(store_commands.store)
main.add_command(store_commands.replay)
main.add_command(simulate_commands.simulate_command)
main.add_command(report_commands.report_command)
main.add_command(send_commands.send_command)
main.add_command(serve_commands.serve_command)
main.add_command(users_commands.users)
main.add_command(lsp_commands.lsp_command)


if __name__ == "__main__":  # pragma: no cover
    main()
