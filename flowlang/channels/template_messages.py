"""Buttons and carousels as a channel's template messages (LINE's buttons and carousel
templates), within the limits its registry entry gives (`templates:` in channels.yaml).

`shaped` gives the content with the parts the sender maps to the vendor's JSON: `actions`
(buttons) or `columns` (carousel), each action `{"label", "text"}` (the customer sends the text
back when tapping it) or `{"label", "uri"}`, and `alt_text` (what a notification or an old app
shows). What does not fit is a `Misfit` the policy blocks the message with: the vendor would
refuse the whole message, and the customer would get nothing with no reason kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from flowlang.channels.content_text import sent_text
from flowlang.channels.registry import ChannelRules, TemplateRules
from flowlang.channels.text_length import text_length

KINDS = ("buttons", "carousel")


class Misfit(NamedTuple):
    """Why a template message does not fit the channel: a policy block's code, reason and
    suggestion."""

    code: str
    reason: str
    suggestion: str


def fitted(content: Mapping[str, Any], rules: ChannelRules) -> dict[str, Any] | Misfit:
    """`content` shaped as a template message when it is one on this channel (`shaped`), else
    as it is."""
    if rules.templates is None or content.get("kind") not in KINDS:
        return dict(content)
    return shaped(content, rules)


def shaped(content: Mapping[str, Any], rules: ChannelRules) -> dict[str, Any] | Misfit:
    """`content` (a buttons or carousel) as the channel's template message, or why it cannot
    be one. Without options or items there is nothing to tap: the content is sent as text."""
    limits = rules.templates
    assert limits is not None and content.get("kind") in KINDS
    choices = _choices(content)
    if not choices:
        return dict(content)
    if content["kind"] == "buttons":
        return _buttons(content, choices, limits, rules)
    return _carousel(content, choices, limits, rules)


def _choices(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The content's items (deployment templates: title, url, image, subtitle), else its
    options as items of a title alone."""
    items = [dict(i) for i in content.get("items") or [] if isinstance(i, Mapping)]
    if items:
        return [i for i in items if str(i.get("title") or "")]
    return [{"title": str(o)} for o in content.get("options") or [] if str(o)]


def _action(item: Mapping[str, Any], limits: TemplateRules) -> dict[str, str]:
    """Tapping the item: its link opened, else its title sent back (the label is the title,
    cut to what the channel shows)."""
    title = str(item["title"])
    label = title[: limits.label]
    url = str(item.get("url") or "")
    return {"label": label, "uri": url} if url else {"label": label, "text": title}


def _buttons(
    content: Mapping[str, Any],
    choices: Sequence[Mapping[str, Any]],
    limits: TemplateRules,
    rules: ChannelRules,
) -> dict[str, Any] | Misfit:
    text = sent_text(content)
    title = str(content.get("title") or "")
    image = str(content.get("image") or "")
    if not text:
        return Misfit(
            "content_not_supported",
            f"a {rules.name} buttons message needs a text above its buttons",
            "give the buttons a text",
        )
    limit = limits.text_with_image_or_title if title or image else limits.buttons_text
    misfit = _too_long("the buttons' text", text, limit, rules) or _too_long(
        "the buttons' title", title, limits.title, rules
    )
    if misfit is not None:
        return misfit
    shown = {"title": title, "image": image}
    return {
        **content,
        **{k: v for k, v in shown.items() if v},
        "alt_text": text,
        "actions": [_action(c, limits) for c in choices[: rules.max_buttons]],
    }


def _carousel(
    content: Mapping[str, Any],
    choices: Sequence[Mapping[str, Any]],
    limits: TemplateRules,
    rules: ChannelRules,
) -> dict[str, Any] | Misfit:
    if len(choices) > limits.max_columns:
        return Misfit(
            "content_not_supported",
            f"a {rules.name} carousel shows at most {limits.max_columns} columns; this one has "
            f"{len(choices)}",
            f"keep {limits.max_columns} items at most",
        )
    images = [bool(c.get("image")) for c in choices]
    if any(images) and not all(images):
        return Misfit(
            "content_not_supported",
            f"{rules.name} wants an image on every column of a carousel or on none; "
            f"{images.count(True)} of its {len(choices)} items have one",
            "give every item an image, or none",
        )
    # Items (a deployment template) have a title each; options are a column's text alone.
    titled = bool(content.get("items"))
    columns = []
    for n, choice in enumerate(choices, 1):
        title = str(choice["title"]) if titled else ""
        text = str(choice.get("subtitle") or choice["title"])
        image = str(choice.get("image") or "")
        limit = limits.text_with_image_or_title if title or image else limits.carousel_text
        misfit = _too_long(f"column {n}'s text", text, limit, rules) or _too_long(
            f"column {n}'s title", title, limits.title, rules
        )
        if misfit is not None:
            return misfit
        column = {"title": title, "text": text, "image": image}
        columns.append(
            {k: v for k, v in column.items() if v} | {"actions": [_action(choice, limits)]}
        )
    alt = sent_text(content) or ", ".join(str(c["title"]) for c in choices)
    misfit = _too_long("the carousel's alternative text", alt, limits.alt_text, rules)
    if misfit is not None:
        return misfit
    return {**content, "alt_text": alt, "columns": columns}


def _too_long(what: str, text: str, limit: int, rules: ChannelRules) -> Misfit | None:
    length = text_length(text, rules)
    if length <= limit:
        return None
    return Misfit(
        "text_too_long",
        f"{what} is {length:,} characters; a {rules.name} template message takes at most "
        f"{limit:,} there",
        f"shorten it to {limit:,} characters, or send quick replies",
    )
