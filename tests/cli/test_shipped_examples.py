"""What a new user runs first: the shipped flows on the shipped samples and flow tests."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowlang.cli import main
from flowlang.harness import run_test_paths

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_the_flow_tests_in_flows_tests_pass() -> None:
    outcome = run_test_paths([ROOT / "flows" / "tests"], coverage=True)
    assert outcome.unreadable == []
    assert [f"{r.name}: {r.failures}" for r in outcome.failed] == []
    assert len(outcome.results) >= 25
    names = " ".join(r.name for r in outcome.results)
    for step in (
        "steps 1-4",
        "step 4",
        "steps 5-7",
        "step 6",
        "step 8",
        "step 9",
        "step 10",
        "steps 11-12",
        "steps 1-5",
        "step 3",
        "step 5",
        "step 6",
        "step 7",
    ):
        assert step in names, f"no flow test for seed {step}"


def test_flow_test_failures_show_expected_actual_and_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        f"flow: {ROOT / 'flows' / 'social.flow'}\n"
        f"deployment: {ROOT / 'examples' / 'deployment.yaml'}\n"
        "tests:\n"
        "  - name: wrong workgroup\n"
        "    conversations:\n"
        "      - channel: x_dm\n"
        "        account: '@GbankSocial'\n"
        "        events:\n"
        "          - message: my card\n"
        "    expect:\n"
        "      routed_to: Social Public\n",
        "utf-8",
    )
    code, out = invoke("test", str(broken))
    assert code == 1
    assert "FAIL" in out and "routed_to: expected 'Social Public', got 'Social DM'" in out
    assert re.search(r"path taken: lines \d+", out)


def test_dry_run_of_the_messaging_samples_shows_paths_replies_and_routing() -> None:
    code, out = invoke(
        "dry-run",
        "flows/messaging.flow",
        "-d",
        "examples/deployment.yaml",
        "-m",
        "examples/messages.yaml",
        "--allow-blocked",  # one WhatsApp reply is blocked on purpose: the 24-hour window
    )
    assert code == 0, out
    assert "web message from Ana: 'Hi, I have a question about my loan'" in out
    assert re.search(r"line +\d+ +add_skill +skill Loans", out)
    assert "acd: accepted by bob in Retail Banking" in out
    assert "set_language    language ja" in out
    assert "Contact Center Hours: closed" in out
    assert "resumed: timeout" in out and "queue Overflow" in out


def test_dry_run_of_the_social_samples() -> None:
    code, out = invoke(
        "dry-run",
        "flows/social.flow",
        "-d",
        "examples/deployment.yaml",
        "-m",
        "examples/social.yaml",
    )
    assert code == 0, out
    assert "not_actionable  no service keyword" in out
    assert "queue Social Public (Complaints, Billing; priority 10)" in out
    assert "queue Social DM" in out
    assert "acd: withdrawn" in out


def test_dry_run_json_lists_each_event_with_its_path() -> None:
    code, out = invoke(
        "dry-run",
        "flows/social.flow",
        "-d",
        "examples/deployment.yaml",
        "-m",
        "examples/social.yaml",
        "--format",
        "json",
    )
    assert code == 0
    events = json.loads(out)["events"]
    first = events[0]
    assert first["event"].startswith("x_public post from @jhh_genesys")
    assert [p["step"] for p in first["path"]][:2] == ["branch", "goto"]
    assert any(e["type"] == "route_queue" for e in first["effects"])


def test_graph_with_a_trace_highlights_the_path_taken() -> None:
    code, out = invoke(
        "graph",
        "flows/social.flow",
        "-d",
        "examples/deployment.yaml",
        "--trace",
        "examples/social.yaml",
    )
    assert code == 0, out
    highlighted = re.search(r"^    class (.+) visited$", out, re.M)
    assert highlighted is not None
    assert len(highlighted.group(1).split(",")) >= 10


def test_graph_trace_with_a_bad_sample_file_is_a_diagnostic(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("conversations: [\n", "utf-8")
    code, out = invoke("graph", "flows/social.flow", "--trace", str(bad))
    assert code == 1
    assert "FL701" in out and "Traceback" not in out
