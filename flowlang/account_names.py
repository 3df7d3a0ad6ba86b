"""How an account's name is compared wherever one is matched: the flow checker, the service's
intake, the engine, `flowlang send` and the senders all find an account by `account_key`."""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=4096)  # events name a few accounts over and over (the engine asks per message)
def account_key(name: str) -> str:
    """An account's name or id as events and the deployment are compared: NFKC, case folded,
    without the `+` of a phone number or the `@` of a handle ("+442079460000" and
    "442079460000", "@GbankSocial" and "gbanksocial" are the same account)."""
    if name.isascii():  # (most: NFKC leaves ASCII as it is, and folds its case as lower())
        key = name.strip().lower()
    else:
        key = unicodedata.normalize("NFKC", name).strip().casefold()
    return key[1:] if key.startswith(("+", "@")) else key
