"""The one "unknown name: did you mean X, else the choices" helper every check uses."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from flowlang.diagnostics import listing, suggest

ROOT = Path(__file__).resolve().parent.parent
OTHERWISE = "declare it first"
names = st.text(alphabet="abcdefghij_", min_size=1, max_size=12)


@given(name=names, candidates=st.lists(names, max_size=6))
def test_a_hint_is_a_close_candidate_other_than_the_name_or_the_fallback(
    name: str, candidates: list[str]
) -> None:
    hint = suggest(name, candidates, OTHERWISE)
    if hint != OTHERWISE:
        assert hint.startswith("did you mean '") and hint.endswith("'?")
        suggested = hint.removeprefix("did you mean '").removesuffix("'?")
        assert suggested in candidates and suggested != name


@given(name=st.text(alphabet="abcdefghij", min_size=3, max_size=12), data=st.data())
def test_a_one_letter_typo_of_the_only_candidate_is_suggested(
    name: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(name) - 1))
    typo = name[:at] + ("z" if name[at] != "z" else "y") + name[at + 1 :]
    assert suggest(typo, [name], OTHERWISE) == f"did you mean {name!r}?"


@given(name=st.text(alphabet="abc", min_size=2), other=st.text(alphabet="xyz", min_size=2))
def test_a_name_sharing_no_letter_with_the_choices_gets_the_fallback(name: str, other: str) -> None:
    assert suggest(name, [other], OTHERWISE) == OTHERWISE


@given(name=names)
def test_the_name_itself_is_never_suggested(name: str) -> None:
    assert suggest(name, [name], listing("states", [name])) == f"states: {name}"


def test_a_different_case_is_suggested_and_shown_as_the_caller_quotes_it() -> None:
    assert suggest("support", ["Sales", "Support"], OTHERWISE, show=lambda s: f'"{s}"') == (
        'did you mean "Support"?'
    )
    assert listing("outcomes", ["done", "failed"]) == "outcomes: done, failed"


def test_no_check_writes_its_own_did_you_mean() -> None:
    copies = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "flowlang").rglob("*.py")
        if path.name != "diagnostics.py" and "did you mean" in path.read_text("utf-8")
    ]
    assert copies == []
