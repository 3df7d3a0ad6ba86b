"""The channel policy: every outbound message — from a flow, a bot or an agent — is checked here
before any adapter sees it. It is allowed, blocked (a stable reason code, a sentence and a
suggestion) or degraded (sent in a form the channel carries, with the reason).

Per-conversation memory (replies since the customer's last message, automated ones apart, the
last text sent, the "+1" message used, LINE's reply token) lives in
`ConversationView.channel_state`, which the store persists.
Opt-outs (per customer address and business number) and the customers reached outside the
window (WhatsApp's messaging limit) and the comments answered by a private reply are kept in a
`PolicyLedger`: the engine's store when it has
one, so they hold across conversations, restarts and processes. Bulk-send detection is kept in
this object: it is per process.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from flowlang.channels import generic_template, template_messages
from flowlang.channels.content_text import sent_text
from flowlang.channels.registry import ChannelRules, builtin_registry
from flowlang.channels.sms_segments import segments
from flowlang.channels.text_length import text_length
from flowlang.events import EventKind, InboundEvent
from flowlang.runtime.memory import MemoryLedger, normalise_phone
from flowlang.runtime.ports import (
    INITIATED,
    ConversationView,
    Delivery,
    OutboundMessage,
    PolicyLedger,
)

AUTOMATED = frozenset({"flow", "bot"})
_DAY = timedelta(hours=24)


@dataclass(frozen=True)
class Portfolio:
    """Business numbers that share one messaging limit (a WhatsApp business portfolio)."""

    name: str
    tier: int | None  # customers reached outside the window per moving 24 h; None: unlimited
    accounts: frozenset[str]


@dataclass(frozen=True)
class Block:
    code: str
    reason: str
    suggestion: str = ""


class ChannelPolicy:
    """`ReplyPolicy` built from the channel registry (see docs/channels.md for every rule)."""

    def __init__(
        self,
        rules: dict[str, ChannelRules] | None = None,
        ledger: PolicyLedger | None = None,
        portfolios: Mapping[str, Sequence[Portfolio]] | None = None,
        templates: Mapping[str, str] | None = None,
        template_names: Mapping[str, str] | None = None,
    ) -> None:
        self.rules = rules if rules is not None else builtin_registry()
        # the deployment's WhatsApp templates by name and their status: a message's own claim
        # to be an approved template is never taken
        self.templates: dict[str, str] = dict(templates or {})
        # each one's name in WhatsApp Manager (what is sent), where it differs from its own
        self.template_names: dict[str, str] = dict(template_names or {})
        self.ledger: PolicyLedger = ledger if ledger is not None else MemoryLedger()
        self.portfolios: dict[str, tuple[Portfolio, ...]] = {
            channel: tuple(found) for channel, found in (portfolios or {}).items()
        }
        self._recent: dict[tuple[str, str, str], deque[tuple[datetime, str]]] = defaultdict(deque)

    def use_ledger(self, ledger: PolicyLedger) -> None:
        """Keep opt-outs and reach counts in `ledger` (the Engine gives its store)."""
        self.ledger = ledger

    def vendor_failed(self, conversation: ConversationView, code: str, at: datetime) -> str | None:
        """A failed status whose code is one of the channel's `window_errors` closes the
        window until the customer writes again."""
        rules = self.rules.get(conversation.channel)
        if rules is None or rules.send is None or code not in rules.send.window_errors:
            return None
        conversation.channel_state[_VENDOR_CLOSED] = {"at": at.isoformat(), "code": code}
        return "window_closed"

    # ------------------------------------------------------------------ the window
    def window_open(
        self, conversation: ConversationView, now: datetime
    ) -> tuple[bool, timedelta | None]:
        """Whether free-form messages may go out now, and for how much longer."""
        rules = self.rules.get(conversation.channel)
        if rules is None or rules.window.hours is None:
            return True, None
        last = conversation.last_inbound_at
        if last is None:
            return False, None
        if _vendor_closed(conversation) is not None:
            return False, timedelta(0)
        left = last + timedelta(hours=rules.window.hours) - now
        return (left > timedelta(0)), max(left, timedelta(0))

    def window_closes_at(self, conversation: ConversationView) -> datetime | None:
        """When an agent can no longer answer (None: the channel has no window, or no message
        yet): the standard window, or where a human agent may answer after it with a tag
        (Messenger, Instagram: HUMAN_AGENT, 7 days), the end of that."""
        rules = self.rules.get(conversation.channel)
        if rules is None or rules.window.hours is None or conversation.last_inbound_at is None:
            return None
        if _vendor_closed(conversation) is not None:  # the vendor closed it before its time
            return datetime.fromisoformat(conversation.channel_state[_VENDOR_CLOSED]["at"])
        hours = rules.window.hours
        if rules.window.outside == "human_agent_tag" and rules.window.tag_days is not None:
            hours = max(hours, rules.window.tag_days * 24)
        return conversation.last_inbound_at + timedelta(hours=hours)

    def window_warning_at(self, conversation: ConversationView) -> datetime | None:
        """The channel's `warn_before_minutes` before its standard window closes (None: no
        window, no warning time, no customer message yet, or the vendor closed it already)."""
        rules = self.rules.get(conversation.channel)
        if rules is None or rules.window.hours is None or conversation.last_inbound_at is None:
            return None
        if rules.window.warn_before_minutes is None or _vendor_closed(conversation) is not None:
            return None
        closes = conversation.last_inbound_at + timedelta(hours=rules.window.hours)
        return closes - timedelta(minutes=rules.window.warn_before_minutes)

    # ------------------------------------------------------------------ inbound
    def observe_inbound(
        self, conversation: ConversationView, event: InboundEvent, now: datetime
    ) -> tuple[str, str] | None:
        """Note a customer message (it resets the per-message reply count). An opt-out, opt-in
        or help keyword gives (`opted_out` | `opted_in` | `help`, text to send or ""): the
        engine then does not run the flow for that message."""
        rules = self.rules.get(conversation.channel)
        state = conversation.channel_state
        state["replies_since_inbound"] = 0
        state.pop("automated_since_inbound", None)
        state.pop("one_more_used", None)
        if rules is not None and rules.reply_token_seconds is not None:
            state.pop("reply_token_used", None)
            if event.reply_token:
                state["reply_token"] = event.reply_token
                state["reply_token_at"] = now.isoformat()
            else:
                state.pop("reply_token", None)
        if rules is not None and rules.public and event.kind in _ANSWERABLE:
            _note_private_reply_target(state, event)
        if rules is None or event.kind is not EventKind.MESSAGE:
            return None
        word = _keyword(event.text)
        key = (
            conversation.channel,
            address_key(event.account or conversation.account),
            address_key(event.sender_id),
        )
        if word in _keywords(rules.opt_out):
            self.ledger.set_opted_out(*key, True, now)
            return "opted_out", ""
        if word in _keywords(rules.opt_in) and self.ledger.opted_out(*key):
            self.ledger.set_opted_out(*key, False, now)
            return "opted_in", ""
        if word in _keywords(rules.help) and rules.help_text:
            return "help", rules.help_text
        return None

    def opted_out(self, channel: str, account: str, recipient: str) -> bool:
        """Whether the customer at `recipient` opted out of `account` on `channel`."""
        return self.ledger.opted_out(channel, address_key(account), address_key(recipient))

    # ------------------------------------------------------------------ outbound
    def decide(
        self, message: OutboundMessage, conversation: ConversationView, now: datetime
    ) -> Delivery:
        """Allow, block or degrade one outbound message; records what it sent."""
        rules = self.rules.get(message.channel)
        if rules is None:
            return Delivery(message, "sent")
        private = message.visibility == "privately" and rules.public
        if private:
            routed = self._private_route(message, conversation, rules, now)
            if isinstance(routed, Block):
                return Delivery(message, "blocked", routed.code, routed.reason, routed.suggestion)
            message, rules = routed
        verdict = self._check(message, conversation, rules, now)
        if isinstance(verdict, Block):
            return Delivery(message, "blocked", verdict.code, verdict.reason, verdict.suggestion)
        for part in verdict.parts or (message,):  # each part counts as the vendor counts it
            self._record(part, conversation, rules, now)
        if verdict.message.content.get("reply_token"):
            conversation.channel_state.pop("reply_token", None)
            conversation.channel_state["reply_token_used"] = True
        if private:
            verdict = _sent_privately(verdict, rules)
        return self._count_reach(verdict, now)

    def recheck(
        self, message: OutboundMessage, conversation: ConversationView, now: datetime
    ) -> Delivery:
        """Check again a message allowed earlier, before it is sent again: opt-out, window and
        limits as they are now; the per-message counters it moved are not moved twice."""
        rules = self.rules.get(message.channel)
        if rules is None:
            return Delivery(message, "sent")
        unrouted = message.visibility == "privately" and rules.public  # kept before routing
        if unrouted:
            routed = self._private_route(message, conversation, rules, now)
            if isinstance(routed, Block):
                return Delivery(message, "blocked", routed.code, routed.reason, routed.suggestion)
            message, rules = routed
        verdict = self._check(message, conversation, rules, now, again=True)
        if isinstance(verdict, Block):
            return Delivery(message, "blocked", verdict.code, verdict.reason, verdict.suggestion)
        if unrouted:
            self._note_private_reply(message, now)
            verdict = _sent_privately(verdict, rules)
        return self._count_reach(verdict, now)

    def _check(
        self,
        message: OutboundMessage,
        conv: ConversationView,
        rules: ChannelRules,
        now: datetime,
        again: bool = False,
    ) -> Delivery | Block:
        state = conv.channel_state
        message = _without_tag(message)
        if message.sender == INITIATED:
            refused = self._initiated(message, rules)
            if refused is not None:
                return refused
        elif conv.last_inbound_at is None and not rules.unsolicited:
            return Block(
                "unsolicited",
                f"{rules.name} does not allow messages to a customer who has not written first",
                "wait for the customer to start the conversation",
            )
        if self.opted_out(message.channel, message.account, message.recipient):
            return Block(
                "opted_out",
                "the customer opted out (they sent STOP); nothing more may be sent",
                "the customer can send START to opt back in",
            )
        window = self._window(message, conv, rules, now)
        if isinstance(window, Block):
            return window
        message, code, note = window
        limit = rules.replies_per_inbound
        if again:
            pass  # counted when it was first allowed
        elif limit is not None and int(state.get("replies_since_inbound", 0)) >= limit:
            return Block(
                "reply_limit",
                f"{rules.name} allows at most {limit} "
                f"repl{'y' if limit == 1 else 'ies'} per customer message",
                "wait for the customer's next message",
            )
        automated = message.sender in AUTOMATED
        auto_limit = rules.automated_replies_per_inbound
        if (
            not again
            and automated
            and auto_limit is not None
            and int(state.get("automated_since_inbound", 0)) >= auto_limit
        ):
            return Block(
                "automated_reply_limit",
                f"{rules.name} allows at most {auto_limit} automated "
                f"repl{'y' if auto_limit == 1 else 'ies'} per customer message, and the flow or "
                "bot has sent it; a person's reply is not limited by this",
                "let an agent answer",
            )
        text = "" if again else sent_text(message.content)
        if text and not rules.identical_messages and text == state.get("last_text"):
            return Block(
                "identical_message",
                f"{rules.name} forbids sending the same message twice in a row to one customer",
                "change the wording, or do not repeat the message",
            )
        if (
            text
            and automated
            and not rules.identical_messages
            and self._bulk(message, rules, now) >= rules.bulk_limit
        ):
            return Block(
                "bulk_send",
                f"the same automated text went to {rules.bulk_limit} customers within "
                f"{rules.bulk_window_seconds}s on {rules.name}: that is a bulk send",
                "personalise the reply, e.g. with {{ customer.name }}",
            )
        degraded = self._content(message, rules)
        if isinstance(degraded, Block):
            return degraded
        message, why = degraded
        if rules.reply_token_seconds is not None:
            token = self._reply_token(message, conv, rules, now)
            if isinstance(token, Block):
                return token
            message, token_code, token_note = token
            code, note = code or token_code, "; ".join(n for n in (note, token_note) if n)
        parts, said = _in_parts(message, rules, state, code, again)
        note, why = (_also(note, said), why) if parts else (note, _also(why, said))
        reasons = "; ".join(r for r in (note, why) if r)
        if why:
            return Delivery(message, "degraded", "degraded", reasons, parts=parts)
        return Delivery(message, "sent", code, reasons, parts=parts)

    def _window(
        self, message: OutboundMessage, conv: ConversationView, rules: ChannelRules, now: datetime
    ) -> tuple[OutboundMessage, str, str] | Block:
        """The message as it may go out given the reply window, with a code and a note."""
        is_open, _left = self.window_open(conv, now)
        if is_open or rules.window.outside == "anything":
            return message, "", ""
        hours = rules.window.hours
        outside = rules.window.outside
        if conv.last_inbound_at is None:  # a business-initiated message to a new customer
            if outside == "template_only" and message.content.get("kind") == "template":
                return self._tier(message, rules, now)
            return Block(
                "unsolicited",
                f"{rules.name} does not allow messages to a customer who has not written first",
                "wait for the customer to start the conversation",
            )
        since = now - conv.last_inbound_at
        closed_by = _vendor_closed(conv)
        if outside == "template_only" and closed_by is not None:
            if message.content.get("kind") == "template":
                return self._tier(message, rules, now)
            return Block(
                "window_closed_template_required",
                f"{rules.name} refused a free-form message to this customer (error {closed_by}): "
                "it counts the window as closed; only approved template messages may be sent "
                "until the customer writes again",
                "send an approved WhatsApp template, e.g. `reply ... if window closed send "
                'template "whatsapp_followup"`',
            )
        if outside == "template_only":
            if message.content.get("kind") == "template":
                return self._tier(message, rules, now)
            return Block(
                "window_closed_template_required",
                f"the {rules.name} {hours:g}-hour window closed {_ago(since - _h(hours))} ago; "
                "only approved template messages may be sent until the customer writes again",
                "send an approved WhatsApp template, e.g. `reply ... if window closed send "
                'template "whatsapp_followup"`',
            )
        if outside == "human_agent_tag":
            days = rules.window.tag_days or 0
            if message.sender == "agent" and since < timedelta(days=days):
                tagged = replace(message, content={**message.content, "tag": "HUMAN_AGENT"})
                note = f"sent with the HUMAN_AGENT tag (allowed up to {days:g} days)"
                return tagged, "human_agent_tag", note
            return Block(
                "window_closed",
                f"the {rules.name} {hours:g}-hour window has closed; only a human agent may "
                f"answer, with the HUMAN_AGENT tag, up to {days:g} days after the customer's "
                "last message",
                "let an agent answer, or wait for the customer's next message",
            )
        if outside == "one_more":
            if conv.channel_state.get("one_more_used"):
                return Block(
                    "window_closed",
                    f"the {rules.name} window has closed and its one extra message was sent",
                    "wait for the customer's next message",
                )
            conv.channel_state["one_more_used"] = True
            return message, "one_more", "the one extra message allowed after the window (24 + 1)"
        if outside == "push":
            note = "sent as a push message (counts toward the monthly quota)"
            return message, "push_message", note
        return Block(
            "window_closed",
            f"the {rules.name} {hours:g}-hour window after the customer's last message has closed",
            "wait for the customer's next message",
        )

    def _reply_token(
        self, message: OutboundMessage, conv: ConversationView, rules: ChannelRules, now: datetime
    ) -> tuple[OutboundMessage, str, str] | Block:
        """A reply with the customer's reply token while it is valid and unused, else a push
        (or a block where the deployment allows no push), with the reason."""
        state = conv.channel_state
        if "reply_token" in message.content:  # checked again before a resend: decide afresh
            content = {k: v for k, v in message.content.items() if k != "reply_token"}
            message = replace(message, content=content)
        token = state.get("reply_token")
        seconds = rules.reply_token_seconds or 0
        at = state.get("reply_token_at")
        age = now - datetime.fromisoformat(at) if token and at else None
        if age is not None and age < timedelta(seconds=seconds):
            content = {**message.content, "reply_token": token}
            note = "sent as a reply with the reply token (not counted toward the monthly quota)"
            return replace(message, content=content), "reply_token", note
        if age is not None:
            why = (
                f"the reply token expired (the customer wrote {int(age.total_seconds())} s ago; "
                f"a token answers for {seconds} s)"
            )
        elif state.get("reply_token_used"):
            why = "the reply token was used by an earlier reply"
        else:
            why = "there is no reply token for this message"
        if not rules.push_allowed:
            return Block(
                "reply_token_expired",
                f"{why}, and this deployment sends no push messages on {rules.name}",
                "answer within the token's time, or allow push messages "
                f"(channels.{rules.key}.rules.push_allowed)",
            )
        note = f"{why}: sent as a push message (counts toward the monthly quota)"
        return message, "push_message", note

    def _tier(
        self, message: OutboundMessage, rules: ChannelRules, now: datetime
    ) -> tuple[OutboundMessage, str, str] | Block:
        """Messages outside the window reach at most `tier` distinct customers per moving 24 h,
        counted per business portfolio (all its numbers together)."""
        note = "template outside the window (a business-initiated conversation)"
        unapproved = self._unapproved(message, rules, " outside the window")
        if unapproved is not None:
            return unapproved
        portfolio = self.portfolio_of(message.channel, message.account)
        tier = portfolio.tier if portfolio is not None else rules.tier
        if tier is None:
            return message, "business_initiated", note
        count, known = self.ledger.reached(
            _scope(message.channel, portfolio), now - _DAY, address_key(message.recipient)
        )
        if not known and count >= tier:
            where = f"the {portfolio.name} portfolio" if portfolio else "this business"
            setting = (
                f"channels.{message.channel}.portfolios.{portfolio.name}.tier"
                if portfolio
                else f"channels.{message.channel}.rules.tier"
            )
            return Block(
                "tier_limit_reached",
                f"{rules.name} lets {where} reach {tier:,} customers outside the window per "
                f"24 hours (its messaging limit, shared by all its numbers), and that many "
                "were reached",
                f"wait, or raise the limit ({setting} in the deployment file)",
            )
        return message, "business_initiated", note

    def _initiated(self, message: OutboundMessage, rules: ChannelRules) -> Block | None:
        """Whether the channel lets the business start a conversation with this message."""
        allowed = rules.business_initiated
        if allowed == "none":
            return Block(
                "business_initiated_not_allowed",
                f"{rules.name} does not allow business-initiated messages: the customer must "
                "write first",
                "reach the customer on a channel that allows it (WhatsApp templates, SMS)",
            )
        content = message.content
        if allowed == "approved_template" and content.get("kind") != "template":
            return Block(
                "template_required",
                f"{rules.name} starts a conversation only with an approved template",
                "send a deployment template that has a `whatsapp:` part",
            )
        if allowed == "approved_template":
            return self._unapproved(message, rules, "")
        return None

    def _unapproved(
        self, message: OutboundMessage, rules: ChannelRules, where: str
    ) -> Block | None:
        """Why a template message may not go where only approved templates may: its name is not
        a WhatsApp template of the deployment, or the deployment declares it not APPROVED. The
        status the content carries is ignored (an agent or host could write anything there)."""
        name = str(message.content.get("name") or "")
        status = self.templates.get(name)
        if status is None:
            known = ", ".join(sorted(self.templates)) or "none"
            return Block(
                "unknown_template",
                f"{name!r} is not a WhatsApp template of the deployment (templates: {known}): "
                f"{rules.name} sends only approved templates{where}",
                "send a template declared with a `whatsapp:` part in the deployment file",
            )
        declared = self.template_names.get(name, name)
        sent_as = str(message.content.get("whatsapp_name") or declared)
        if sent_as != declared:
            return Block(
                "unknown_template",
                f"template {name!r} would go out as WhatsApp template {sent_as!r}, but the "
                f"deployment declares it as {declared!r}",
                "send the template by its name in the deployment file, without a WhatsApp name",
            )
        if status != "APPROVED":
            return Block(
                "template_not_approved",
                f"template {name!r} is {status}, not APPROVED: "
                f"{rules.name} sends only approved templates{where}",
                "wait for Meta's approval (WhatsApp Manager), or use an approved template",
            )
        return None

    def portfolio_of(self, channel: str, account: str) -> Portfolio | None:
        """The declared portfolio `account` belongs to (None: the channel's shared default)."""
        wanted = address_key(account)
        for portfolio in self.portfolios.get(channel, ()):
            if wanted in portfolio.accounts:
                return portfolio
        return None

    def _count_reach(self, delivery: Delivery, now: datetime) -> Delivery:
        if delivery.reason_code == "business_initiated":
            message = delivery.message
            scope = _scope(message.channel, self.portfolio_of(message.channel, message.account))
            self.ledger.record_reach(scope, address_key(message.recipient), now)
        return delivery

    # ------------------------------------------------------------------ private replies
    def _private_route(
        self, message: OutboundMessage, conv: ConversationView, rules: ChannelRules, now: datetime
    ) -> tuple[OutboundMessage, ChannelRules] | Block:
        """A reply marked private on a public channel, readdressed to the channel's private
        route (whose rules then apply); blocked when there is none. Never the public route."""
        route = rules.private_reply
        if route is None:
            return Block(
                "no_private_route",
                f"{rules.name} has no private route: a reply marked private cannot be sent, "
                "and it is never posted publicly instead",
                "reply publicly, or ask the customer to write to you in a private message",
            )
        via = self.rules[route.via]
        if not route.automated and message.sender in AUTOMATED:
            return Block(
                "private_reply_needs_agent",
                f"a {message.sender} may not send {via.name} to a customer who wrote on "
                f"{rules.name}: automated direct messages are allowed only after the customer "
                "has sent one; only an agent may answer them privately",
                "reply publicly asking the customer to send you a direct message, or route "
                "the post to an agent",
            )
        if route.to == "author":
            return replace(message, channel=via.key, in_reply_to=None), via
        target = conv.channel_state.get("private_reply_target")
        if not target:
            return Block(
                "private_reply_no_target",
                f"there is no comment or post of the customer's in this conversation for a "
                f"{rules.name} private reply to answer",
                "reply publicly",
            )
        kind, written = str(target["kind"]), datetime.fromisoformat(str(target["at"]))
        age = now - written
        if route.days is not None and age >= timedelta(days=route.days):
            return Block(
                "private_reply_expired",
                f"a private reply on {rules.name} is allowed only within {route.days:g} days "
                f"of the {kind}; this {kind} was written {age.total_seconds() / 86400:.1f} "
                "days ago",
                "reply publicly, or wait for the customer to write to you privately",
            )
        scope = _private_scope(via.key, message.account)
        # No reply precedes its comment; a day's margin covers the channel's and our clocks.
        since = written - _DAY
        if route.once and self.ledger.reached(scope, since, f"{kind}:{target['id']}")[1]:
            return Block(
                "private_reply_used",
                f"only one private reply per {kind} is allowed on {rules.name}, and this {kind} "
                "has had it",
                f"wait for the customer to answer in {via.name}: their message opens a "
                "conversation there",
            )
        readdressed = replace(
            message,
            channel=via.key,
            in_reply_to=None,
            private_reply_to={f"{kind}_id": str(target["id"])},
        )
        return readdressed, via

    def _note_private_reply(self, message: OutboundMessage, now: datetime) -> None:
        """Remember, in the ledger (the store), the comment or post a private reply answered."""
        for field, item in (message.private_reply_to or {}).items():
            scope = _private_scope(message.channel, message.account)
            self.ledger.record_reach(scope, f"{field.removesuffix('_id')}:{item}", now)

    def _bulk(self, message: OutboundMessage, rules: ChannelRules, now: datetime) -> int:
        text = sent_text(message.content)
        recent = self._recent[(message.channel, message.account, text)]
        window = timedelta(seconds=rules.bulk_window_seconds)
        while recent and now - recent[0][0] >= window:
            recent.popleft()
        return len({r for _at, r in recent if r != message.recipient})

    def _content(
        self, message: OutboundMessage, rules: ChannelRules
    ) -> tuple[OutboundMessage, str] | Block:
        content = dict(message.content)
        kind = str(content.get("kind", "text"))
        why: list[str] = []
        items = ""  # a carousel's or card's items, numbered, where it goes as text
        if kind in ("quick_replies", "buttons"):
            offered = _offered(content, kind, rules, why)
            if isinstance(offered, Block):
                return offered
            content = offered
        elif kind == "sticker" and kind in rules.content:
            ref = str(content.get("sticker_id") or content.get("url") or "")
            form = rules.sticker
            if form is not None and re.fullmatch(form.pattern, ref):
                content["sticker_id"] = ref
            else:
                expected = (
                    f"{rules.name} stickers are {form.description} (e.g. {form.example})"
                    if form is not None
                    else f"{rules.name} has no sticker form in the channel registry"
                )
                fallback = content.get("fallback") or content.get("caption")
                if not fallback:
                    return Block(
                        "content_not_supported",
                        f"{expected}; {ref!r} is not one, and the sticker has no text to send "
                        "instead",
                        "give the sticker a caption, or send one of this channel's stickers",
                    )
                content = {"kind": "text", "text": str(fallback)}
                why.append(f"{expected}; {ref!r} is not one: sent as its caption")
        elif kind != "text" and (kind not in rules.content or _as_link(kind, rules)):
            as_text = _as_text(content, kind, rules, why)
            if isinstance(as_text, Block):
                return as_text
            content, items = as_text
        fitted = _fitted(content, rules, why)
        if isinstance(fitted, Block):
            return fitted
        content = fitted
        text = sent_text(content)
        length = text_length(text, rules)
        if message.channel == "sms" and text:
            parts = segments(text)
            if parts.count > 1:
                content["segments"] = parts.count
                content["encoding"] = parts.encoding
                why.append(f"split into {parts.count} SMS segments ({parts.encoding})")
        if length > rules.max_text:
            what = f"the {kind} as text (its text and its items)" if items else "the text"
            return Block(
                "text_too_long",
                f"{what} is {length:,} characters; {rules.name} takes at most {rules.max_text:,}",
                f"shorten it to {rules.max_text:,} characters or send it in parts",
            )
        return replace(message, content=content), "; ".join(why)

    def _record(
        self, message: OutboundMessage, conv: ConversationView, rules: ChannelRules, now: datetime
    ) -> None:
        state = conv.channel_state
        state["replies_since_inbound"] = int(state.get("replies_since_inbound", 0)) + 1
        if message.sender in AUTOMATED:
            state["automated_since_inbound"] = int(state.get("automated_since_inbound", 0)) + 1
        self._note_private_reply(message, now)
        text = sent_text(message.content)
        if text:
            state["last_text"] = text
            if message.sender in AUTOMATED:
                self._recent[(message.channel, message.account, text)].append(
                    (now, message.recipient)
                )


_ANSWERABLE = (EventKind.COMMENT, EventKind.POST)


def _in_parts(
    message: OutboundMessage, rules: ChannelRules, state: Mapping[str, Any], code: str, again: bool
) -> tuple[tuple[OutboundMessage, ...], str]:
    """The messages a reply goes out as where the channel takes it as several (a carousel's
    text, then its generic template), with what the reason says: how it goes, or what of it
    is not shown where it must go as one message (then no parts)."""
    apart = generic_template.text_apart(message.content)
    if apart is None:
        return (), ""
    template = f"a {rules.name} carousel (a generic template) has no place for a text"
    alone = _one_message_only(message, rules, state, code, again)
    if alone:
        return (), f"{template}, and {alone}: its items are shown, its text is not"
    parts = tuple(replace(message, content=content) for content in apart)
    return parts, f"{template}: its text goes first, as a message of its own"


def _also(reason: str, more: str) -> str:
    return "; ".join(r for r in (reason, more) if r)


def _one_message_only(
    message: OutboundMessage, rules: ChannelRules, state: Mapping[str, Any], code: str, again: bool
) -> str:
    """Why this reply must go as one message, said ("" when it may go as several)."""
    if again:
        return "a message sent again goes as it was kept"
    if message.private_reply_to:
        return "a Private Reply is one message"
    if code == "one_more":
        return "one message only may go after the window"
    limit = rules.replies_per_inbound
    if limit is not None and int(state.get("replies_since_inbound", 0)) + 2 > limit:
        return f"it allows {limit} repl{'y' if limit == 1 else 'ies'} per customer message"
    return ""


def _offered(
    content: dict[str, Any], kind: str, rules: ChannelRules, why: list[str]
) -> dict[str, Any] | Block:
    """Quick replies or buttons as the channel shows them: a numbered list where it has none,
    a list message where there are more than it shows and it has one (`option_list`), else the
    first it shows; each label whole (one it would not show whole blocks the message), the text
    above them within what the channel's form takes (`options_text`), and there when the
    vendor requires one."""
    options = [str(o) for o in content.get("options") or []]
    limit = rules.max_quick_replies if kind == "quick_replies" else rules.max_buttons
    what = kind.replace("_", " ")
    if kind not in rules.content or not limit:
        numbered = "\n".join(f"{i}. {o}" for i, o in enumerate(options, 1))
        why.append(f"{rules.name} has no {what}: sent as a numbered list")
        return {"kind": "text", "text": f"{content.get('text', '')}\n{numbered}".strip()}
    if options and rules.options_text.required and not sent_text(content).strip():
        return Block(
            "content_not_supported",
            f"a {rules.name} message with {what} needs a text above them ({rules.name} "
            "refuses it without one); this one has none",
            "give the question a text",
        )
    if len(options) > limit and rules.option_list is not None:
        return _listed(content, options, rules, why)
    if len(options) > limit:
        options = content["options"] = options[:limit]
        why.append(f"{rules.name} shows at most {limit}: the first {limit} were kept")
    label = rules.labels.quick_reply if kind == "quick_replies" else rules.labels.button
    shown_as = "quick reply" if kind == "quick_replies" else "button"
    misfit = template_messages.long_label(options, label, rules, "option", shown_as)
    if misfit is not None:
        return Block(*misfit)
    unusable = _blank(options, rules, what) or _repeated(options, rules, what)
    if unusable is not None:
        return unusable
    text = (
        rules.options_text.quick_replies if kind == "quick_replies" else rules.options_text.buttons
    )
    return _text_within(content, text, what, f"a {rules.name} message with {what}", rules)


def _listed(
    content: dict[str, Any], options: list[str], rules: ChannelRules, why: list[str]
) -> dict[str, Any] | Block:
    """More options than the channel's quick replies or buttons, as its list message: rows
    under a button (`list_button`, else the registry's `button_text`), the first `max_rows`."""
    form = rules.option_list
    assert form is not None
    if len(options) > form.max_rows:
        options = options[: form.max_rows]
        why.append(
            f"a {rules.name} list shows at most {form.max_rows} options: the first "
            f"{form.max_rows} were kept"
        )
    misfit = template_messages.long_label(options, form.row_title, rules, "option", "list row")
    if misfit is not None:
        return Block(*misfit)
    unusable = _blank(options, rules, "a list's rows") or _repeated(options, rules, "a list's rows")
    if unusable is not None:
        return unusable
    button = str(content.get("list_button") or form.button_text)
    title = str(content.get("list_title") or "")
    for part, value, limit in (
        ("button", button, form.button),
        ("title", title, form.section_title),
    ):
        length = text_length(value, rules)
        if length > limit:
            return Block(
                "text_too_long",
                f"the list's {part}, {value!r}, is {length:,} characters; a {rules.name} list "
                f"message shows at most {limit:,} there",
                f"shorten it to {limit:,} characters",
            )
    listed = {**content, "options": options, "form": "list", "list_button": button}
    return _text_within(listed, form.text, "list", f"a {rules.name} list message", rules)


def _blank(options: list[str], rules: ChannelRules, shown_as: str) -> Block | None:
    """A block when one of the options shown has a blank label (empty or only spaces): the
    customer has nothing to choose it by, and no vendor takes it (WhatsApp's id, the label
    trimmed, would be empty)."""
    for number, option in enumerate(options, 1):
        if not option.strip():
            return Block(
                "content_not_supported",
                f"option {number} of {shown_as} is blank ({option!r}); {rules.name} needs "
                "a label on each (on WhatsApp also its id)",
                "give each option words of its own, or remove it",
            )
    return None


def _repeated(options: list[str], rules: ChannelRules, shown_as: str) -> Block | None:
    """A block when the vendor refuses two options with the same label (`distinct_options`)
    and two of `options` read the same, surrounding spaces aside (the customer could not tell
    them apart either)."""
    if not rules.distinct_options:
        return None
    seen: set[str] = set()
    for option in options:
        label = option.strip()
        if label in seen:
            return Block(
                "content_not_supported",
                f"two options read {label!r}; {rules.name} refuses {shown_as} with the same "
                "label (each label is also the option's id)",
                "give each option a label of its own",
            )
        seen.add(label)
    return None


def _text_within(
    content: dict[str, Any], limit: int | None, what: str, form: str, rules: ChannelRules
) -> dict[str, Any] | Block:
    """`content`, or a block when the text above its `what` is longer than its `form` takes."""
    length = text_length(sent_text(content), rules)
    if limit is not None and length > limit:
        return Block(
            "text_too_long",
            f"the text above the {what} is {length:,} characters; {form} takes at most {limit:,}",
            f"shorten it to {limit:,} characters, or send the text and the question apart",
        )
    return content


_ITEMISED = ("carousel", "card")


def _as_text(
    content: dict[str, Any], kind: str, rules: ChannelRules, why: list[str]
) -> tuple[dict[str, Any], str] | Block:
    """Content the channel cannot carry (or sends as its link) as text: its text, its link where
    the channel carries links, a carousel's or card's items numbered (unless the author gave
    its own `fallback`). With the numbered items ("" for none); a block when there is no text."""
    fallback = content.get("fallback") or content.get("caption") or content.get("text")
    url = content.get("url")
    if kind != "sticker" and url and "link" in rules.content:
        fallback = f"{fallback}\n{url}" if fallback else url
    items = ""
    if kind in _ITEMISED and not content.get("fallback"):  # an author's own stands
        items = _numbered_items(content, rules)
    if items:
        fallback = f"{fallback}\n{items}" if fallback else items
    if not fallback:
        return Block(
            "content_not_supported",
            f"{rules.name} cannot carry {kind.replace('_', ' ')} and it has no text "
            "to send instead",
            "give the element a caption or a text fallback",
        )
    if kind in rules.content:
        why.append(f"a {kind} is sent on {rules.name} as its link")
    elif items:
        count = items.count("\n") + 1
        why.append(
            f"{rules.name} cannot carry {kind}: sent as its text and its {count} "
            f"item{'s' if count > 1 else ''}, numbered"
        )
    else:
        why.append(f"{rules.name} cannot carry {kind}: sent as its text")
    return {"kind": "text", "text": str(fallback)}, items


def _numbered_items(content: Mapping[str, Any], rules: ChannelRules) -> str:
    """A carousel's or card's items (else options) as numbered lines of text: each title, and
    its link where the channel carries links."""
    lines = []
    for n, choice in enumerate(template_messages.choices_of(content), 1):
        url = str(choice.get("url") or "") if "link" in rules.content else ""
        lines.append(f"{n}. {choice['title']}" + (f": {url}" if url else ""))
    return "\n".join(lines)


def _fitted(content: dict[str, Any], rules: ChannelRules, why: list[str]) -> dict[str, Any] | Block:
    """`content` as the channel's template message where it is one (LINE's templates, Meta's
    generic template), or why the channel would refuse it."""
    if generic_template.applies(content, rules):
        fitted = generic_template.shaped(content, rules)
    else:
        fitted = template_messages.fitted(content, rules)
    if isinstance(fitted, template_messages.Misfit):
        return Block(*fitted)
    unshown = generic_template.unshown(fitted, rules)
    if unshown:
        why.append(unshown)
    return fitted


def _as_link(kind: str, rules: ChannelRules) -> bool:
    """The channel carries `kind`, but its sender sends it as text with its URL."""
    return rules.send is not None and kind in rules.send.as_link


def _note_private_reply_target(state: dict[str, Any], event: InboundEvent) -> None:
    """Remember the customer's latest comment or post: a private reply answers that one."""
    item = event.comment_id if event.kind is EventKind.COMMENT else event.post_id
    if item is None:
        state.pop("private_reply_target", None)
        return
    kind = event.kind.value
    state["private_reply_target"] = {"kind": kind, "id": item, "at": event.timestamp.isoformat()}


def _sent_privately(delivery: Delivery, via: ChannelRules) -> Delivery:
    """The delivery of a private reply, with how it went (unless it carries another note)."""
    if delivery.reason_code:
        return delivery
    to = "a direct message to the author"
    for field in delivery.message.private_reply_to or {}:
        to = f"a Private Reply to the customer's {field.removesuffix('_id')}"
    note = f"privately by {via.name}, as {to}"
    reason = "; ".join(r for r in (note, delivery.reason) if r)
    return replace(delivery, reason_code="private_reply", reason=reason)


def _private_scope(channel: str, account: str) -> str:
    """The ledger's scope for the private replies one account sent by `channel`."""
    return f"private_reply:{channel}:{account}"


def _h(hours: float | None) -> timedelta:
    return timedelta(hours=hours or 0)


_VENDOR_CLOSED = "window_closed_by_vendor"


def _vendor_closed(conv: ConversationView) -> str | None:
    """The vendor's error code when it closed the window after the customer's last message."""
    closed = conv.channel_state.get(_VENDOR_CLOSED)
    if not isinstance(closed, dict) or conv.last_inbound_at is None:
        return None
    if datetime.fromisoformat(closed["at"]) < conv.last_inbound_at:
        return None  # the customer wrote since: the window opened again
    return str(closed.get("code", ""))


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _keyword(text: str) -> str:
    """A message as keywords are matched: compatibility forms folded (full-width letters),
    accents and invisible characters (zero-width, direction marks) dropped, upper case, spaces
    collapsed, and the punctuation, symbols and emoji around it off ("“Stop?” 🛑" is STOP)."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    kept = "".join(c for c in folded if unicodedata.category(c) not in ("Mn", "Cf"))
    return _AROUND.sub("", " ".join(kept.upper().split()))


_AROUND = re.compile(r"^[\W_]+|[\W_]+$")


@functools.cache
def _keywords(words: frozenset[str]) -> frozenset[str]:
    """Configured keywords as `_keyword` reads a message (a deployment may write 'arrêt')."""
    return frozenset(_keyword(word) for word in words)


def address_key(value: str) -> str:
    """A customer's or business's address as the ledger keys it: a phone number in E.164
    however it was written (spaces, dashes, dots, brackets; WhatsApp's wa_id has no +), any
    other id as it is."""
    digits = _PHONE_PUNCTUATION.sub("", value)
    if digits.lstrip("+").isdigit() and 8 <= len(digits.lstrip("+")) <= 15:
        return normalise_phone(digits) or value
    return value


_PHONE_PUNCTUATION = re.compile(r"[\s\-.()/]")


def _scope(channel: str, portfolio: Portfolio | None) -> str:
    """The ledger's name for what one messaging limit counts."""
    return f"{channel}:portfolio:{portfolio.name if portfolio else ''}"


def _without_tag(message: OutboundMessage) -> OutboundMessage:
    """Meta's message tag is the policy's to give (HUMAN_AGENT, outside the window): a message's
    own (an agent's reply content, say) is never sent; it is decided afresh each time."""
    if "tag" not in message.content:
        return message
    return replace(message, content={k: v for k, v in message.content.items() if k != "tag"})
