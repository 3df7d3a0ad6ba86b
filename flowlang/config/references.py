"""Checks across the deployment's sections: every name used is declared, ids look right.

Runs after the models validate. Errors: FL505 unknown reference, FL506 duplicate names, FL514
template text that does not compile, FL519 one the sandbox refuses, FL515 phone numbers, FL516
handles, FL503 X user ids. Warnings: FL517 declarations nothing uses, FL518 environments that
set different parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

from flowlang import codes
from flowlang.account_names import account_key
from flowlang.config.models import Account, Deployment
from flowlang.config.positions import PositionIndex
from flowlang.diagnostics import Diagnostic, error, suggest, warning
from flowlang.templates import part_span, template_problems, unsafe_template_parts

PHONE_CHANNELS = frozenset({"whatsapp", "sms"})
HANDLE_CHANNELS = frozenset({"x_dm", "x_public"})
PORTFOLIO_CHANNELS = frozenset({"whatsapp"})
_HANDLE = re.compile(r"@[A-Za-z0-9_]{1,15}")
_X_USER_ID = re.compile(r"[0-9]{1,20}")


# Too complex (C901): to split.
def check(deployment: Deployment, index: PositionIndex) -> list[Diagnostic]:  # noqa: C901
    """All cross-reference problems of a validated deployment."""
    out: list[Diagnostic] = []
    d = deployment

    def refer(
        kind: str,
        name: str,
        declared: Iterable[str],
        path: tuple[str | int, ...],
        *,
        is_key: bool = False,
    ) -> None:
        names = list(declared)
        if name in names:
            return
        hint = suggest(name, names, f"declare it under `{kind}s:`")
        span = index.key_span(path) if is_key else index.value_span(path)
        out.append(
            error(codes.DEPLOYMENT_UNKNOWN_REFERENCE, f"unknown {kind} {name!r}", span, hint=hint)
        )

    out += _duplicates(d.skills, ("skills",), "skill", index)
    out += _duplicates(d.languages, ("languages",), "language", index)
    for queue_name, queue in d.queues.items():
        for i, member in enumerate(queue.members):
            refer("agent", member, d.agents, ("queues", queue_name, "members", i))
        for i, code in enumerate(queue.wrap_up_codes):
            if d.wrap_up_codes:
                refer(
                    "wrap-up code",
                    code,
                    d.wrap_up_codes,
                    ("queues", queue_name, "wrap_up_codes", i),
                )
    for agent_id, agent in d.agents.items():
        for skill in agent.skills:
            refer("skill", skill, d.skills, ("agents", agent_id, "skills", skill), is_key=True)
        for i, language in enumerate(agent.languages):
            refer("language", language, d.languages, ("agents", agent_id, "languages", i))
        for i, queue_name in enumerate(agent.queues):
            refer("queue", queue_name, d.queues, ("agents", agent_id, "queues", i))
        out += _attributes(agent_id, d, index)
        for media, count in agent.capacity.items():
            if count < 0:
                out.append(
                    error(
                        codes.DEPLOYMENT_BAD_VALUE,
                        f"capacity for {media} cannot be negative",
                        index.value_span(("agents", agent_id, "capacity", media)),
                    )
                )
    for channel_key, channel in d.channels.items():
        out += _channel(channel_key, d, index)
        out += _portfolios(channel_key, d, index)
        for i, account in enumerate(channel.accounts):
            for j, keyword in enumerate(account.keywords):
                word = keyword.strip().lower()
                own_handle = word.startswith("@") and account.is_named(word)
                if own_handle or word == (account.id or "").lower():
                    out.append(
                        error(
                            codes.DEPLOYMENT_BAD_VALUE,
                            f"{keyword!r} is this account's own handle: every post that "
                            "mentions the account contains it, so it would make every post "
                            "actionable",
                            index.value_span(
                                ("channels", channel_key, "accounts", i, "keywords", j)
                            ),
                            hint="list the words that make a post worth an agent's time",
                        )
                    )
            for field in ("queue", "public_queue", "dm_queue"):
                value = getattr(account, field)
                if value is not None:
                    refer("queue", value, d.queues, ("channels", channel_key, "accounts", i, field))
    for name, canned in d.canned_responses.items():
        for i, queue_name in enumerate(canned.queues):
            refer("queue", queue_name, d.queues, ("canned_responses", name, "queues", i))
        for problem in [*template_problems(canned.text), *unsafe_template_parts(canned.text)]:
            out.append(
                error(
                    codes.DEPLOYMENT_BAD_TEMPLATE,
                    f"canned response {name!r} is refused (its line {problem.line}): "
                    f"{problem.message}",
                    index.value_span(("canned_responses", name, "text")),
                    hint="Jinja2 text that may read {{ customer.name }}",
                )
            )
    for name, template in d.templates.items():
        if template.text is not None:
            for problem in template_problems(template.text):
                out.append(
                    error(
                        codes.DEPLOYMENT_BAD_TEMPLATE,
                        f"template {name!r} does not compile (its line {problem.line}): "
                        f"{problem.message}",
                        index.value_span(("templates", name, "text")),
                        hint="Jinja2 syntax: {{ customer.name }}, {% if ... %}...{% endif %}",
                    )
                )
            for problem in unsafe_template_parts(template.text):
                out.append(
                    error(
                        codes.DEPLOYMENT_UNSAFE_TEMPLATE,
                        f"template {name!r} is refused (its line {problem.line}): "
                        f"{problem.message}",
                        part_span(
                            index.value_span(("templates", name, "text")), template.text, problem
                        ),
                        "refused by the template sandbox",
                        hint=problem.hint,
                    )
                )
        for i, item in enumerate(template.items):
            label = item if isinstance(item, str) else item.title
            if not label.strip():
                path = (
                    "templates",
                    name,
                    "items",
                    i,
                    *(() if isinstance(item, str) else ("title",)),
                )
                out.append(
                    error(
                        codes.DEPLOYMENT_BAD_VALUE,
                        f"template {name!r}: item {i + 1}'s label is blank ({label!r}); the "
                        "customer has nothing to choose it by, and WhatsApp refuses a button "
                        "or list row without an id (its label)",
                        index.value_span(path),
                        hint="give each item words of its own, or remove it",
                    )
                )
        if template.text is None and template.whatsapp is None:
            out.append(
                error(
                    codes.DEPLOYMENT_BAD_TEMPLATE,
                    f"template {name!r} has neither `text` nor `whatsapp`",
                    index.key_span(("templates", name)),
                    hint="give the reply text, or the approved WhatsApp template it sends",
                )
            )
    for queue_name, queue in d.queues.items():
        previous = None
        for i, ring in enumerate(queue.bullseye):
            if isinstance(ring.remove_skills, list):
                for j, skill in enumerate(ring.remove_skills):
                    path = ("queues", queue_name, "bullseye", i, "remove_skills", j)
                    refer("skill", skill, d.skills, path)
            if previous is not None and ring.after <= previous:
                out.append(
                    error(
                        codes.DEPLOYMENT_BAD_VALUE,
                        "bullseye rings must widen in order: each `after` longer than the last",
                        index.value_span(("queues", queue_name, "bullseye", i, "after")),
                        hint="list the rings from the innermost (shortest wait) outwards",
                    )
                )
            previous = ring.after
        if queue.wrap_up_may_time_out and not (queue.wrap_up_required and queue.after_call_work):
            out.append(
                warning(
                    codes.DEPLOYMENT_UNUSED,
                    f"queue {queue_name!r}: wrap_up_may_time_out does nothing without "
                    "wrap_up_required and after_call_work",
                    index.key_span(("queues", queue_name, "wrap_up_may_time_out")),
                    hint="a wrap-up times out only where a code is required and after-call "
                    "work has a length",
                )
            )
        if not queue.members and not any(queue_name in a.queues for a in d.agents.values()):
            out.append(
                warning(
                    codes.DEPLOYMENT_UNUSED,
                    f"queue {queue_name!r} has no members",
                    index.key_span(("queues", queue_name)),
                    hint="add agents under `members:`, or conversations routed here wait",
                )
            )
    out += _environments(d, index)
    return out


def _duplicates(
    names: list[str], path: tuple[str, ...], kind: str, index: PositionIndex
) -> list[Diagnostic]:
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        if name in seen:
            out.append(
                error(
                    codes.DEPLOYMENT_DUPLICATE,
                    f"{kind} {name!r} is listed twice",
                    index.value_span((*path, i)),
                )
            )
        seen.add(name)
    return out


_ATTRIBUTE_TYPES: dict[str, tuple[type, ...]] = {
    "text": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list,),
}


def _attributes(agent_id: str, d: Deployment, index: PositionIndex) -> list[Diagnostic]:
    """An agent's attributes are declared under `agent_attributes:`, with their type."""
    out: list[Diagnostic] = []
    for name, value in d.agents[agent_id].attributes.items():
        path = ("agents", agent_id, "attributes", name)
        declared = d.agent_attributes.get(name)
        if declared is None:
            names = list(d.agent_attributes)
            hint = suggest(name, names, f"declare it under `agent_attributes:` ({name}: text)")
            out.append(
                error(
                    codes.DEPLOYMENT_UNKNOWN_REFERENCE,
                    f"unknown agent attribute {name!r}",
                    index.key_span(path),
                    hint=hint,
                )
            )
        elif not isinstance(value, _ATTRIBUTE_TYPES[declared]) or (
            declared == "number" and isinstance(value, bool)
        ):
            out.append(
                error(
                    codes.DEPLOYMENT_BAD_VALUE,
                    f"agent attribute {name!r} is declared as {declared}, but {agent_id}'s is "
                    f"{value!r}",
                    index.value_span(path),
                    hint=f"give a {declared} value, or change `agent_attributes: {name}:`",
                )
            )
    return out


