"""Timeouts grow with the machine's load, within bounds."""

from __future__ import annotations

import os

import pytest

from tests import patience


@pytest.mark.parametrize(
    ("load", "cores", "factor"),
    [(0.5, 2, 1.0), (2.0, 2, 1.0), (20.0, 2, 10.0), (6.0, 2, 3.0), (500.0, 2, patience.MOST)],
)
def test_a_timeout_grows_with_the_tasks_each_core_runs(
    monkeypatch: pytest.MonkeyPatch, load: float, cores: int, factor: float
) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert patience.load_factor() == factor
    assert patience.scaled(30.0) == 30.0 * factor


def test_an_unknown_load_leaves_the_timeout_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    def unknown() -> tuple[float, float, float]:
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", unknown)
    assert patience.scaled(30.0) == 30.0
