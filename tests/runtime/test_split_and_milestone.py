"""`split` (A/B tests: a stable branch per conversation, recorded and counted) and `milestone`
(recorded, counted per flow and day), through the interpreter, the Engine and the reports."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.reporting.flows import flow_reports
from flowlang.reporting.reports import Scope
from flowlang.runtime import effects as fx
from flowlang.runtime.interpreter import RunResult, run
from flowlang.runtime.program import Program
from flowlang.runtime.splits import split_bucket
from flowlang.runtime.state import FlowState, Trigger
from flowlang.store.sqlite import SqliteStore
from tests.runtime.helpers import facts, program
from tests.runtime.test_engine import make_engine, message

SPLIT = """\
milestone "started"
split "greeting":
    80% classic:
        reply "Hello"
    20% short:
        reply "Hi"
milestone "greeted"
"""


def start(prog: Program, conversation: str) -> RunResult:
    return run(
        prog,
        FlowState(),
        Trigger(kind="message", text="hi"),
        facts("hi", conversation={"id": conversation, "ongoing": False}),
    )


def taken(result: RunResult) -> list[str]:
    return [e.branch for e in result.effects if isinstance(e, fx.SplitTaken)]


def test_the_same_conversation_always_takes_the_same_branch() -> None:
    prog = program(SPLIT)
    for conversation in ("c-1", "c-2", "c-3", "web-visitor-81f2"):
        first = taken(start(prog, conversation))
        assert all(taken(start(program(SPLIT), conversation)) == first for _ in range(3))


def test_the_bucket_is_a_sha256_of_conversation_and_split_name_not_pythons_hash() -> None:
    digest = hashlib.sha256(b"conv-42\x00greeting").digest()
    assert split_bucket("conv-42", "greeting") == int.from_bytes(digest[:8], "big") % 10_000
    # another process (another hash seed) puts the conversation in the same bucket
    code = (
        "from flowlang.runtime.splits import split_bucket; "
        "print(split_bucket('conv-42', 'greeting'))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert int(other.stdout) == split_bucket("conv-42", "greeting")


def test_the_shares_follow_the_percentages_over_many_conversations() -> None:
    prog = program(SPLIT)
    counts = Counter(taken(start(prog, f"conv-{n}"))[0] for n in range(4000))
    assert abs(counts["classic"] / 4000 - 0.80) < 0.03
    assert abs(counts["short"] / 4000 - 0.20) < 0.03


EDITED = 'reply "Welcome to the bank"\nmilestone "opened"\n' + SPLIT


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_a_conversation_keeps_its_branch_when_steps_are_added_above_the_split(
    conversation: str,
) -> None:
    # a new version of the flow moves the split two steps down (its step id changes: start/3)
    assert taken(start(program(EDITED), conversation)) == taken(start(program(SPLIT), conversation))


def test_renaming_the_split_draws_again() -> None:
    renamed = program(SPLIT.replace('split "greeting"', 'split "greeting-v2"'))
    prog = program(SPLIT)
    moved = [
        c
        for c in (f"c-{n}" for n in range(200))
        if taken(start(prog, c)) != taken(start(renamed, c))
    ]
    assert moved  # a new name is a new test: conversations are drawn again


def test_a_zero_percent_branch_is_never_taken() -> None:
    prog = program(
        'split:\n    0% off:\n        reply "never"\n    100% on:\n        reply "always"'
    )
    assert {taken(start(prog, f"c{n}"))[0] for n in range(300)} == {"on"}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=20))
def test_a_bucket_is_always_one_of_the_10000(conversation: str, step: str) -> None:
    assert 0 <= split_bucket(conversation, step) < 10_000


def test_the_branch_is_in_the_trace_the_path_and_the_effects() -> None:
    prog = program(SPLIT)
    result = start(prog, "c-1")
    branch = taken(result)[0]
    (split,) = [e for e in result.effects if isinstance(e, fx.SplitTaken)]
    assert (split.flow, split.split, split.line) == ("Test", "greeting", 6)
    assert f"greeting: {branch}" in [t.detail for t in result.trace]
    assert f"start/1/branch:{branch}/0" in result.path
    reply = next(e for e in result.effects if isinstance(e, fx.SendReply))
    assert reply.content["text"] == {"classic": "Hello", "short": "Hi"}[branch]
    milestones = [e.milestone for e in result.effects if isinstance(e, fx.MilestoneReached)]
    assert milestones == ["started", "greeted"]


def test_an_unnamed_split_is_named_by_its_branches() -> None:
    prog = program("split:\n    50% a:\n        pass\n    50% b:\n        pass")
    (split,) = [e for e in start(prog, "c-9").effects if isinstance(e, fx.SplitTaken)]
    assert split.split == "a/b"


def _events(store: SqliteStore) -> list[dict[str, Any]]:
    return list(store.iter_events())


def test_the_engine_logs_milestones_and_splits_and_the_report_counts_them(
    tmp_path: Path,
) -> None:
    store = SqliteStore(str(tmp_path / "cc.db"))
    engine, _sent = make_engine(SPLIT + 'route to queue "Retail"', store=store)
    senders = [f"44770090{n:04}" for n in range(40)]
    for sender in senders:
        engine.handle(message("hi", sender=sender))
    engine.handle(message("hi", sender="447700999999", at=timedelta(days=1)))
    events = _events(store)
    branches = [e["branch"] for e in events if e["kind"] == "split_taken"]
    assert len(branches) == 41
    milestones, splits = flow_reports(events, Scope())
    assert [(r["day"], r["milestone"], r["conversations"]) for r in milestones.rows] == [
        ("2026-03-02", "greeted", 40),
        ("2026-03-02", "started", 40),
        ("2026-03-03", "greeted", 1),
        ("2026-03-03", "started", 1),
    ]
    rows = {r["branch"]: r for r in splits.rows}
    assert {b: r["conversations"] for b, r in rows.items()} == dict(Counter(branches))
    assert sum(r["share"] for r in splits.rows) == 1
    assert {r["flow"] for r in splits.rows} == {"Test"} and {r["split"] for r in splits.rows} == {
        "greeting"
    }


def test_a_conversation_counts_once_per_milestone_and_day() -> None:
    at = facts().now
    events = [
        {"kind": "milestone", "at": at, "conversation_id": "c1", "flow": "F", "milestone": "m"},
        {"kind": "milestone", "at": at, "conversation_id": "c1", "flow": "F", "milestone": "m"},
        {"kind": "milestone", "at": at, "conversation_id": "c2", "flow": "F", "milestone": "m"},
        {"kind": "milestone", "at": at, "conversation_id": "c3", "flow": "G", "milestone": "m"},
    ]
    milestones, _ = flow_reports(events, Scope())
    assert [(r["flow"], r["conversations"]) for r in milestones.rows] == [("F", 2), ("G", 1)]
    outside, _ = flow_reports(events, Scope(start=at + timedelta(seconds=1)))
    assert outside.rows == []


def test_flowlang_report_flows_prints_both_tables(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from flowlang.cli import main

    store = SqliteStore(str(tmp_path / "cc.db"))
    engine, _sent = make_engine(SPLIT + 'route to queue "Retail"', store=store)
    for n in range(3):
        engine.handle(message("hi", sender=f"4477009000{n:02}"))
    store.close()
    result = CliRunner().invoke(
        main, ["report", "flows", "--store", str(tmp_path / "cc.db"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert '"milestone": "started"' in result.output and '"conversations": 3' in result.output
    assert '"split": "greeting"' in result.output
