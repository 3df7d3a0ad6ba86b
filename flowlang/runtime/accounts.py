"""A deployment's accounts as the engine reads them: a public account's keyword filter (is a
post actionable?) and the queues an account names, which are the flow's params of those names
for conversations on it. An event's account is found by the names the account answers to
(`Account.answers_to`), as the service's intake finds it: an X post named by the account's
numeric user id is the account named by its @handle.

A post on an account the deployment does not list, on a channel whose accounts filter posts,
is not actionable: there is no filter to pass, and the intake keeps such an event aside
anyway (a dead letter), so the engine is never the more permissive of the two.

The business's own handle or page is never a keyword: every post that mentions the account
contains it, so it would make every post actionable (the deployment check refuses it, and it
is left out here as well).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowlang.account_names import account_key
from flowlang.runtime.keywords import KeywordMatcher, normalise

if TYPE_CHECKING:
    from flowlang.config import Deployment

QUEUE_PARAMS = ("queue", "public_queue", "dm_queue")


@dataclass(frozen=True)
class AccountRules:
    """One account: the names events give it, its keyword filter and the queues it names."""

    channel: str
    account_id: str  # normalised
    names: frozenset[str]  # the names it answers to, as `account_key`s
    keywords: tuple[str, ...] = ()
    queues: Mapping[str, str] = field(default_factory=dict)

    def own(self, keyword: str) -> bool:
        """Whether `keyword` mentions this account itself (its @handle, or its id)."""
        key = normalise(keyword.strip())
        return (key.startswith("@") and account_key(key) in self.names) or key == self.account_id


class Accounts:
    """Every account of a deployment, found by channel and the name or id events carry."""

    def __init__(self, accounts: Iterable[AccountRules] = ()) -> None:
        self._by_name: dict[tuple[str, str], AccountRules] = {}
        self._matchers: dict[int, KeywordMatcher] = {}
        self._filtered: set[str] = set()  # the channels with an account that filters posts
        for account in accounts:
            for name in account.names:
                self._by_name[(account.channel, name)] = account
            keywords = [k for k in account.keywords if not account.own(k)]
            if keywords:
                self._matchers[id(account)] = KeywordMatcher([(keywords, [])])
                self._filtered.add(account.channel)

    @classmethod
    def from_deployment(cls, deployment: Deployment | None) -> Accounts:
        if deployment is None:
            return cls()
        return cls(
            AccountRules(
                channel=key,
                account_id=normalise(account.id or ""),
                names=account.answers_to(),
                keywords=tuple(account.keywords),
                queues={p: q for p in QUEUE_PARAMS if (q := getattr(account, p)) is not None},
            )
            for key, channel in deployment.channels.items()
            for account in channel.accounts
        )

    def find(self, channel: str, account: str) -> AccountRules | None:
        """The account of `channel` that answers to `account` (a name, id, number or handle)."""
        return self._by_name.get((channel, account_key(account)))

    def actionable(self, channel: str, account: str, text: str) -> bool:
        """Whether a post on `account` matches its keyword filter (True without a filter;
        False for an account not listed on a channel whose accounts filter posts)."""
        if not self._matchers:  # no account filters on keywords (most deployments)
            return True
        found = self.find(channel, account)
        if found is None:
            return channel not in self._filtered
        matcher = self._matchers.get(id(found))
        return matcher is None or bool(matcher.matches(text))

    def params(self, channel: str, account: str) -> Mapping[str, Any]:
        """The queues the account names, as values of the flow's params of those names."""
        if not self._by_name:
            return {}
        found = self.find(channel, account)
        return found.queues if found is not None else {}
