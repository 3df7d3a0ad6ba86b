"""The channel registry as the checker sees it: what each channel can carry."""

from __future__ import annotations

from functools import partial

from flowlang.channels.registry import ChannelRules, builtin_registry
from flowlang.channels.text_length import text_length
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
            quick_reply_label=rules.labels.quick_reply,
            button_label=rules.labels.button,
            list_rows=rules.option_list.max_rows if rules.option_list else None,
            list_row_label=rules.option_list.row_title if rules.option_list else None,
            distinct_options=rules.distinct_options,
            has_window=rules.window.hours is not None,
            template_only_outside_window=rules.window.outside == "template_only",
            max_text=rules.max_text,
            text_length=partial(text_length, rules=rules),
            automated_replies_per_inbound=rules.automated_replies_per_inbound,
            private_route=_private_route(rules),
            private_via=rules.private_reply.via if rules.private_reply else "",
        )
        for key, rules in builtin_registry().items()
    }


def _private_route(rules: ChannelRules) -> str:
    route = rules.private_reply
    if route is None:
        return ""
    return "any" if route.automated else "agent"
