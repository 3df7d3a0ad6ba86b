"""Property: customers are joined by proven identities only, never by claims, in any order."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlang.runtime.memory import MemoryStore
from flowlang.runtime.ports import ConversationStore
from flowlang.store import SqliteStore
from flowlang.store.postgres import PostgresStore
from tests.postgres_server import empty
from tests.store.helpers import T0

SENDERS = [("web", "v1"), ("messenger", "psid-2"), ("line", "U3"), ("x_dm", "4")]
VALUES = ["12345678", "87654321", "11112222"]
# (sender index, account number index, proven?)
STEPS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.booleans()), min_size=1, max_size=12
)
STORES: dict[str, Callable[[], ConversationStore]] = {
    "memory": MemoryStore,
    "sqlite": lambda: SqliteStore(":memory:"),
}


def _expected_groups(steps: list[tuple[int, int, bool]]) -> set[frozenset[int]]:
    """Senders joined by the values each proved (union-find by hand)."""
    group = list(range(len(SENDERS)))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    owner: dict[int, int] = {}
    for sender, value, proven in steps:
        if not proven:
            continue
        if value in owner:
            group[root(sender)] = root(owner[value])
        else:
            owner[value] = sender
    found: dict[int, set[int]] = {}
    for i in range(len(SENDERS)):
        found.setdefault(root(i), set()).add(i)
    return {frozenset(g) for g in found.values()}


@pytest.mark.parametrize("kind", sorted(STORES))
@settings(max_examples=60, deadline=None)
@given(steps=STEPS)
def test_only_proven_identities_join_customers(
    kind: str, steps: list[tuple[int, int, bool]]
) -> None:
    _only_proven_identities_join_customers(STORES[kind](), steps)


# One store for every example, emptied before each (faster than a schema each).
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_only_proven_identities_join_customers_on_postgres(
    postgres_store: PostgresStore, steps: list[tuple[int, int, bool]]
) -> None:
    empty(postgres_store)
    _only_proven_identities_join_customers(postgres_store, steps)


def _only_proven_identities_join_customers(
    store: ConversationStore, steps: list[tuple[int, int, bool]]
) -> None:
    for channel, sender in SENDERS:
        store.resolve_customer(channel, sender, None, None)
    for n, (sender, value, proven) in enumerate(steps):
        channel, external = SENDERS[sender]
        customer = store.resolve_customer(channel, external, None, None)
        if proven:
            store.link_identity(customer.id, "account_number", VALUES[value])
        else:
            store.claim_identity(customer.id, "account_number", VALUES[value], f"conv{n}", T0)
    ids = [store.resolve_customer(c, s, None, None).id for c, s in SENDERS]
    groups: dict[str, set[int]] = {}
    for i, customer_id in enumerate(ids):
        groups.setdefault(customer_id, set()).add(i)
    assert {frozenset(g) for g in groups.values()} == _expected_groups(steps)
    proven_values = {VALUES[v] for _s, v, p in steps if p}
    for value in VALUES:
        assert (_owner(store, value) is not None) is (value in proven_values)


def _owner(store: ConversationStore, value: str) -> str | None:
    if isinstance(store, SqliteStore | PostgresStore):
        found = store.find_customer("account_number", value)
        return found.id if found else None
    assert isinstance(store, MemoryStore)
    return store.identities.get(("account_number", value))
