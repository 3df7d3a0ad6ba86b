"""Under CI a missing browser, database or tool fails the test; elsewhere it skips."""

from __future__ import annotations

import pytest

from tests.requirements import missing, under_ci


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes"])
def test_under_ci_a_missing_requirement_fails(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert under_ci()
    with pytest.raises(pytest.fail.Exception, match="required under CI: no server"):
        missing("no server")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_elsewhere_a_missing_requirement_skips(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert not under_ci()
    with pytest.raises(pytest.skip.Exception, match="no server"):
        missing("no server")
