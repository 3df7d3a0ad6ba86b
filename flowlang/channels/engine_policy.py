"""The policy every Engine built from a deployment uses: the registry with its overrides."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowlang.channels.policy import ChannelPolicy
from flowlang.channels.registry import builtin_registry, load_registry

if TYPE_CHECKING:
    from flowlang.config import Deployment


def policy_for_deployment(deployment: Deployment | None) -> ChannelPolicy:
    """A ChannelPolicy with `channels.<key>.rules` of the deployment merged over the built-ins."""
    if deployment is None:
        return ChannelPolicy(builtin_registry())
    overrides = {key: dict(channel.rules) for key, channel in deployment.channels.items()}
    if not any(overrides.values()):
        return ChannelPolicy(builtin_registry())
    return ChannelPolicy(load_registry(overrides))
