"""API tokens: made at random, kept only as a hash, checked in constant time.

A token is 32 random bytes (`secrets.token_urlsafe`, 43 characters) after the prefix `flt_`, so
a leaked one is easy to recognise in logs and scanners. Stores keep its SHA-256 only. A plain
hash is right here, not a slow password hash (bcrypt, scrypt): the token has 256 bits of
entropy, so no dictionary or brute force can invert its hash, and a slow hash would only cost
every request time. A store lookup by hash tells a timing attacker nothing about the token
itself; the hash found is compared again with `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from flowlang.errors import InputError
from flowlang.runtime.ports import ROLES, User, UserDirectory

TOKEN_PREFIX = "flt_"
TOKEN_BYTES = 32
MAX_TOKEN = 200  # a token is 47 characters: anything much longer is no one's, unread
MAX_NAME = 100


def new_token() -> str:
    """A fresh API token, to be shown once and stored only as `token_hash(token)`."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The SHA-256 of a token, as hex: what a store keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def authenticate(users: UserDirectory, token: str, now: datetime) -> User | None:
    """The user a token belongs to; None when it is unknown, revoked or expired by `now`."""
    if not token.startswith(TOKEN_PREFIX) or not token.isascii() or len(token) > MAX_TOKEN:
        return None  # tokens are ASCII: anything else (a lone surrogate too) is no one's
    digest = token_hash(token)
    found = users.user_by_token_hash(digest)
    if found is None or not hmac.compare_digest(found.token_hash, digest):
        return None
    return found if in_force(found, now) else None


def in_force(user: User, now: datetime) -> bool:
    """Whether the user's token works at `now`: not revoked, not expired."""
    return user.revoked_at is None and (user.expires_at is None or now < user.expires_at)


def check_new_user(name: str, role: str, existing: User | None) -> None:
    """Refuse a user name or role a store must not take: `InputError` saying what is wrong."""
    if not name or len(name) > MAX_NAME or not name.isprintable() or name.strip() != name:
        raise InputError(
            f"user name {name!r} is not allowed: use 1-{MAX_NAME} printable characters, "
            "without spaces at either end"
        )
    if role not in ROLES:
        raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if existing is not None and existing.revoked_at is None:
        raise InputError(
            f"user {name!r} already has a token; revoke it first to give them a new one"
        )
