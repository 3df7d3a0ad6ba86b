"""Where an Engine's parts are put together: the one place that chooses the built-in store,
ACD, channel policy, adapters, bots, data actions, accounts and schedules. The runtime itself
has no defaults; a host that wants other parts passes them here (or builds `Ports` itself)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flowlang.acd import SkillsAcd
from flowlang.channels.engine_policy import policy_for_deployment
from flowlang.channels.registry import builtin_registry
from flowlang.events import EventKind, media_type
from flowlang.runtime.accounts import Accounts
from flowlang.runtime.delivery import RetryPolicy
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import (
    MemoryStore,
    RecordingAdapter,
    RecordingBots,
    ScriptedDataActions,
)
from flowlang.runtime.ports import (
    AccountDirectory,
    Acd,
    Bots,
    Clock,
    ConversationStore,
    DataActions,
    OutboundAdapter,
    Ports,
    ReplyPolicy,
    ScheduleOracle,
)
from flowlang.runtime.program import Program

if TYPE_CHECKING:
    from flowlang.config import Deployment


def assemble_engine(
    program: Program,
    deployment: Deployment | None = None,
    *,
    store: ConversationStore | None = None,
    acd: Acd | None = None,
    bots: Bots | None = None,
    data_actions: DataActions | None = None,
    adapters: Sequence[OutboundAdapter] = (),
    policy: ReplyPolicy | None = None,
    schedule_state: ScheduleOracle | None = None,
    accounts: AccountDirectory | None = None,
    identity_kind: Callable[[str], str] | None = None,
    address_of: Callable[[str], str] | None = None,
    media_of: Callable[[str, EventKind], str] | None = None,
    params: dict[str, Any] | None = None,
    threading_window: timedelta | None = None,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
    deliver: bool = True,
) -> Engine:
    """An Engine for `program` with the parts given, and the built-in ones for `deployment`
    for the rest: an in-memory store, the skills ACD with the deployment's queues and agents,
    the channel registry's rules with the deployment's overrides, a recording adapter (the
    messages stay in memory: give real adapters to send), bots and data actions that only
    record, the deployment's accounts and schedules."""
    ports = Ports(
        store=store if store is not None else MemoryStore(),
        acd=acd if acd is not None else SkillsAcd.from_deployment(deployment),
        bots=bots if bots is not None else RecordingBots(),
        data_actions=data_actions if data_actions is not None else ScriptedDataActions(),
        adapters=list(adapters) or [RecordingAdapter()],
        policy=policy if policy is not None else policy_for_deployment(deployment),
        schedule_state=schedule_state or deployment_schedules(deployment),
        accounts=accounts if accounts is not None else Accounts.from_deployment(deployment),
        identity_kind=identity_kind or identity_kinds(),
        address_of=address_of or addresses(),
        media_of=media_of or media_of_channel,
    )
    return Engine(
        program,
        ports,
        params=params,
        threading_window=threading_window,
        clock=clock,
        retry=retry,
        deliver=deliver,
    )


def deployment_schedules(deployment: Deployment | None) -> ScheduleOracle:
    """open / closed / holiday / emergency for a deployment schedule at a time; a schedule the
    deployment does not have (or no deployment) is open."""

    def state_at(name: str, now: datetime) -> str:
        if deployment is None or name not in deployment.schedules:
            return "open"
        return str(deployment.schedules[name].state_at(now))

    return state_at


def identity_kinds() -> Callable[[str], str]:
    """Channel -> the identity kind its user ids belong to (x_dm and x_public: "x")."""
    registry = builtin_registry()
    return lambda channel: registry[channel].namespace if channel in registry else channel


def addresses() -> Callable[[str], str]:
    """Channel -> how it addresses a customer: "phone" (E.164), "phone_digits" (E.164 without
    the +, WhatsApp's wa_id) or "id"."""
    registry = builtin_registry()
    return lambda channel: registry[channel].address if channel in registry else "id"


def media_of_channel(channel: str, kind: EventKind) -> str:
    """The ACD media type of every event on `channel` (e.g. "message", "social")."""
    return media_type(channel)
