"""`flowlang users add / list / revoke`, as an operator runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowlang.cli import main
from flowlang.runtime.users import TOKEN_PREFIX, authenticate, token_hash
from flowlang.store import SqliteStore

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOYMENT = str(ROOT / "examples" / "deployment.yaml")
NOW = datetime.now(UTC)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_add_prints_the_token_once_and_the_store_keeps_only_its_hash(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    code, out, err = invoke(
        "users", "add", "alice", "--role", "agent", "--store", str(db), "-d", DEPLOYMENT
    )
    assert code == 0, out + err
    token = out.strip()
    assert token.startswith(TOKEN_PREFIX) and len(token) >= len(TOKEN_PREFIX) + 43
    assert "shown only now" in err
    with SqliteStore(db) as store:
        user = authenticate(store, token, NOW)
        assert user is not None and (user.name, user.role) == ("alice", "agent")
        assert user.token_hash == token_hash(token)
        stored = store.db.execute("SELECT * FROM users").fetchall()
    assert token not in repr(stored)
    _, listed, _ = invoke("users", "list", "--store", str(db))
    assert "alice  agent" in listed and token not in listed


def test_two_tokens_are_never_the_same(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    _, first, _ = invoke("users", "add", "sam", "--role", "supervisor", "--store", db)
    _, second, _ = invoke("users", "add", "ada", "--role", "admin", "--store", db)
    assert first.strip() != second.strip()


def test_revoke_ends_a_token_and_list_shows_it(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    _, out, _ = invoke("users", "add", "sam", "--role", "supervisor", "--store", str(db))
    code, said, _ = invoke("users", "revoke", "sam", "--store", str(db))
    assert code == 0 and "revoked sam's token" in said
    with SqliteStore(db) as store:
        assert authenticate(store, out.strip(), NOW) is None
    code, said, _ = invoke("users", "revoke", "sam", "--store", str(db))
    assert code == 0 and "already revoked" in said
    _, listed, _ = invoke("users", "list", "--store", str(db), "--format", "json")
    (row,) = json.loads(listed)
    assert row["name"] == "sam" and row["revoked_at"] is not None and "token" not in str(row)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["mallory", "--role", "agent", "-d", DEPLOYMENT], "'mallory' is not an agent of"),
        (["alice", "--role", "agent"], "--role agent needs a deployment file: give -d FILE"),
        (["alice", "--role", "root"], "'root' is not one of"),
    ],
)
def test_add_refuses_what_it_must_not_take_and_stores_nothing(
    tmp_path: Path, args: list[str], problem: str
) -> None:
    db = tmp_path / "s.db"
    code, out, err = invoke("users", "add", *args, "--store", str(db))
    assert code == 2 and problem in err and TOKEN_PREFIX not in out
    with SqliteStore(db) as store:
        assert store.users() == []


def test_adding_a_user_who_has_a_token_is_refused_until_it_is_revoked(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    _, first, _ = invoke("users", "add", "ada", "--role", "admin", "--store", db)
    code, out, err = invoke("users", "add", "ada", "--role", "admin", "--store", db)
    assert code == 2 and "already has a token" in err and TOKEN_PREFIX not in out
    invoke("users", "revoke", "ada", "--store", db)
    code, second, _ = invoke("users", "add", "ada", "--role", "admin", "--store", db)
    assert code == 0
    with SqliteStore(db) as store:
        assert authenticate(store, first.strip(), NOW) is None
        assert authenticate(store, second.strip(), NOW) is not None


def test_revoking_someone_unknown_is_a_usage_error(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    invoke("users", "add", "ada", "--role", "admin", "--store", db)
    code, _, err = invoke("users", "revoke", "nobody", "--store", db)
    assert code == 2 and "there is no user 'nobody'" in err


def test_a_token_may_be_given_an_expiry_that_list_shows(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    code, out, err = invoke(
        "users", "add", "crm", "--role", "supervisor", "--store", str(db), "--expires-in", "90d"
    )
    assert code == 0, err
    assert "valid until" in err
    with SqliteStore(db) as store:
        user = store.user("crm")
        assert user is not None and user.expires_at is not None
        lasts = user.expires_at - user.created_at
        assert lasts == timedelta(days=90)
        assert authenticate(store, out.strip(), user.expires_at - timedelta(seconds=1)) == user
        assert authenticate(store, out.strip(), user.expires_at) is None
    _, listed, _ = invoke("users", "list", "--store", str(db), "--format", "json")
    (row,) = json.loads(listed)
    assert row["expires_at"] == user.expires_at.isoformat()
    _, text, _ = invoke("users", "list", "--store", str(db))
    assert f"expires {user.expires_at:%Y-%m-%d %H:%M}" in text


@pytest.mark.parametrize("written", ["soon", "0s", "-5m"])
def test_an_expiry_that_is_no_duration_is_refused_and_stores_nothing(
    tmp_path: Path, written: str
) -> None:
    db = tmp_path / "s.db"
    code, out, err = invoke(
        "users", "add", "crm", "--role", "supervisor", "--store", str(db), "--expires-in", written
    )
    assert code == 2 and "--expires-in" in err and TOKEN_PREFIX not in out
    with SqliteStore(db) as store:
        assert store.users() == []