def _channel(key: str, d: Deployment, index: PositionIndex) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    names: set[str] = set()
    answered: dict[str, str] = {}  # a name events give an account -> that account
    for i, account in enumerate(d.channels[key].accounts):
        path = ("channels", key, "accounts", i)
        if account.name in names:
            out.append(
                error(
                    codes.DEPLOYMENT_DUPLICATE,
                    f"account {account.name!r} is given twice",
                    index.value_span((*path, "name")),
                )
            )
        else:
            out.extend(_shared_name(account, answered, index, path))
        names.add(account.name)
        out.extend(_user_id(key, account.user_id, index, (*path, "user_id")))
        ident = account.id
        if ident is None:
            continue
        if key in PHONE_CHANNELS and not _is_e164(ident):
            out.append(
                error(
                    codes.DEPLOYMENT_BAD_PHONE,
                    f"{ident!r} is not a phone number in E.164 form",
                    index.value_span((*path, "id")),
                    hint="write it with + and the country code, e.g. +442079460000",
                )
            )
        if key in HANDLE_CHANNELS and not _HANDLE.fullmatch(ident):
            out.append(
                error(
                    codes.DEPLOYMENT_BAD_HANDLE,
                    f"{ident!r} is not an X handle",
                    index.value_span((*path, "id")),
                    hint="write @ and up to 15 letters, digits or underscores, e.g. @GbankSocial",
                )
            )
    return out


