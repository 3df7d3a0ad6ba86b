"""A flow test's `expect:` keys: each is checked (one table holds keys and checks), an unknown one
is reported with the keys there are, and docs/testing.md lists exactly these keys."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from flowlang.harness import EXPECTATION_KEYS, EXPECTATIONS, run_test_paths

ROOT = Path(__file__).resolve().parent.parent.parent

# A value each key's check must reject for the run below, and how its failure starts.
WRONG: dict[str, tuple[Any, str]] = {
    "routed_to": ("Nowhere", "routed_to: expected 'Nowhere'"),
    "skills": (["juggling"], "skills: expected ['juggling']"),
    "priority": (99, "priority: expected 99.0"),
    "language": ("xx", "language: expected 'xx'"),
    "agent": ("nobody", "agent: expected 'nobody'"),
    "bot": ("No Bot", "bot: expected 'No Bot', got None"),
    "replies": (["never said*"], "replies: no reply matching 'never said*'"),
    "no_replies": (True, "replies sent: expected []"),
    "blocked": (["made_up"], "blocked: expected ['made_up'], got []"),
    "path": ([9999], "path: expected to pass line 9999"),
    "notes": (["no such note"], "notes: no reply matching 'no such note'"),
    "not_actionable": (True, "not_actionable: expected True, got False"),
    "milestones": (["identified"], "milestones: expected ['identified'], got []"),
    "transferred_to": ("GBank premier", "transferred_to: expected ['GBank premier'], got []"),
    "split": ({"greeting": "short"}, "split 'greeting': expected branch 'short', took []"),
    "ended": ("no reason", "ended: expected 'no reason'"),
    "failed": ("FL999", "failed: expected 'FL999', got None"),
    "survey": ({"CSAT.csat_score": 5}, "survey: no answer stored for 'CSAT.csat_score'"),
}


def _test_file(tmp_path: Path, expect: dict[str, Any]) -> Path:
    test = {
        "flow": str(ROOT / "flows" / "messaging.flow"),
        "deployment": str(ROOT / "examples" / "deployment.yaml"),
        "tests": [
            {
                "name": "a web customer says hello",
                "start": "2026-01-05T09:00:00Z",
                "conversations": [
                    {
                        "channel": "web",
                        "account": "gbank-web",
                        "customer": {"id": "web-visitor-1", "name": "Ana"},
                        "events": [{"message": "Hi, I have a question about my loan"}],
                    }
                ],
                "expect": expect,
            }
        ],
    }
    path = tmp_path / "test.yaml"
    with path.open("w", encoding="utf-8") as handle:
        YAML().dump(test, handle)
    return path


def test_the_run_passes_what_it_did(tmp_path: Path) -> None:
    expect = {
        "replies": ["Welcome to GBank!*"],
        "path": [36],
        "no_replies": False,
        "survey": {},
    }
    run = run_test_paths([_test_file(tmp_path, expect)])
    assert run.unreadable == []
    assert [r.passed for r in run.results] == [True]


@pytest.mark.parametrize("key", EXPECTATION_KEYS)
def test_every_key_is_checked(tmp_path: Path, key: str) -> None:
    wrong, failure = WRONG[key]  # a new key needs a case here
    run = run_test_paths([_test_file(tmp_path, {key: wrong})])
    (result,) = run.results
    assert not result.passed
    assert len(result.failures) == 1 and result.failures[0].startswith(failure), result.failures


def test_an_unknown_key_fails_the_test_and_lists_the_keys(tmp_path: Path) -> None:
    run = run_test_paths([_test_file(tmp_path, {"routed": "Retail Banking"})])
    (result,) = run.results
    assert not result.passed
    assert result.failures == [f"unknown expectation 'routed' (use: {', '.join(EXPECTATIONS)})"]


def test_the_keys_come_from_the_table_of_checks() -> None:
    assert tuple(EXPECTATIONS) == EXPECTATION_KEYS
    assert all(callable(check) for check in EXPECTATIONS.values())


def test_the_testing_guide_lists_exactly_these_keys() -> None:
    text = (ROOT / "docs" / "testing.md").read_text("utf-8")
    table = text[text.index("| `expect` key |") :].split("\n\n")[0]
    documented = re.findall(r"^\| `([a-z_]+):", table, re.M)
    assert documented == list(EXPECTATION_KEYS)


def test_a_bad_event_in_a_flow_test_is_shown_at_its_line_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "test.yaml"
    path.write_text(
        f"flow: {ROOT / 'flows' / 'messaging.flow'}\n"
        f"deployment: {ROOT / 'examples' / 'deployment.yaml'}\n"
        "tests:\n"
        "  - name: fine\n"
        "    conversations:\n"
        "      - channel: web\n"
        "        events: [{message: hi}]\n"
        "  - name: broken\n"
        "    conversations:\n"
        "      - channel: web\n"
        "        events:\n"
        "          - message: hi\n"
        "          - bot: timeout\n",
        "utf-8",
    )
    run = run_test_paths([path])
    assert [(r.name, r.passed) for r in run.results] == [("fine", True)]
    assert run.unreadable == [
        f"{path} :: broken: {path}:13:13: a bot outcome is resolved, escalate, failure, "
        "not 'timeout'"
    ]


def test_the_testing_guide_python_example_runs() -> None:
    text = (ROOT / "docs" / "testing.md").read_text("utf-8")
    section = text[text.index("## From Python") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    done = subprocess.run(
        [sys.executable, "-c", code.group(1)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "message(s) sent" in done.stdout
