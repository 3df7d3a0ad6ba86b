"""The policy every Engine built from a deployment uses: the registry with its overrides, and
the business portfolios whose numbers share a messaging limit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowlang.channels.policy import ChannelPolicy, Portfolio, address_key
from flowlang.channels.registry import ChannelRules, builtin_registry, load_registry

if TYPE_CHECKING:
    from flowlang.config import Deployment


def policy_for_deployment(deployment: Deployment | None) -> ChannelPolicy:
    """A ChannelPolicy with `channels.<key>.rules` of the deployment merged over the built-ins
    and `channels.<key>.portfolios` as its portfolios."""
    if deployment is None:
        return ChannelPolicy(builtin_registry())
    return ChannelPolicy(
        rules_for(deployment),
        portfolios=portfolios(deployment),
        templates=templates(deployment),
        template_names={
            name: template.whatsapp.name
            for name, template in deployment.templates.items()
            if template.whatsapp is not None
        },
    )


def rules_for(deployment: Deployment) -> dict[str, ChannelRules]:
    """Every channel's rules with `channels.<key>.rules` of the deployment merged over them."""
    overrides = {key: dict(channel.rules) for key, channel in deployment.channels.items()}
    return load_registry(overrides) if any(overrides.values()) else builtin_registry()


def templates(deployment: Deployment) -> dict[str, str]:
    """The deployment's WhatsApp templates by name, with the status it declares for each."""
    return {
        name: template.whatsapp.status
        for name, template in deployment.templates.items()
        if template.whatsapp is not None
    }


def portfolios(deployment: Deployment) -> dict[str, list[Portfolio]]:
    """Each channel's declared portfolios, with their numbers as the policy keys accounts."""
    out: dict[str, list[Portfolio]] = {}
    for key, channel in deployment.channels.items():
        ids = {a.name: a.id or a.name for a in channel.accounts}
        for name, declared in channel.portfolios.items():
            numbers = frozenset(address_key(ids.get(n, n)) for n in declared.numbers)
            tier = None if declared.tier == "unlimited" else declared.tier
            out.setdefault(key, []).append(Portfolio(name, tier, numbers))
    return out