def _shared_name(
    account: Account,
    answered: dict[str, str],
    index: PositionIndex,
    path: tuple[str | int, ...],
) -> list[Diagnostic]:
    """An account that answers to a name another account of the channel answers to (case, a
    number's `+` and a handle's `@` aside: `Account.answers_to`): events for the two could not
    be told apart."""
    fields = {"name": account.name, "id": account.id, "user_id": account.user_id}
    for field, value in fields.items():
        other = answered.get(account_key(value)) if value else None
        if value and other is not None:
            return [
                error(
                    codes.DEPLOYMENT_DUPLICATE,
                    f"account {account.name!r} answers to {value!r}, as account {other!r} does: "
                    "events for the two could not be told apart",
                    index.value_span((*path, field)),
                    hint="give each account its own name and id",
                )
            ]
    answered.update(dict.fromkeys(account.answers_to(), account.name))
    return []


def _user_id(
    key: str, user_id: str | None, index: PositionIndex, path: tuple[str | int, ...]
) -> list[Diagnostic]:
    """An X account's numeric user id (its webhooks' `for_user_id`); no other channel has one."""
    if user_id is None:
        return []
    if key not in HANDLE_CHANNELS:
        problem, hint = (
            f"a {key} account has no user_id: it is an X account's numeric user id",
            "remove it",
        )
    elif not _X_USER_ID.fullmatch(user_id):
        problem, hint = (
            f"{user_id!r} is not an X user id",
            'write the account\'s numeric X user id, in quotes, e.g. "1450000000000000001"',
        )
    else:
        return []
    return [error(codes.DEPLOYMENT_BAD_VALUE, problem, index.value_span(path), hint=hint)]


