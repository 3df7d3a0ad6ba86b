"""The command line in CI and on a terminal: the deployment file found without -d, SARIF and JUnit
that validate against their published schemas, GitHub annotations, --warnings-as-errors, test
selection and coverage thresholds, blocked replies failing a dry-run, fmt --diff, colour, -V,
shell completion and progress."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import jsonschema
import pytest
import xmlschema
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from flowlang import __version__
from flowlang.cli import main
from flowlang.commands.options import wants_color
from flowlang.commands.progress import LONG_RUN, wants_progress
from flowlang.harness import KeywordError, keyword_filter, load_samples, run_samples
from flowlang.project import load_project

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMAS = Path(__file__).resolve().parent / "schemas"
SARIF_SCHEMA = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text("utf-8"))
JUNIT_SCHEMA = xmlschema.XMLSchema(str(SCHEMAS / "JUnit.xsd"))

BAD_FLOW = (
    'flow "Bad"\nserve messages on whatsapp\n\nstate start:\n    route to queue "Retial Banking"\n'
)
# a flow whose only finding is a warning (FL301: the reply after `end` never runs)
WARNED_FLOW = 'flow "W"\nserve messages on whatsapp\n\nstate start:\n    end\n    reply "never"\n'


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


# ------------------------------------------------------------------ deployment discovery


def test_validate_finds_deployment_yaml_beside_the_flows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "bad.flow").write_text(BAD_FLOW, "utf-8")
    (project / "deployment.yaml").write_text(
        (ROOT / "examples/deployment.yaml").read_text("utf-8"), "utf-8"
    )
    monkeypatch.chdir(tmp_path)  # the working directory has no deployment.yaml
    code, out = invoke("validate", "project/")
    assert code == 1
    assert 'error[FL101]: unknown queue "Retial Banking"' in out
    assert "checked against project/deployment.yaml" in out


def test_validate_finds_deployment_yaml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "bad.flow").write_text(BAD_FLOW, "utf-8")
    (tmp_path / "deployment.yaml").write_text(
        (ROOT / "examples/deployment.yaml").read_text("utf-8"), "utf-8"
    )
    monkeypatch.chdir(tmp_path)
    code, out = invoke("validate", "flows/bad.flow")
    assert code == 1 and "FL101" in out and "against deployment.yaml" in out
    # a deployment given with -d wins over the one found
    other = tmp_path / "other.yaml"
    other.write_text("queues: {}\n", "utf-8")
    _code, out = invoke("validate", "flows/bad.flow", "-d", str(other))
    assert f"against {other}" in out


def test_without_a_deployment_anywhere_validate_warns_how_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.flow").write_text(BAD_FLOW, "utf-8")
    monkeypatch.chdir(tmp_path)
    code, out = invoke("validate", "bad.flow")
    assert code == 0
    assert "warning[FL100]" in out and "put a deployment.yaml beside the flows" in out


def test_compile_uses_the_deployment_found_and_says_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.flow").write_text(BAD_FLOW, "utf-8")
    (tmp_path / "deployment.yaml").write_text(
        (ROOT / "examples/deployment.yaml").read_text("utf-8"), "utf-8"
    )
    monkeypatch.chdir(tmp_path)
    code, out = invoke("compile", "bad.flow")
    assert code == 1
    assert "using the deployment file deployment.yaml" in out and "FL101" in out


# ------------------------------------------------------------------ output formats


def _bad_project(tmp_path: Path) -> Path:
    flow = tmp_path / "bad.flow"
    flow.write_text(BAD_FLOW.replace("end\n", "") + '    end\n    reply "late"\n', "utf-8")
    return flow


@pytest.mark.usefixtures("at_root")
def test_validate_sarif_is_valid_sarif_2_1_0_with_rules_and_regions(tmp_path: Path) -> None:
    flow = _bad_project(tmp_path)
    code, out = invoke("validate", str(flow), "-d", "examples/deployment.yaml", "--format", "sarif")
    assert code == 1
    log = json.loads(out)
    jsonschema.validate(log, SARIF_SCHEMA)
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "flowlang"
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert "FL101" in rules and "FL301" in rules
    by_rule = {r["ruleId"]: r for r in run["results"]}
    unknown = by_rule["FL101"]
    assert unknown["level"] == "error" and rules[unknown["ruleIndex"]] == "FL101"
    assert 'did you mean "Retail Banking"?' in unknown["message"]["text"]
    region = unknown["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (5, 20)
    assert by_rule["FL301"]["level"] == "warning"


@pytest.mark.usefixtures("at_root")
def test_a_clean_validate_is_an_empty_sarif_run() -> None:
    code, out = invoke("validate", "flows/", "-d", "examples/deployment.yaml", "--format", "sarif")
    assert code == 0
    log = json.loads(out)
    jsonschema.validate(log, SARIF_SCHEMA)
    assert log["runs"][0]["results"] == []


@pytest.mark.usefixtures("at_root")
def test_validate_junit_is_valid_against_the_junit_schema(tmp_path: Path) -> None:
    flow = _bad_project(tmp_path)
    code, out = invoke(
        "validate", str(flow), "flows/", "-d", "examples/deployment.yaml", "--format", "junit"
    )
    assert code == 1
    JUNIT_SCHEMA.validate(out)
    cases = re.findall(r'<testcase name="([^"]+)"', out)
    assert "flows/messaging.flow" in cases and "examples/deployment.yaml" in cases
    assert out.count("<failure") == 1  # only the bad flow fails; its warning does not
    assert "FL101 unknown queue" in out


@pytest.mark.usefixtures("at_root")
def test_validate_github_annotations(tmp_path: Path) -> None:
    flow = _bad_project(tmp_path)
    code, out = invoke(
        "validate", str(flow), "-d", "examples/deployment.yaml", "--format", "github"
    )
    assert code == 1
    lines = out.splitlines()
    error = next(line for line in lines if line.startswith("::error "))
    where = f"file={flow},line=5,col=20,endLine=5,endColumn=36,title=FL101::"
    assert error.startswith(f"::error {where}")
    # the help goes on an escaped second line of the same annotation
    assert 'unknown queue "Retial Banking"' in error and "%0Ahelp: did you mean" in error
    assert any(line.startswith("::warning ") and "title=FL301" in line for line in lines)


@pytest.mark.usefixtures("at_root")
def test_warnings_as_errors_fails_on_a_warning_and_only_then(tmp_path: Path) -> None:
    flow = tmp_path / "warned.flow"
    flow.write_text(WARNED_FLOW, "utf-8")
    code, out = invoke("validate", str(flow), "-d", "examples/deployment.yaml")
    assert code == 0 and "warning[FL301]" in out
    code, out = invoke(
        "validate", str(flow), "-d", "examples/deployment.yaml", "--warnings-as-errors"
    )
    assert code == 1 and "(warnings count as errors)" in out
    code, out = invoke(
        "validate", "flows/", "-d", "examples/deployment.yaml", "--warnings-as-errors"
    )
    assert code == 0, out
    code, out = invoke(
        "validate",
        str(flow),
        "-d",
        "examples/deployment.yaml",
        "--warnings-as-errors",
        "--format",
        "junit",
    )
    assert code == 1 and "<failure" in out
    JUNIT_SCHEMA.validate(out)


# ------------------------------------------------------------------ flowlang test


@pytest.mark.usefixtures("at_root")
def test_k_runs_only_the_matching_tests() -> None:
    code, out = invoke("test", "flows/tests/messaging.yaml", "-k", "code and not wrong")
    assert code == 0, out
    ran = [line for line in out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert ran and all("code" in line.lower() and "wrong" not in line.lower() for line in ran)
    everything = invoke("test", "flows/tests/messaging.yaml")[1]
    assert len(ran) < len([x for x in everything.splitlines() if x.startswith("PASS")])


@pytest.mark.usefixtures("at_root")
def test_k_that_matches_nothing_or_does_not_parse() -> None:
    code, out = invoke("test", "flows/tests/", "-k", "no-such-test-anywhere")
    assert code == 1 and "no test matches -k 'no-such-test-anywhere'" in out
    code, out = invoke("test", "flows/tests/", "-k", "code and (not")
    assert code == 2 and "a word or '(' expected, the expression ended" in out


@pytest.mark.usefixtures("at_root")
def test_coverage_fail_under() -> None:
    code, out = invoke("test", "flows/tests/", "--coverage", "--fail-under", "100")
    percent = float(re.search(r"coverage: ([\d.]+)% of steps and branches", out)[1])  # type: ignore[index]
    assert percent < 100
    assert code == 1 and f"coverage {percent:.1f}% is below --fail-under 100%" in out
    code, _ = invoke("test", "flows/tests/", "--coverage", "--fail-under", str(int(percent)))
    assert code == 0
    code, out = invoke("test", "flows/tests/", "--fail-under", "10")
    assert code == 2 and "--fail-under needs --coverage" in out


@pytest.mark.usefixtures("at_root")
def test_test_junit_sarif_and_github_for_a_failing_test(tmp_path: Path) -> None:
    suite = (ROOT / "flows/tests/social.yaml").read_text("utf-8")
    broken = suite.replace("routed_to: Social Public", "routed_to: Nowhere", 1)
    broken = broken.replace("flow: ../social.flow", f"flow: {ROOT / 'flows/social.flow'}")
    broken = broken.replace(
        "deployment: ../../examples/deployment.yaml",
        f"deployment: {ROOT / 'examples/deployment.yaml'}",
    )
    assert broken.count(str(ROOT)) == 2 and "Nowhere" in broken
    target = tmp_path / "broken.yaml"
    target.write_text(broken, "utf-8")
    code, out = invoke("test", str(target), "--format", "junit")
    assert code == 1
    JUNIT_SCHEMA.validate(out)
    assert "<failure" in out and "routed_to: expected 'Nowhere'" in out
    code, out = invoke("test", str(target), "--format", "sarif")
    log = json.loads(out)
    jsonschema.validate(log, SARIF_SCHEMA)
    result = log["runs"][0]["results"][0]
    assert result["ruleId"] == "flow-test-failed"
    line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert broken.splitlines()[line - 1].lstrip().startswith("- name:")
    code, out = invoke("test", str(target), "--format", "github")
    assert code == 1
    assert out.splitlines()[0].startswith(f"::error file={target},line={line},col=1,")


@given(
    st.text(alphabet="abcXYZ-_", min_size=1, max_size=4),
    st.text(alphabet="abcXYZ-_", min_size=1, max_size=4),
    st.text(alphabet="abcxyz-_ ", max_size=12),
)
def test_keyword_expressions_mean_what_they_say(a: str, b: str, text: str) -> None:
    has_a, has_b = a.casefold() in text.casefold(), b.casefold() in text.casefold()
    assert keyword_filter(a)(text) is has_a
    assert keyword_filter(f"not {a}")(text) is (not has_a)
    assert keyword_filter(f"{a} and {b}")(text) is (has_a and has_b)
    assert keyword_filter(f"{a} or not {b}")(text) is (has_a or not has_b)
    assert keyword_filter(f"not ({a} or {b})")(text) is (not (has_a or has_b))


@pytest.mark.parametrize("bad", ["", "and", "a and", "(a", "a )", "not", "a b"])
def test_a_keyword_expression_that_does_not_parse_is_refused(bad: str) -> None:
    with pytest.raises(KeywordError):
        keyword_filter(bad)


# ------------------------------------------------------------------ dry-run, fmt, version


@pytest.mark.usefixtures("at_root")
def test_dry_run_exits_1_when_a_reply_was_blocked_unless_allowed() -> None:
    args = [
        "dry-run",
        "flows/messaging.flow",
        "-d",
        "examples/deployment.yaml",
        "-m",
        "examples/messages.yaml",
    ]
    code, out = invoke(*args)
    assert code == 1
    assert "xx agent reply blocked [window_closed_template_required]" in out
    assert "1 reply(ies) blocked or held back: exit 1 (--allow-blocked to accept)" in out
    code, _ = invoke(*args, "--allow-blocked")
    assert code == 0
    # samples where nothing is blocked pass without the flag
    code, _ = invoke(
        "dry-run",
        "flows/messaging.flow",
        "-d",
        "examples/deployment.yaml",
        "-m",
        "examples/webhooks.yaml",
    )
    assert code == 0


@pytest.mark.usefixtures("at_root")
def test_fmt_diff_prints_a_unified_diff_and_writes_nothing(tmp_path: Path) -> None:
    flow = tmp_path / "ugly.flow"
    ugly = 'flow   "Ugly"\nserve messages on whatsapp\nstate start:\n    reply   "hi"\n'
    flow.write_text(ugly, "utf-8")
    result = CliRunner().invoke(main, ["fmt", "--diff", str(flow)])
    assert result.exit_code == 0
    assert f"--- {flow}\n+++ {flow}\n" in result.stdout
    assert '-flow   "Ugly"\n+flow "Ugly"\n' in result.stdout
    assert "file(s): 1 would be reformatted" in result.stderr  # the summary stays off the patch
    assert flow.read_text("utf-8") == ugly
    code, _ = invoke("fmt", "--diff", "--check", str(flow))
    assert code == 1 and flow.read_text("utf-8") == ugly


def test_version_long_and_short() -> None:
    for flag in ("--version", "-V"):
        code, out = invoke(flag)
        assert code == 0 and out == f"flowlang, version {__version__}\n"


# ------------------------------------------------------------------ colour, completion, progress


@pytest.mark.usefixtures("at_root")
def test_colour_always_never_and_no_color(tmp_path: Path) -> None:
    flow = _bad_project(tmp_path)
    args = ["validate", str(flow), "-d", "examples/deployment.yaml"]
    _, coloured = invoke("--color", "always", *args)
    assert "\x1b[1;31merror[FL101]\x1b[0m" in coloured
    _, plain = invoke("--color", "never", *args)
    assert "\x1b[" not in plain and "error[FL101]" in plain
    _, piped = invoke(*args)  # auto, not a terminal
    assert "\x1b[" not in piped
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


class _Tty:
    def isatty(self) -> bool:
        return True


def test_auto_colour_on_a_terminal_respects_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert wants_color("auto", _Tty()) is True  # type: ignore[arg-type]
    monkeypatch.setenv("NO_COLOR", "1")
    assert wants_color("auto", _Tty()) is False  # type: ignore[arg-type]
    assert wants_color("always", _Tty()) is True  # type: ignore[arg-type]
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert wants_color("auto", _Tty()) is False  # type: ignore[arg-type]


def test_click_shell_completion_script() -> None:
    env = {**os.environ, "_FLOWLANG_COMPLETE": "bash_source"}
    command = Path(sys.executable).parent / "flowlang"  # the installed command, as a user has it
    script = subprocess.run(
        [str(command)], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "_flowlang_completion()" in script and "complete -o nosort -F" in script


def test_progress_only_on_a_terminal_for_long_runs() -> None:
    assert wants_progress("auto", LONG_RUN, stderr_is_tty=True)
    assert not wants_progress("auto", LONG_RUN - 1, stderr_is_tty=True)
    assert not wants_progress("auto", 10_000, stderr_is_tty=False)  # CI: quiet
    assert wants_progress("always", 1, stderr_is_tty=False)
    assert not wants_progress("never", 10_000, stderr_is_tty=True)


@pytest.mark.usefixtures("at_root")
def test_run_samples_reports_progress_per_sample_event() -> None:
    project, _ = load_project(Path("flows/messaging.flow"), Path("examples/deployment.yaml"))
    assert project is not None
    samples = load_samples(Path("examples/webhooks.yaml"))
    done: list[int] = []
    run_samples(project, samples, progress=done.append)
    assert sum(done) == len(samples.events)
    result = CliRunner().invoke(
        main,
        [
            "dry-run",
            "flows/messaging.flow",
            "-d",
            "examples/deployment.yaml",
            "-m",
            "examples/webhooks.yaml",
            "--progress",
            "always",
        ],
    )
    assert result.exit_code == 0 and "events" in result.stderr
    quiet = CliRunner().invoke(
        main,
        [
            "dry-run",
            "flows/messaging.flow",
            "-d",
            "examples/deployment.yaml",
            "-m",
            "examples/webhooks.yaml",
        ],
    )
    assert quiet.stderr == ""


# ------------------------------------------------------------------ docs/cli.md

AUTHORING_COMMANDS = ("validate", "fmt", "compile", "graph", "dry-run", "test")


def _all_commands() -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}

    def walk(group: click.Group, prefix: str) -> None:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, f"{prefix}{name} ")
            else:
                found[prefix + name] = command

    walk(main, "")
    return found


def test_docs_cli_md_has_every_command_and_every_authoring_option() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text("utf-8")
    commands = _all_commands()
    missing = [name for name in commands if f"### `flowlang {name}" not in doc]
    assert not missing, f"document these commands in docs/cli.md: {missing}"
    for name in AUTHORING_COMMANDS:
        section = doc.split(f"### `flowlang {name}", 1)[1].split("\n### ", 1)[0]
        for param in commands[name].params:
            for opt in getattr(param, "opts", []) if isinstance(param, click.Option) else []:
                assert f"`{opt}`" in section, f"docs/cli.md: {name} {opt}"
    for code in ("| 0 |", "| 1 |", "| 2 |"):
        assert code in doc
