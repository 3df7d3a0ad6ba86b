"""The command line's shared parts: `-d/--deployment` is one option for every command, validate
takes it as well as a positional path, and only `flowlang.cli.main` decides the exit status."""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from flowlang.cli import main

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGE = ROOT / "flowlang"
CLI_MODULES = [PACKAGE / "cli.py", *sorted((PACKAGE / "commands").glob("*.py"))]

# every command that reads a deployment file, by its path under `flowlang`
TAKES_A_DEPLOYMENT = {
    "validate",
    "compile",
    "graph",
    "dry-run",
    "replay",
    "send",
    "simulate",
    "report",
    "serve",
    "users add",
}


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        found[prefix + name] = command
        if isinstance(command, click.Group):
            found.update(_commands(command, f"{prefix}{name} "))
    return found


def test_every_command_that_reads_a_deployment_takes_d_and_deployment() -> None:
    options = {
        name: param.opts
        for name, command in _commands(main).items()
        for param in command.params
        if param.name == "deployment"
    }
    assert set(options) == TAKES_A_DEPLOYMENT
    assert all(opts == ["-d", "--deployment"] for opts in options.values()), options


def test_validate_takes_the_deployment_as_d_or_among_the_paths() -> None:
    positional = invoke("validate", "flows/", "examples/deployment.yaml")
    short = invoke("validate", "flows/", "-d", "examples/deployment.yaml")
    long = invoke("validate", "--deployment", "examples/deployment.yaml", "flows/")
    assert positional[0] == short[0] == long[0] == 0
    assert short[1] == long[1]
    # the positional form still works, with a deprecation note (on stderr)
    deprecated = "note: giving the deployment file among PATHS is deprecated; use -d FILE\n"
    assert positional[1] == deprecated + short[1]
    assert "against examples/deployment.yaml" in short[1]


def test_validate_with_d_checks_names_against_that_deployment(tmp_path: Path) -> None:
    flow = tmp_path / "bad.flow"
    flow.write_text(
        'flow "Bad"\nserve messages on whatsapp\n\nstate start:\n'
        '    route to queue "Retial Banking"\n',
        "utf-8",
    )
    code, out = invoke("validate", str(flow), "-d", "examples/deployment.yaml")
    assert code == 1
    assert 'unknown queue "Retial Banking"' in out
    assert "FL100" not in out  # the deployment was given, so no "no deployment file" warning


def test_validate_refuses_two_deployments_and_a_missing_one() -> None:
    code, out = invoke(
        "validate", "flows/", "examples/deployment.yaml", "-d", "examples/deployment.yaml"
    )
    assert code == 1
    assert "FL022" in out and "more than one deployment file" in out
    code, out = invoke("validate", "flows/", "-d", "nowhere.yaml")
    assert code == 2
    assert "nowhere.yaml" in out


def _exits(path: Path) -> list[int]:
    """The lines that call `sys.exit` or raise `SystemExit`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(raised, ast.Name) and raised.id == "SystemExit":
                found.append(node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "exit"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "sys"
        ):
            found.append(node.lineno)
    return found


def test_no_command_exits_by_itself() -> None:
    """Commands return an ExitCode or raise Stop; `main` alone turns it into the exit status."""
    found = {str(p.relative_to(ROOT)): lines for p in CLI_MODULES if (lines := _exits(p))}
    assert found == {}


def test_the_command_modules_do_not_import_the_cli() -> None:
    for path in CLI_MODULES[1:]:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "flowlang.cli", path
            elif isinstance(node, ast.Import):
                assert all(a.name != "flowlang.cli" for a in node.names), path


def test_a_flow_with_errors_stops_a_command_with_exit_1(tmp_path: Path) -> None:
    flow = tmp_path / "bad.flow"
    flow.write_text(
        'flow "Bad"\nserve messages on web\nstate start:\n    route to queue\n', "utf-8"
    )
    for command in ("compile", "graph"):
        code, out = invoke(command, str(flow))
        assert code == 1, (command, out)
        assert "FL012" in out and "cannot run a flow with errors" in out