def _portfolios(key: str, d: Deployment, index: PositionIndex) -> list[Diagnostic]:
    """Each number of a portfolio is an account of the channel, in one portfolio only."""
    out: list[Diagnostic] = []
    channel = d.channels[key]
    if channel.portfolios and key not in PORTFOLIO_CHANNELS:
        out.append(
            error(
                codes.DEPLOYMENT_BAD_VALUE,
                f"{key} has no business portfolios: only WhatsApp counts its messaging limit "
                "per portfolio",
                index.key_span(("channels", key, "portfolios")),
                hint="remove `portfolios:` here; declare them under channels.whatsapp",
            )
        )
        return out
    accounts = {a.name: a for a in channel.accounts} | {
        a.id: a for a in channel.accounts if a.id is not None
    }
    owner: dict[str, str] = {}
    for name, portfolio in channel.portfolios.items():
        for i, number in enumerate(portfolio.numbers):
            span = index.value_span(("channels", key, "portfolios", name, "numbers", i))
            account = accounts.get(number)
            if account is None:
                out.append(
                    error(
                        codes.DEPLOYMENT_UNKNOWN_REFERENCE,
                        f"unknown {key} account {number!r} in portfolio {name!r}",
                        span,
                        hint=suggest(
                            number, list(accounts), f"list it under channels.{key}.accounts first"
                        ),
                    )
                )
                continue
            if account.name in owner:
                out.append(
                    error(
                        codes.DEPLOYMENT_DUPLICATE,
                        f"account {account.name!r} is in portfolios {owner[account.name]!r} and "
                        f"{name!r}; a number belongs to one business portfolio",
                        span,
                    )
                )
            owner.setdefault(account.name, name)
    return out


def _is_e164(text: str) -> bool:
    if not text.startswith("+"):
        return False
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return False
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return phonenumbers.is_valid_number(number) and formatted == text


def _environments(d: Deployment, index: PositionIndex) -> list[Diagnostic]:
    if len(d.environments) < 2:
        return []
    every = set().union(*(set(v) for v in d.environments.values()))
    out = []
    for name, values in d.environments.items():
        missing = sorted(every - set(values))
        if missing:
            out.append(
                warning(
                    codes.DEPLOYMENT_ENVIRONMENT_MISMATCH,
                    f"environment {name!r} does not set {', '.join(missing)}",
                    index.key_span(("environments", name)),
                    hint="set every parameter in every environment so flows run in each",
                )
            )
    return out
