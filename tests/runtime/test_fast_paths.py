"""The engine's shortcuts for the common case give what the general code gives: a customer
resolved by the in-memory store (a new one made in one step), an ACD requirement at the
innermost ring (nothing relaxed, nothing copied), and a flow state's stored values decoded
(plain values, and dictionaries of more than one key, without testing for a duration, a time
or a date)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.acd.model import Ring, requirement_at_ring
from flowlang.runtime.memory import MemoryStore
from flowlang.runtime.phones import normalise_phone
from flowlang.runtime.ports import CustomerView, sender_and_conversation
from flowlang.runtime.state import decode_value


class _ResolvedAsBefore:
    """`MemoryStore.resolve_customer` as it was written before its shortcut."""

    def __init__(self) -> None:
        self.ids = 0
        self.identities: dict[tuple[str, str], str] = {}
        self.customers: dict[str, dict[str, object]] = {}

    def resolve(
        self, channel: str, external_id: str, phone: str | None, name: str | None
    ) -> CustomerView:
        e164 = normalise_phone(phone)
        known_by: set[str] = set()
        customer_id = self.identities.get((channel, external_id))
        if customer_id is not None:
            known_by.add("platform id")
        elif e164 and ("phone", e164) in self.identities:
            customer_id = self.identities[("phone", e164)]
            known_by.add("phone")
        new = customer_id is None
        if customer_id is None:
            self.ids += 1
            customer_id = f"c{self.ids}"
            self.customers[customer_id] = {"name": None, "phone": None}
        customer = self.customers[customer_id]
        customer["name"] = customer["name"] or name
        customer["phone"] = customer["phone"] or e164
        for key in [(channel, external_id)] + ([("phone", e164)] if e164 else []):
            self.identities.setdefault(key, customer_id)
        return CustomerView(
            customer_id,
            customer["name"],  # type: ignore[arg-type]
            customer["phone"],  # type: ignore[arg-type]
            frozenset(known_by),
            new,
        )


_SENDERS = st.tuples(
    st.sampled_from(["whatsapp", "web", "sms"]),
    st.sampled_from(["a", "b", "c", "447700900001"]),
    st.sampled_from([None, "", "+447700900001", "447700900002", "not a phone"]),
    st.sampled_from([None, "", "Ana", "Bo"]),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(_SENDERS, min_size=1, max_size=12))
def test_the_memory_store_resolves_customers_as_before(
    senders: list[tuple[str, str, str | None, str | None]],
) -> None:
    store, before = MemoryStore(), _ResolvedAsBefore()
    for sender in senders:
        assert store.resolve_customer(*sender) == before.resolve(*sender), sender
    assert store.identities == before.identities


_SKILLS = st.dictionaries(st.sampled_from(["billing", "french", "vip", "tech"]), st.integers(1, 5))


@given(
    skills=_SKILLS,
    language=st.sampled_from([None, "en", "fr"]),
    agents=st.sampled_from([None, 'agent.tier == "gold"']),
)
def test_a_requirement_at_the_innermost_ring_is_one_that_no_ring_relaxed(
    skills: dict[str, int], language: str | None, agents: str | None
) -> None:
    """No ring (the innermost) gives what a ring that relaxes nothing gives: the shortcut
    for it makes the same key the ACD's pools and waiting groups are found by."""
    no_op = Ring(timedelta(0))
    fast = requirement_at_ring("Retail", "message", skills, language, None, agents)
    general = requirement_at_ring("Retail", "message", skills, language, no_op, agents)
    assert fast == general
    assert hash(fast) == hash(general)
    assert fast.skills == tuple(sorted(skills.items()))


def _decoded_as_before(value: Any) -> Any:
    """`decode_value` as it was written before its shortcuts."""
    if isinstance(value, dict):
        if set(value) == {"$duration"}:
            return timedelta(seconds=value["$duration"])
        if set(value) == {"$time"}:
            return datetime.fromisoformat(value["$time"])
        if set(value) == {"$date"}:
            return date.fromisoformat(value["$date"])
        return {k: _decoded_as_before(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded_as_before(v) for v in value]
    return value


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.builds(lambda s: {"$duration": s}, st.floats(-1e6, 1e6)),
    st.builds(lambda t: {"$time": t.isoformat()}, st.datetimes(timezones=st.just(UTC))),
    st.builds(lambda d: {"$date": d.isoformat()}, st.dates()),
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["a", "b", "$time", "$date", "$duration"]), inner, max_size=3
        ),
    ),
    max_leaves=16,
)


@given(_JSON)
def test_a_stored_value_decodes_as_before(value: Any) -> None:
    """A state's stored values (and a dictionary that only looks like a duration, a time or
    a date, with another key beside) read back as they did before the shortcuts."""
    decoded, expected = _outcome(decode_value, value), _outcome(_decoded_as_before, value)
    assert decoded == expected
    assert repr(decoded) == repr(expected)  # the same types, not only equal


def _outcome(decode: Any, value: Any) -> Any:
    """What decoding gives, or the kind of error it raises (a "$time" that is not a time, a
    "$duration" too long for a timedelta)."""
    try:
        return decode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        return type(exc).__name__


class _WithoutOneCall:
    """The in-memory store without `sender_and_conversation`: asked the two calls in turn."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    def __getattr__(self, name: str) -> Any:
        if name == "sender_and_conversation":
            raise AttributeError(name)
        return getattr(self.inner, name)


_MESSAGES = st.lists(
    st.tuples(_SENDERS, st.sampled_from(["whatsapp", "web"]), st.integers(0, 200)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=80, deadline=None)
@given(_MESSAGES)
def test_the_memory_stores_one_call_threads_senders_as_the_two_calls_do(
    messages: list[tuple[tuple[str, str, str | None, str | None], str, int]],
) -> None:
    """Customers resolved and conversations found, started, continued and closed alike (a new
    customer's conversation started without looking for one), hours apart or within the
    threading window; each conversation's last agent carried over to the next."""
    one, two = MemoryStore(), _WithoutOneCall()
    now = datetime(2026, 3, 2, tzinfo=UTC)
    for number, (sender, channel, hours) in enumerate(messages):
        now += timedelta(hours=hours)
        found = [
            sender_and_conversation(store, *sender, channel, "acct", now, timedelta(hours=72))
            for store in (one, two)
        ]
        (customer, conv), (customer_too, conv_too) = found
        assert customer == customer_too
        assert vars(conv) == vars(conv_too)
        conv.last_agent = conv_too.last_agent = f"agent{number}"
    assert one.identities == two.inner.identities and one.current == two.inner.current
    assert {k: vars(v) for k, v in one.conversations.items()} == {
        k: vars(v) for k, v in two.inner.conversations.items()
    }
