"""The channel registry as the checker sees it: what each channel can carry."""

from __future__ import annotations

from flowlang.channels.registry import builtin_registry
from flowlang.language.context import ChannelInfo


def channel_infos() -> dict[str, ChannelInfo]:
    """Capabilities of every built-in channel, by channel key."""
    return {
        key: ChannelInfo(
            key=key,
            public=rules.public,
            content=rules.content,
            max_quick_replies=rules.max_quick_replies,
            max_buttons=rules.max_buttons,
            has_window=rules.window.hours is not None,
            template_only_outside_window=rules.window.outside == "template_only",
        )
        for key, rules in builtin_registry().items()
    }
