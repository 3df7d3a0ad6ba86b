"""The stores' JSON text (`sql._dumps`, written by orjson): it reads back exactly as what the
standard encoder wrote before it reads back, for every value a store keeps, including what
orjson does not write itself (integers past 64 bits, lone surrogates, datetime subclasses)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml.timestamp import TimeStamp

from flowlang.store.sql import _ENCODER, _dumps

_zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), None])
_times = st.builds(
    lambda moment, zone: moment.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    _zones,
)
_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | _times
    | st.timedeltas(min_value=timedelta(days=-999), max_value=timedelta(days=999))
    | st.frozensets(st.text(max_size=3), max_size=3)
)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        | st.dictionaries(st.integers(min_value=-(2**40), max_value=2**40), inner, max_size=3)
    ),
    max_leaves=20,
)


@given(_values)
def test_what_is_stored_reads_back_as_the_standard_encoders_text_did(value: Any) -> None:
    text = _dumps(value)
    assert json.loads(text) == json.loads(_ENCODER.encode(value))


@given(st.dictionaries(st.text(max_size=5), st.integers(), min_size=2, max_size=6))
def test_keys_are_written_in_order(value: dict[str, int]) -> None:
    """Sorted keys: the same value is always the same text (sealed and compared bodies)."""
    assert list(json.loads(text := _dumps(value))) == sorted(value)
    assert text == _dumps(dict(reversed(value.items())))


def test_times_are_iso_text_whatever_their_class() -> None:
    moment = datetime(2026, 3, 2, 9, 0, 0, 1234, tzinfo=UTC)
    stamp = TimeStamp(2026, 3, 2, 9, 0, 0, tzinfo=UTC)  # a YAML file's time (ruamel)
    stored = json.loads(_dumps({"a": moment, "b": stamp}))
    assert stored == {"a": "2026-03-02T09:00:00.001234+00:00", "b": "2026-03-02T09:00:00+00:00"}


def test_what_no_json_can_hold_is_refused_with_its_type() -> None:
    with pytest.raises(TypeError, match="cannot store object"):
        _dumps({"a": object()})
