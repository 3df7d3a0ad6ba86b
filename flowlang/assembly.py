"""Where an Engine's parts are put together: the one place that chooses the built-in store,
ACD, channel policy, adapters, bots, data actions, accounts and schedules. The runtime itself
has no defaults; a host that wants other parts passes them here (or builds `Ports` itself)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from flowlang.acd import SkillsAcd
from flowlang.channels.engine_policy import policy_for_deployment
from flowlang.channels.registry import builtin_registry
from flowlang.events import EventKind, media_type
from flowlang.flow_routes import flow_chooser
from flowlang.runtime.accounts import Accounts
from flowlang.runtime.context import FlowChooser
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
    from typing_extensions import Unpack

    from flowlang.config import Deployment


class EngineParts(TypedDict, total=False):
    """What a host may give `assemble_engine` / `Project.engine`; the rest is built in."""

    store: ConversationStore
    acd: Acd
    bots: Bots
    data_actions: DataActions
    adapters: Sequence[OutboundAdapter]
    policy: ReplyPolicy
    schedule_state: ScheduleOracle
    accounts: AccountDirectory
    identity_kind: Callable[[str], str]
    address_of: Callable[[str], str]
    media_of: Callable[[str, EventKind], str]
    params: Mapping[str, Any]
    threading_window: timedelta
    clock: Clock
    retry: RetryPolicy
    deliver: bool
    flows: Sequence[Program]
    choose_flow: FlowChooser


def assemble_engine(
    program: Program, deployment: Deployment | None = None, **parts: Unpack[EngineParts]
) -> Engine:
    """An Engine for `program` with the parts given, and the built-in ones for `deployment`
    for the rest: an in-memory store, the skills ACD with the deployment's queues and agents,
    the channel registry's rules with the deployment's overrides, a recording adapter (the
    messages stay in memory: give real adapters to send), bots and data actions that only
    record, the deployment's accounts and schedules. A part it does not know is refused
    (`TypeError`), never ignored."""
    unknown = sorted(set(parts) - set(EngineParts.__annotations__))
    if unknown:
        known = ", ".join(EngineParts.__annotations__)
        raise TypeError(f"assemble_engine: no part named {', '.join(unknown)} (parts: {known})")
    store = parts.get("store")
    flows = list(parts.get("flows", ()))
    acd = parts.get("acd")
    bots = parts.get("bots")
    data_actions = parts.get("data_actions")
    policy = parts.get("policy")
    accounts = parts.get("accounts")
    ports = Ports(
        store=store if store is not None else MemoryStore(),
        acd=acd if acd is not None else SkillsAcd.from_deployment(deployment),
        bots=bots if bots is not None else RecordingBots(),
        data_actions=data_actions if data_actions is not None else ScriptedDataActions(),
        adapters=list(parts.get("adapters", ())) or [RecordingAdapter()],
        policy=policy if policy is not None else policy_for_deployment(deployment),
        schedule_state=parts.get("schedule_state") or deployment_schedules(deployment),
        accounts=accounts if accounts is not None else Accounts.from_deployment(deployment),
        identity_kind=parts.get("identity_kind") or identity_kinds(),
        address_of=parts.get("address_of") or addresses(),
        media_of=parts.get("media_of") or media_of_channel,
        names=deployment_names(deployment),
    )
    return Engine(
        program,
        ports,
        params=parts.get("params"),
        threading_window=parts.get("threading_window", threading_window(program, deployment)),
        clock=parts.get("clock"),
        retry=parts.get("retry"),
        deliver=parts.get("deliver", True),
        flows=flows,
        choose_flow=parts.get("choose_flow") or (flow_chooser(deployment) if flows else None),
    )


def threading_window(program: Program, deployment: Deployment | None) -> timedelta | None:
    """The deployment's threading window, or the flow's own where it declares a shorter one;
    None without a deployment (the Engine then takes the flow's, else 72 hours)."""
    if deployment is None:
        return None
    seconds = program.graph.threading_window_seconds
    if seconds is None:
        return deployment.threading_window
    return min(deployment.threading_window, timedelta(seconds=seconds))


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
    kinds = {key: rules.namespace for key, rules in builtin_registry().items()}
    return lambda channel: kinds.get(channel, channel)


def addresses() -> Callable[[str], str]:
    """Channel -> how it addresses a customer: "phone" (E.164), "phone_digits" (E.164 without
    the +, WhatsApp's wa_id) or "id"."""
    registry = builtin_registry()
    return lambda channel: registry[channel].address if channel in registry else "id"


def media_of_channel(channel: str, kind: EventKind) -> str:
    """The ACD media type of every event on `channel` (e.g. "message", "social")."""
    return media_type(channel)


def deployment_names(deployment: Deployment | None) -> Callable[[str, str], bool]:
    """Whether the deployment has a queue, skill, agent or language of a name (without a
    deployment, every name is taken as known)."""
    if deployment is None:
        return lambda _kind, _name: True
    agents = deployment.agents.values()
    names: dict[str, frozenset[str]] = {
        "queue": frozenset(deployment.queues),
        "agent": frozenset(deployment.agents),
        "skill": frozenset(deployment.skills).union(*(a.skills for a in agents)),
        "language": frozenset(deployment.languages).union(*(a.languages for a in agents)),
    }
    return lambda kind, name: name in names.get(kind, frozenset({name}))
