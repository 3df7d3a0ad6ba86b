"""Buttons and carousels as a channel's template messages (LINE's buttons and carousel
templates), within the limits its registry entry gives (`templates:` and `labels:` in
channels.yaml); cards and carousels as Meta's generic template (`generic_template.py`).

`shaped` gives the content with the parts the sender maps to the vendor's JSON: `actions`
(buttons) or `columns` (carousel), each action `{"label", "text"}` (the customer sends the text
back when tapping it) or `{"label", "uri"}`, and `alt_text` (what a notification or an old app
shows). What does not fit is a `Misfit` the policy blocks the message with: the vendor would
refuse the whole message, and the customer would get nothing with no reason kept. A label is
never cut to fit: the customer would read a choice nobody wrote ("Do not cancel" as "Do not
canc"), so a label longer than the channel shows is a misfit too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from flowlang.channels.content_text import sent_text
from flowlang.channels.registry import ChannelRules
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


def long_label(
    labels: Sequence[str], limit: int | None, rules: ChannelRules, what: str, shown_as: str
) -> Misfit | None:
    """The first of `labels` (each `what`'s: option, item) longer than `limit`, the channel's
    `labels` for a `shown_as` (quick reply, button), as a misfit: a label is never cut, since a
    cut label can say something else than the option."""
    if limit is None:
        return None
    for n, label in enumerate(labels, 1):
        length = text_length(label, rules)
        if length > limit:
            return Misfit(
                "text_too_long",
                f"{what} {n}, {label!r}, is {length:,} characters; on a {rules.name} {shown_as} "
                f"at most {limit:,} show, and a label is never cut (cut, it could say something "
                "else)",
                f"shorten it to {limit:,} characters, or ask the question in the text",
            )
    return None


def button_labels(
    content: Mapping[str, Any], choices: Sequence[Mapping[str, Any]], rules: ChannelRules
) -> Misfit | None:
    """The content's items (or options) whose title would label a button longer than the
    channel shows."""
    what = "item" if content.get("items") else "option"
    return long_label(
        [str(c["title"]) for c in choices], rules.labels.button, rules, what, "button"
    )


def shaped(content: Mapping[str, Any], rules: ChannelRules) -> dict[str, Any] | Misfit:
    """`content` (a buttons or carousel) as the channel's template message, or why it cannot
    be one. Without options or items there is nothing to tap: the content is sent as text."""
    assert rules.templates is not None and content.get("kind") in KINDS
    choices = choices_of(content)
    if not choices:
        return dict(content)
    if content["kind"] == "buttons":
        return _buttons(content, choices, rules)
    return _carousel(content, choices, rules)


def choices_of(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The content's items (deployment templates: title, url, image, subtitle), else its
    options as items of a title alone."""
    items = [dict(i) for i in content.get("items") or [] if isinstance(i, Mapping)]
    if items:
        return [i for i in items if str(i.get("title") or "")]
    return [{"title": str(o)} for o in content.get("options") or [] if str(o)]


def _action(item: Mapping[str, Any]) -> dict[str, str]:
    """Tapping the item: its link opened, else its title sent back (the label is the title,
    whole: `long_label` checked it)."""
    title = str(item["title"])
    url = str(item.get("url") or "")
    return {"label": title, "uri": url} if url else {"label": title, "text": title}


def _buttons(
    content: Mapping[str, Any], choices: Sequence[Mapping[str, Any]], rules: ChannelRules
) -> dict[str, Any] | Misfit:
    limits = rules.templates
    assert limits is not None
    choices = choices[: rules.max_buttons]
    misfit = button_labels(content, choices, rules)
    if misfit is not None:
        return misfit
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
    misfit = too_long("the buttons' text", text, limit, rules) or too_long(
        "the buttons' title", title, limits.title, rules
    )
    if misfit is not None:
        return misfit
    shown = {"title": title, "image": image}
    return {
        **content,
        **{k: v for k, v in shown.items() if v},
        "alt_text": text,
        "actions": [_action(c) for c in choices],
    }


def _carousel(
    content: Mapping[str, Any], choices: Sequence[Mapping[str, Any]], rules: ChannelRules
) -> dict[str, Any] | Misfit:
    limits = rules.templates
    assert limits is not None
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
        misfit = too_long(f"column {n}'s text", text, limit, rules) or too_long(
            f"column {n}'s title", title, limits.title, rules
        )
        if misfit is not None:
            return misfit
        column = {"title": title, "text": text, "image": image}
        columns.append({k: v for k, v in column.items() if v} | {"actions": [_action(choice)]})
    alt = sent_text(content) or ", ".join(str(c["title"]) for c in choices)
    misfit = button_labels(content, choices, rules) or too_long(
        "the carousel's alternative text", alt, limits.alt_text, rules
    )
    if misfit is not None:
        return misfit
    return {**content, "alt_text": alt, "columns": columns}


def too_long(what: str, text: str, limit: int, rules: ChannelRules) -> Misfit | None:
    length = text_length(text, rules)
    if length <= limit:
        return None
    return Misfit(
        "text_too_long",
        f"{what} is {length:,} characters; a {rules.name} template message takes at most "
        f"{limit:,} there",
        f"shorten it to {limit:,} characters, or send quick replies",
    )
