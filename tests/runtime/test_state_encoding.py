"""The JSON form of a flow's values (`encode_value`, what `FlowState.to_json` stores): its
shortcut for plain values gives exactly what testing every kind in turn gives, and it reads
back as the values it was made from."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flowlang.runtime.state import FlowState, Waiting, decode_value, encode_value


class _Colour(StrEnum):
    RED = "red"


def _every_kind_in_turn(value: Any) -> Any:
    """The encoding as it was written before the shortcut: each kind tested in turn."""
    if isinstance(value, timedelta):
        return {"$duration": value.total_seconds()}
    if isinstance(value, datetime):
        return {"$time": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, dict):
        return {k: _every_kind_in_turn(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_every_kind_in_turn(v) for v in value]
    return value


_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.just(_Colour.RED),
    st.timedeltas(min_value=timedelta(days=-999), max_value=timedelta(days=999)),
    st.dates(),
    st.datetimes(timezones=st.just(UTC)),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(alphabet="abxyz", max_size=6), inner, max_size=4),
    ),
    max_leaves=20,
)


@given(_VALUES)
def test_the_shortcut_for_plain_values_encodes_as_testing_every_kind(value: Any) -> None:
    encoded = encode_value(value)
    expected = _every_kind_in_turn(value)
    assert encoded == expected
    assert json.dumps(encoded) == json.dumps(expected)  # the same types, not only equal
    assert [type(v) for v in _walk(encoded)] == [type(v) for v in _walk(expected)]


@given(_VALUES)
def test_an_encoded_value_reads_back_as_it_was(value: Any) -> None:
    back = decode_value(json.loads(json.dumps(encode_value(value))))
    assert back == _plain(value)


def _walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value, *(x for v in value.values() for x in _walk(v))]
    if isinstance(value, list):
        return [value, *(x for v in value for x in _walk(v))]
    return [value]


def _plain(value: Any) -> Any:
    """What JSON keeps of a value: tuples become lists, a duration its seconds' float."""
    if isinstance(value, timedelta):
        return timedelta(seconds=value.total_seconds())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_WAITING = st.one_of(
    st.none(),
    st.builds(
        Waiting,
        st.sampled_from(["answer", "bot", "queue", "agent", "data", "timer"]),
        st.text(alphabet="abc/:0123", min_size=1, max_size=12),
        st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
        st.one_of(st.none(), st.text(alphabet="abc#1", max_size=8)),
    ),
)


@given(
    version=st.text(alphabet="0123456789abcdef", max_size=16),
    waiting=_WAITING,
    variables=st.dictionaries(st.text(alphabet="abxyz", max_size=6), _VALUES, max_size=4),
)
def test_where_a_stored_state_resumes_reads_as_decoding_it_whole(
    version: str, waiting: Waiting | None, variables: dict[str, Any]
) -> None:
    """`FlowState.resumes_at` (what choosing the program reads: the version and the wait)
    gives what `from_json` gives for those, from the stored form, without decoding the rest."""
    stored = FlowState(version, "waiting", "start/0", waiting, variables).to_json()
    whole, where = FlowState.from_json(stored), FlowState.resumes_at(stored)
    assert (where.graph_version, where.waiting) == (whole.graph_version, whole.waiting)
    assert FlowState.resumes_at({}) == FlowState.from_json({}) == FlowState()
