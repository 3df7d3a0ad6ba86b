"""A flow test's `expect:` mapping: takes the expectations and a dry-run's report, gives every way
the run differs from them.

`EXPECTATIONS` is the one table of keys and their checks, in the order they are checked: a key
exists only with its check, and `EXPECTATION_KEYS` (what an unknown key's message lists) is
derived from it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flowlang.harness.report import DryRunReport
from flowlang.runtime import effects as fx
from flowlang.runtime.ports import Delivery, RoutingNotice


@dataclass(frozen=True)
class RunFacts:
    """What the checks read from a dry-run, worked out once."""

    report: DryRunReport
    effects: list[fx.Effect]
    route: fx.RouteToQueue | None
    sent: list[Delivery]
    held: list[Delivery]
    notices: list[RoutingNotice]

    @classmethod
    def of(cls, report: DryRunReport) -> RunFacts:
        effects = [e for s in report.steps for e in s.outcome.effects]
        routes = [e for e in effects if isinstance(e, fx.RouteToQueue)]
        deliveries = [d for s in report.steps for d in s.outcome.deliveries]
        return cls(
            report=report,
            effects=effects,
            route=routes[-1] if routes else None,
            sent=[d for d in deliveries if d.status in ("sent", "degraded")],
            held=[d for d in deliveries if d.status not in ("sent", "degraded")],
            notices=[n for s in report.steps for n in s.outcome.notices],
        )

    def lines(self) -> list[int]:
        """The flow lines the run passed, in order."""
        return [t.line for s in self.report.steps for t in s.outcome.trace if t.line]


Check = Callable[[Any, RunFacts], list[str]]
"""An expectation's check: the expected value and the run's facts -> its failures."""


def _compare(what: str, expected: Any, actual: Any) -> list[str]:
    return [] if expected == actual else [f"{what}: expected {expected!r}, got {actual!r}"]


def _routed_to(expected: Any, run: RunFacts) -> list[str]:
    return _compare("routed_to", expected, run.route.queue if run.route else None)


def _skills(expected: Any, run: RunFacts) -> list[str]:
    actual = sorted(s["skill"] for s in run.route.skills) if run.route else None
    return _compare("skills", sorted(map(str, expected)), actual)


def _priority(expected: Any, run: RunFacts) -> list[str]:
    return _compare("priority", float(expected), run.route.priority if run.route else None)


def _language(expected: Any, run: RunFacts) -> list[str]:
    return _compare("language", expected, run.route.language if run.route else None)


def _agent(expected: Any, run: RunFacts) -> list[str]:
    agents = [n.agent for n in run.notices if n.kind == "accepted"]
    return _compare("agent", expected, agents[-1] if agents else None)


def _bot(expected: Any, run: RunFacts) -> list[str]:
    bots = [e.bot for e in run.effects if isinstance(e, fx.HandOffToBot)]
    return _compare("bot", expected, bots[-1] if bots else None)


def _replies(expected: Any, run: RunFacts) -> list[str]:
    texts = [
        str(d.message.content.get("text") or d.message.content.get("name") or "") for d in run.sent
    ]
    return _in_order("replies", [str(p) for p in expected], texts)


def _no_replies(expected: Any, run: RunFacts) -> list[str]:
    if not expected:
        return []
    return _compare("replies sent", [], [d.message.content.get("text") for d in run.sent])


def _blocked(expected: Any, run: RunFacts) -> list[str]:
    return _compare("blocked", [str(b) for b in expected], [d.reason_code for d in run.held])


def _path(expected: Any, run: RunFacts) -> list[str]:
    lines = run.lines()
    missing = _subsequence([int(x) for x in expected], lines)
    if missing is None:
        return []
    return [
        f"path: expected to pass line {missing} (in this order: "
        f"{list(expected)}); it passed {lines}"
    ]


def _notes(expected: Any, run: RunFacts) -> list[str]:
    notes = [s.outcome.note for s in run.report.steps if s.outcome.note]
    return _in_order("notes", [str(p) for p in expected], notes)


def _not_actionable(expected: Any, run: RunFacts) -> list[str]:
    marked = any(isinstance(e, fx.MarkNotActionable) for e in run.effects)
    return _compare("not_actionable", bool(expected), marked)


def _milestones(expected: Any, run: RunFacts) -> list[str]:
    reached = [e.milestone for e in run.effects if isinstance(e, fx.MilestoneReached)]
    return _compare("milestones", [str(m) for m in expected], reached)


def _transferred_to(expected: Any, run: RunFacts) -> list[str]:
    """The flows `transfer to flow` handed the conversation to, in order (one name: the list
    of that one)."""
    wanted = [str(f) for f in expected] if isinstance(expected, list) else [str(expected)]
    done = [e.flow for e in run.effects if isinstance(e, fx.TransferToFlow)]
    return _compare("transferred_to", wanted, done)


def _split(expected: Any, run: RunFacts) -> list[str]:
    if not isinstance(expected, dict):
        return [f"split: expected a mapping of split name to branch, got {expected!r}"]
    taken: dict[str, list[str]] = {}
    for e in run.effects:
        if isinstance(e, fx.SplitTaken):
            taken.setdefault(e.split, []).append(e.branch)
    return [
        f"split {name!r}: expected branch {branch!r}, took {taken.get(str(name), [])!r}"
        for name, branch in expected.items()
        if taken.get(str(name), [])[-1:] != [str(branch)]
    ]


def _ended(expected: Any, run: RunFacts) -> list[str]:
    ends = [e.reason for e in run.effects if isinstance(e, fx.EndFlow)]
    return _compare("ended", expected, ends[-1] if ends else None)


def _failed(expected: Any, run: RunFacts) -> list[str]:
    errors = [e.code for e in run.effects if isinstance(e, fx.FlowFailed)]
    return _compare("failed", expected, errors[-1] if errors else None)


def _survey(expected: Any, run: RunFacts) -> list[str]:
    """The survey answers stored, by "<survey>.<question>"; a text may be a pattern."""
    if not isinstance(expected, dict):
        return [f"survey: expected a mapping of answers, e.g. {{CSAT.score: 4}}, got {expected!r}"]
    stored = {
        f"{e.survey}.{e.question}": e.value for e in run.effects if isinstance(e, fx.SurveyAnswer)
    }
    failures = []
    for key, want in expected.items():
        if str(key) not in stored:
            failures.append(f"survey: no answer stored for {key!r}; stored {stored!r}")
        elif not _answer_matches(want, stored[str(key)]):
            failures.append(f"survey {key}: expected {want!r}, got {stored[str(key)]!r}")
    extra = sorted(set(stored) - {str(k) for k in expected})
    if extra:
        failures.append(f"survey: answers stored that the test does not expect: {extra}")
    return failures


def _answer_matches(want: Any, got: Any) -> bool:
    if isinstance(want, str) and isinstance(got, str):
        return fnmatch.fnmatchcase(got, want)
    return bool(want == got)


EXPECTATIONS: dict[str, Check] = {
    "routed_to": _routed_to,
    "skills": _skills,
    "priority": _priority,
    "language": _language,
    "agent": _agent,
    "bot": _bot,
    "replies": _replies,
    "no_replies": _no_replies,
    "blocked": _blocked,
    "path": _path,
    "notes": _notes,
    "not_actionable": _not_actionable,
    "milestones": _milestones,
    "transferred_to": _transferred_to,
    "split": _split,
    "ended": _ended,
    "failed": _failed,
    "survey": _survey,
}
EXPECTATION_KEYS = tuple(EXPECTATIONS)


def check_expectations(expect: dict[str, Any], report: DryRunReport) -> list[str]:
    """Every way the run differs from what the test expects (empty: it passed)."""
    failures = [
        f"unknown expectation {k!r} (use: {', '.join(EXPECTATION_KEYS)})"
        for k in expect
        if k not in EXPECTATIONS
    ]
    run = RunFacts.of(report)
    for key, check in EXPECTATIONS.items():
        if key in expect:
            failures.extend(check(expect[key], run))
    return failures


def _in_order(what: str, patterns: list[str], texts: list[str]) -> list[str]:
    position = 0
    for pattern in patterns:
        while position < len(texts) and not fnmatch.fnmatchcase(texts[position], pattern):
            position += 1
        if position == len(texts):
            return [f"{what}: no reply matching {pattern!r} (in order); sent {texts!r}"]
        position += 1
    return []


def _subsequence(wanted: list[int], seen: list[int]) -> int | None:
    """The first wanted line not found in order in `seen`, or None."""
    iterator = iter(seen)
    for line in wanted:
        if not any(line == s for s in iterator):
            return line
    return None
