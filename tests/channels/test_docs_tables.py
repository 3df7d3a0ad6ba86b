"""docs/channels.md's "The rules" and "Sources" tables against the channel registry, which is
the truth: every source it names is listed, each with its own URL, and no number in a rules row
is one the channel's registry entry does not hold."""

from __future__ import annotations

import re
from typing import Any

import pytest

from flowlang.channels.registry import ChannelRules, builtin_registry
from tests.channels.helpers import ROOT

DOC = (ROOT / "docs" / "channels.md").read_text("utf-8")
REGISTRY = builtin_registry()
NAMES = ("24 + 1",)
"""Phrases that name a rule rather than give a number (Messenger's old "24 + 1" policy)."""


def _table(heading: str) -> list[list[str]]:
    """The rows of the first table under `heading`, each as its cells."""
    lines = DOC[DOC.index(f"\n{heading}\n") :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def _numbers(value: Any) -> set[float]:
    """Every number in a registry value: its numbers, and those written in its text."""
    if isinstance(value, bool):
        return set()
    if isinstance(value, int | float):
        return {float(value)}
    if isinstance(value, str):
        return {float(n) for n in re.findall(r"\d+", value)}
    if isinstance(value, dict):
        return set().union(*(_numbers(v) for v in value.values()), set())
    if isinstance(value, list | tuple | set | frozenset):
        return set().union(*(_numbers(v) for v in value), set())
    return set()


def _held(rules: ChannelRules) -> set[float]:
    """The numbers a channel's entry holds, its vendor send settings and sources apart."""
    data = rules.model_dump(exclude={"send", "sources"})
    return _numbers(data)


def _written(row: list[str]) -> set[float]:
    """The numbers a rules row gives (after its channel's name), as written: 4,096 is 4096."""
    text = " | ".join(row[1:])
    for name in NAMES:
        text = text.replace(name, "")
    return {float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", text)}


def test_the_sources_table_is_every_source_of_the_registry_in_its_order() -> None:
    listed = [(row[0].strip("`"), row[1], row[2].strip("<>")) for row in _table("## Sources")]
    named = [
        (key, rule, url) for key, rules in REGISTRY.items() for rule, url in rules.sources.items()
    ]
    assert listed == named


RULES = _table("## The rules")


@pytest.mark.parametrize("row", RULES, ids=[row[0].split("`")[1] for row in RULES])
def test_each_number_in_a_rules_row_is_the_registrys(row: list[str]) -> None:
    rules = REGISTRY[row[0].split("`")[1]]
    assert _written(row) - _held(rules) == set(), f"{rules.key}: not in the registry"
    limit = row[5]
    assert limit == f"{rules.max_text:,}"
    carried = row[6].split(";")[0].split(", ")
    assert carried == sorted(set(rules.content) - {"text"})


def test_every_channel_has_a_rules_row() -> None:
    assert [row[0].split("`")[1] for row in RULES] == list(REGISTRY)


def test_a_number_the_registry_does_not_hold_is_found() -> None:
    """The check itself: a rules row saying 14 quick replies where Messenger holds 13 fails."""
    (row,) = [r for r in RULES if r[0].startswith("`messenger`")]
    wrong = [cell.replace("≤13 quick replies", "≤14 quick replies") for cell in row]
    assert _written(wrong) - _held(REGISTRY["messenger"]) == {14.0}
