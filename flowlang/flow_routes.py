"""Which of several flows a new conversation starts on: the flow whose `serve` lines name its
channel, account and kind of message (docs/service.md, "Several flows").

A `serve` target with an account matches the conversations of that account (by any name the
deployment's account answers to: `Account.answers_to`); one without, every account of the
channel. The most specific
match wins (an account named over the whole channel); among equally specific ones, the flow
given first. A conversation no flow serves starts on the first flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowlang.account_names import account_key
from flowlang.compiler.ir import TransferFlowArgs
from flowlang.events import EventKind
from flowlang.runtime.context import FlowChooser
from flowlang.runtime.program import Program

if TYPE_CHECKING:
    from flowlang.config import Deployment

# The `serve` scopes an event kind belongs to (an edit or a deletion: the kind of what it was).
_SCOPES = {
    EventKind.POST: ("posts", "mentions"),
    EventKind.COMMENT: ("comments",),
}


@dataclass(frozen=True)
class Route:
    """One `serve` target of a flow: channel, the account's names (empty: any) and the keys
    they are matched by (`account_key`), scopes."""

    flow: str
    channel: str
    accounts: frozenset[str]
    scopes: frozenset[str]
    order: int
    keys: frozenset[str]


class FlowRoutes:
    """Chooses the flow for (channel, account, event kind) from the flows' `serve` lines."""

    def __init__(self, programs: Sequence[Program], deployment: Deployment | None) -> None:
        self.default = programs[0].graph.name
        self.routes: list[Route] = []
        for order, program in enumerate(programs):
            for spec in program.graph.serve:
                for target in spec["targets"]:
                    names, keys = _account_names(deployment, target["channel"], target["account"])
                    self.routes.append(
                        Route(
                            program.graph.name,
                            target["channel"],
                            names,
                            frozenset(spec["scopes"]),
                            order,
                            keys,
                        )
                    )

    def __call__(self, channel: str, account: str, kind: EventKind | None) -> str:
        """The flow a conversation on `channel` / `account` starts on, for a `kind` event."""
        found = self.candidates(channel, account, kind)
        return found[0] if found else self.default

    def candidates(self, channel: str, account: str, kind: EventKind | None) -> list[str]:
        """Every flow that serves it, the one chosen first."""
        scopes = _SCOPES.get(kind, ("messages",)) if kind is not None else None
        key = account_key(account)
        matches = [
            r
            for r in self.routes
            if r.channel == channel
            and (not r.keys or key in r.keys)
            and (scopes is None or r.scopes & set(scopes))
        ]
        matches.sort(key=lambda r: (not r.accounts, r.order))
        out: list[str] = []
        for route in matches:
            if route.flow not in out:
                out.append(route.flow)
        return out

    def overlaps(self) -> list[str]:
        """A sentence for each channel, account and scope that several flows serve equally
        specifically (the first given takes it)."""
        seen: dict[tuple[str, frozenset[str], str], list[str]] = {}
        for route in self.routes:
            for scope in route.scopes:
                flows = seen.setdefault((route.channel, route.accounts, scope), [])
                if route.flow not in flows:
                    flows.append(route.flow)
        out = []
        for (channel, accounts, scope), flows in seen.items():
            if len(flows) > 1:
                where = f"{channel} {'/'.join(sorted(accounts))}".strip()
                others = ", ".join(repr(f) for f in flows[1:])
                out.append(f"{scope} on {where}: {flows[0]!r} takes them ({others} too)")
        return out


def unloaded_transfers(programs: Sequence[Program]) -> list[str]:
    """A sentence for each `transfer to flow` that names a flow not among `programs` (when it
    runs, the flow's `on error` is taken)."""
    loaded = {program.graph.name for program in programs}
    out = []
    for program in programs:
        for node in program.graph.nodes.values():
            if isinstance(node.args, TransferFlowArgs) and node.args.flow not in loaded:
                out.append(
                    f"{program.graph.name!r} line {node.source.line} transfers to flow "
                    f"{node.args.flow!r}, which is not loaded: that transfer takes the flow's "
                    "'on error'"
                )
    return out


def flow_chooser(deployment: Deployment | None) -> FlowChooser:
    """The Engine's `choose_flow` for `deployment`: FlowRoutes of the flows' current
    versions (made again when a version is published)."""
    made: dict[tuple[str, ...], FlowRoutes] = {}

    def choose(
        programs: Sequence[Program], channel: str, account: str, kind: EventKind | None
    ) -> str:
        key = tuple(p.graph.version for p in programs)
        routes = made.get(key)
        if routes is None:
            made.clear()
            routes = made[key] = FlowRoutes(programs, deployment)
        return routes(channel, account, kind)

    return choose


def _account_names(
    deployment: Deployment | None, channel: str, account: str | None
) -> tuple[frozenset[str], frozenset[str]]:
    """A `serve` target's account: its names as written and as the deployment gives them (to
    show), and the keys a conversation's account may have (every name the deployment's account
    answers to: name, id, X user id)."""
    if account is None:
        return frozenset(), frozenset()
    names, keys = {account}, {account_key(account)}
    known = deployment.account(channel, account) if deployment is not None else None
    if known is not None:
        names |= {known.name, *([known.id] if known.id else [])}
        keys |= known.answers_to()
    return frozenset(names), frozenset(keys)
