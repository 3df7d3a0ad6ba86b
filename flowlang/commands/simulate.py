"""`flowlang simulate`: run the built-in ACD on simulated traffic and report the figures."""

from __future__ import annotations

import json
from pathlib import Path

import click

from flowlang.acd.simulate import SimulationResult, SimulationSpec, simulate
from flowlang.commands.deployment import load_or_exit, resolve
from flowlang.commands.exits import ExitCode
from flowlang.commands.options import deployment_option
from flowlang.config.loader import load_yaml_model
from flowlang.config.source import decode
from flowlang.diagnostics import SourceFile, render_all
from flowlang.reporting.charts import step_chart


@click.command(name="simulate")
@click.argument("spec_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@deployment_option(
    "take queues and agents from this deployment file (default: deployment.yaml beside "
    "SPEC_PATH, else in the working directory)"
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write an SVG chart of the queue length over time",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
def simulate_command(
    spec_path: Path, deployment: Path | None, plot: Path | None, output_format: str
) -> ExitCode:
    """Simulate traffic through the real ACD: service level, speed of answer, occupancy,
    abandonment per queue, and (with --plot) the queue length over time.

    \b
    Example:
      flowlang simulate examples/simulation.yaml -d examples/deployment.yaml --plot queue.svg
    """
    text, problems = decode(spec_path.read_bytes(), str(spec_path))
    spec = None
    if text is not None:
        spec, problems = load_yaml_model(text, str(spec_path), SimulationSpec)
    if spec is None:
        sources = {str(spec_path): SourceFile(str(spec_path), text or "")}
        click.echo(render_all(problems, sources))
        return ExitCode.FINDINGS
    loaded = None
    deployment = resolve(deployment, [spec_path])
    if deployment is not None:
        loaded = load_or_exit(deployment)
    result = simulate(spec, loaded)
    if not result.agents:
        raise click.UsageError(
            "no agents: give `agents:` in the simulation file, or a deployment file "
            "(-d FILE, or deployment.yaml beside the simulation file)"
        )
    if plot is not None:
        plot.write_text(queue_chart(result), "utf-8")
    if output_format == "json":
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        click.echo(summary(result))
        if plot is not None:
            click.echo(f"\nqueue length chart: {plot}")
    return ExitCode.OK


def queue_chart(result: SimulationResult) -> str:
    return step_chart(
        result.waiting_over_time,
        title="Interactions waiting, per queue",
        x_label="hours since the start",
        y_label="waiting",
        x_format=lambda minutes: f"{minutes / 60:.1f}h",
    )


def summary(result: SimulationResult) -> str:
    """The figures as a table."""
    lines = [
        f"Simulated {_hours(result.duration)} (after {_hours(result.warmup)} of warm-up), "
        f"seed {result.seed}, {result.agents} agent(s)",
        "",
        f"{'queue':<20} {'offered':>8} {'answered':>9} {'abandoned':>10} {'expired':>8} "
        f"{'service level':>18} {'ASA':>7} {'longest':>8}",
    ]
    for q in result.queues.values():
        level = f"{q.service_level:.1%} in {_short(q.answer_within)}"
        lines.append(
            f"{q.name:<20} {q.offered:>8} {q.answered:>9} {q.abandoned:>10} {q.expired:>8} "
            f"{level:>18} {_short(q.average_speed_of_answer):>7} {_short(q.longest_wait):>8}"
        )
    offered = sum(q.offered for q in result.queues.values())
    abandoned = sum(q.abandoned for q in result.queues.values())
    lines += [
        "",
        f"occupancy {result.occupancy:.1%}, abandonment "
        f"{(abandoned / offered if offered else 0):.1%}",
    ]
    return "\n".join(lines)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g}h"


def _short(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
