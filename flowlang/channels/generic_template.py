"""Cards and carousels as Meta's generic template (Messenger, Instagram), within the limits of
the channel's registry entry (`generic_template:` and `labels:` in channels.yaml).

`shaped` gives the content with `elements`, which the sender puts in the Send API's
`attachment.payload.elements` as they are: each a `title`, a `subtitle`, an `image_url`, a
`default_action` (the item's link, opened by a tap on the element) and `buttons` (a link opened,
else a postback whose payload is the title: the customer's choice comes back as it reads). A
carousel is an element per item of the deployment's template (or per option); a card is one
element (its `title`, else its text; its `subtitle`, `image` and `url`, else those of its one
item) with the items or options as its buttons. What Meta would refuse whole is a `Misfit` the
policy blocks the message with, labels included: a label is never cut
(template_messages.long_label).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flowlang.channels.content_text import sent_text
from flowlang.channels.registry import ChannelRules
from flowlang.channels.template_messages import Misfit, button_labels, choices_of, too_long

KINDS = ("card", "carousel")


def applies(content: Mapping[str, Any], rules: ChannelRules) -> bool:
    """Whether `content` goes as the channel's generic template."""
    kind = content.get("kind")
    return rules.generic_template is not None and kind in KINDS and kind in rules.content


def unshown(content: Mapping[str, Any], rules: ChannelRules) -> str:
    """What of a shaped card its generic template does not show, said ("" when all of it
    shows): its items' subtitles and images (its buttons show their titles) when it has more
    than one. A carousel's text is not lost: it goes apart (`text_apart`)."""
    if not content.get("elements") or content.get("kind") != "card":
        return ""
    items = [i for i in content.get("items") or [] if isinstance(i, Mapping)]
    if len(items) > 1 and any(i.get("subtitle") or i.get("image") for i in items):
        return (
            f"a {rules.name} card shows its items as buttons, by their titles: their subtitles "
            "and images are not shown"
        )
    return ""


def text_apart(content: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A shaped carousel with a text as the contents of two messages, in the order they go:
    its text, then its generic template without it (None for any other content). A generic
    template has no text, and the Send API takes a message's text or its attachment, not both.
    Both keep the message tag the policy gave."""
    text = sent_text(content)
    if content.get("kind") != "carousel" or not content.get("elements") or not text:
        return None
    tag = {"tag": content["tag"]} if content.get("tag") else {}
    template = {k: v for k, v in content.items() if k not in _TEXTS}
    return {"kind": "text", "text": text, **tag}, template


_TEXTS = ("text", "caption", "fallback")
"""What `sent_text` reads: a template sent apart from its text keeps none of them."""


def shaped(content: Mapping[str, Any], rules: ChannelRules) -> dict[str, Any] | Misfit:
    """`content` (a card or a carousel) with its generic template's `elements`, or why the
    channel would refuse it. With nothing to show besides a text it goes as text."""
    assert applies(content, rules)
    choices = choices_of(content)
    if content["kind"] == "card":
        return _card(content, choices, rules)
    if not choices:
        return dict(content)
    limits = rules.generic_template
    assert limits is not None
    if len(choices) > limits.max_elements:
        return Misfit(
            "content_not_supported",
            f"a {rules.name} carousel shows at most {limits.max_elements} elements; this one "
            f"has {len(choices)}",
            f"keep {limits.max_elements} items at most",
        )
    elements = []
    for n, choice in enumerate(choices, 1):
        title, subtitle = str(choice["title"]), str(choice.get("subtitle") or "")
        misfit = _sizes(f"element {n}'s", title, subtitle, rules)
        if misfit is not None:
            return misfit
        element = _element(title, subtitle, choice)
        elements.append(element | {"buttons": [_button(choice)]})
    misfit = button_labels(content, choices, rules)
    if misfit is not None:
        return misfit
    return {**content, "elements": elements}


def _card(
    content: Mapping[str, Any], choices: Sequence[Mapping[str, Any]], rules: ChannelRules
) -> dict[str, Any] | Misfit:
    limits = rules.generic_template
    assert limits is not None
    text = sent_text(content)
    # a card of one item shows that item's subtitle, image and link, unless it has its own
    shown = {**(choices[0] if len(choices) == 1 else {}), **content}
    title = str(content.get("title") or text)
    subtitle = str(shown.get("subtitle") or (text if content.get("title") else ""))
    if not title:
        return Misfit(
            "content_not_supported",
            f"a {rules.name} card needs a title: its text, or a title",
            "give the card a text",
        )
    if len(choices) > limits.max_element_buttons:
        return Misfit(
            "content_not_supported",
            f"a {rules.name} card shows at most {limits.max_element_buttons} buttons; this one "
            f"has {len(choices)}",
            f"keep {limits.max_element_buttons} items at most, or send a carousel",
        )
    misfit = _sizes("the card's", title, subtitle, rules) or button_labels(content, choices, rules)
    if misfit is not None:
        return misfit
    element = _element(title, subtitle, shown)
    if len(element) == 1 and not choices:  # a title alone is no element: the text goes as text
        return dict(content)
    if choices:
        element["buttons"] = [_button(c) for c in choices]
    return {**content, "elements": [element]}


def _sizes(whose: str, title: str, subtitle: str, rules: ChannelRules) -> Misfit | None:
    limits = rules.generic_template
    assert limits is not None
    return too_long(f"{whose} title", title, limits.title, rules) or too_long(
        f"{whose} subtitle", subtitle, limits.subtitle, rules
    )


def _element(title: str, subtitle: str, source: Mapping[str, Any]) -> dict[str, Any]:
    """An element's title and what `source` (an item, or a card's content) shows with it."""
    element: dict[str, Any] = {"title": title}
    if subtitle:
        element["subtitle"] = subtitle
    if source.get("image"):
        element["image_url"] = str(source["image"])
    if source.get("url"):
        element["default_action"] = {"type": "web_url", "url": str(source["url"])}
    return element


def _button(choice: Mapping[str, Any]) -> dict[str, str]:
    """Tapping the item's button: its link opened, else its title sent back as a postback."""
    title = str(choice["title"])
    if choice.get("url"):
        return {"type": "web_url", "url": str(choice["url"]), "title": title}
    return {"type": "postback", "title": title, "payload": title}
