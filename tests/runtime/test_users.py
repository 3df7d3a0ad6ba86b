"""API tokens: random, long, and only the very token authenticates its user."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from flowlang.runtime.memory import MemoryStore
from flowlang.runtime.users import TOKEN_BYTES, TOKEN_PREFIX, authenticate, new_token, token_hash

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOKEN = new_token()
USERS = MemoryStore()
USERS.add_user("alice", "agent", token_hash(TOKEN), T0)


def test_a_token_is_the_prefix_and_at_least_32_random_bytes() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert TOKEN_BYTES >= 32
    assert all(t.startswith(TOKEN_PREFIX) and len(t) == len(TOKEN_PREFIX) + 43 for t in tokens)


@given(st.text(max_size=80))
def test_no_other_string_authenticates(guess: str) -> None:
    found = authenticate(USERS, guess, T0)
    assert (found is not None) == (guess == TOKEN)


@given(st.integers(min_value=0, max_value=len(TOKEN) - 1), st.characters())
def test_a_token_changed_in_one_character_authenticates_no_one(index: int, char: str) -> None:
    changed = TOKEN[:index] + char + TOKEN[index + 1 :]
    if changed != TOKEN:
        assert authenticate(USERS, changed, T0) is None
    assert authenticate(USERS, TOKEN, T0) is not None
