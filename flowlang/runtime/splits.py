"""Which branch of a percentage split a conversation takes: a stable hash (SHA-256, never
Python's `hash()`, which changes between processes) of the conversation's id and the split's
step id, as a bucket of 10,000; the same conversation always takes the same branch."""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def split_bucket(conversation_id: str, step_id: str) -> int:
    """0 to 9,999, spread evenly over conversations."""
    digest = hashlib.sha256(f"{conversation_id}\x00{step_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS
