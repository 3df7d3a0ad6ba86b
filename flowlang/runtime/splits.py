"""Which branch of a percentage split a conversation takes: a stable hash (SHA-256, never
Python's `hash()`, which changes between processes) of the conversation's id and the split's
name (its own, or its branch names), as a bucket of 10,000. The same conversation always takes
the same branch, also in a new version of the flow where steps were added or moved around the
split: only renaming the split (or, unnamed, its branches) draws again."""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def split_bucket(conversation_id: str, split_name: str) -> int:
    """0 to 9,999, spread evenly over conversations."""
    digest = hashlib.sha256(f"{conversation_id}\x00{split_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS
