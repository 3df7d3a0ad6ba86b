"""X (Twitter) Account Activity API webhooks: DMs, mentions and replies, deletions, reads.

Format: developer.x.com/en/docs/x-api/enterprise/account-activity-api/guides/
account-activity-data-objects
The business account is `for_user_id`; events the business itself caused are ignored, and so
are reposts (no words of the reposter's own). An edited post arrives as a new post whose
`edit_history` names the first version: it is an edit of that post.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flowlang.channels.inbound.fields import Ignored, Node
from flowlang.events import Attachment, EventKind, InboundEvent

_MEDIA = {"photo": "image", "video": "video", "animated_gif": "video"}
EVENT_LISTS = (
    "direct_message_events[]|tweet_create_events[]|tweet_delete_events[]"
    "|direct_message_mark_read_events[]"
)


def subscribed_user(body: dict[str, Any]) -> str:
    """The numeric id of the account a request (or one event of it) is for: `for_user_id`,
    which names it whatever the event (an event's `account` is its @handle when the event
    carries it, else that id)."""
    return str(body.get("for_user_id", ""))


def account_activity(root: Node, received_at: datetime) -> list[InboundEvent | Ignored]:
    business = root.text("for_user_id")
    users = root.get("users")
    handle = _handle(users, business) if users is not None else None
    account = handle or _mentioned_handle(root, business) or business
    events: list[InboundEvent | Ignored] = []
    for dm in root.items("direct_message_events"):
        if dm.text("type") != "message_create":
            events.append(Ignored(f"a {dm.text('type')} event is not a message"))
            continue
        create = dm.need("message_create")
        sender = create.text("sender_id")
        if sender == business:
            events.append(Ignored("the business's own direct message, echoed back"))
            continue
        data = create.need("message_data")
        quick = data.get("quick_reply_response")
        attachment = data.get("attachment")
        attachments: tuple[Attachment, ...] = ()
        if attachment is not None and attachment.has("media"):
            media = attachment.need("media")
            attachments = (
                Attachment(
                    type=_MEDIA.get(media.text("type", "photo"), "other"),
                    url=media.optional_text("media_url_https"),
                ),
            )
        profile = users.get(sender) if users is not None else None
        events.append(
            InboundEvent(
                event_id=dm.text("id"),
                channel="x_dm",
                kind=EventKind.POSTBACK if quick is not None else EventKind.MESSAGE,
                account=account,
                sender_id=sender,
                sender_name=profile.optional_text("name") if profile is not None else None,
                text=data.text("text", ""),
                attachments=attachments,
                postback=quick.optional_text("metadata") if quick is not None else None,
                timestamp=dm.epoch("created_timestamp", unit=1000),
                raw=dm.value,
            )
        )
    for tweet in root.items("tweet_create_events"):
        user = tweet.need("user")
        if user.text("id_str") == business:
            events.append(Ignored("the business's own post or reply"))
            continue
        reposted = tweet.get("retweeted_status")
        if reposted is not None:
            events.append(Ignored(_repost(reposted, business)))
            continue
        extended = tweet.get("extended_tweet")
        text = extended.text("full_text") if extended is not None else tweet.text("text")
        parent = tweet.optional_text("in_reply_to_status_id_str")
        tweet_id = tweet.text("id_str")
        first = _first_version(tweet)
        kind = EventKind.COMMENT if parent else EventKind.POST
        events.append(
            InboundEvent(
                event_id=tweet_id,
                channel="x_public",
                kind=EventKind.EDIT if first not in (None, tweet_id) else kind,
                account=account,
                sender_id=user.text("id_str"),
                sender_name=user.optional_text("name"),
                text=text,
                post_id=parent or tweet_id,
                parent_id=parent,
                refers_to=first if first != tweet_id else None,
                comment_id=tweet_id if parent else None,
                timestamp=tweet.epoch("timestamp_ms", unit=1000),
                raw=tweet.value,
            )
        )
    for deleted in root.items("tweet_delete_events"):
        status = deleted.need("status")
        events.append(
            InboundEvent(
                event_id=f"delete:{status.text('id')}",
                channel="x_public",
                kind=EventKind.DELETE,
                account=account,
                sender_id=status.text("user_id"),
                post_id=status.text("id"),
                refers_to=status.text("id"),
                timestamp=deleted.epoch("timestamp_ms", unit=1000),
                raw=deleted.value,
            )
        )
    for read in root.items("direct_message_mark_read_events"):
        reader = read.text("sender_id")
        if reader == business:
            events.append(Ignored("the business read its own conversation"))
            continue
        events.append(
            InboundEvent(
                event_id=f"read:{reader}:{read.text('created_timestamp')}",
                channel="x_dm",
                kind=EventKind.RECEIPT,
                account=account,
                sender_id=reader,
                text="read",
                timestamp=read.epoch("created_timestamp", unit=1000),
                raw=read.value,
            )
        )
    return events


def _repost(reposted: Node, business: str) -> str:
    author = reposted.get("user")
    if author is not None and author.optional_text("id_str") == business:
        return "a repost of the business's own post: the customer wrote nothing to answer"
    return "a repost carries no words of the reposter's own: the original post is answered"


def _first_version(tweet: Node) -> str | None:
    """The id of the post's first version when it has been edited (`edit_history`)."""
    history = tweet.get("edit_history")
    return history.optional_text("initial_tweet_id") if history is not None else None


def _handle(users: Node, user_id: str) -> str | None:
    profile = users.get(user_id)
    if profile is None:
        return None
    name = profile.optional_text("screen_name")
    return f"@{name}" if name else None


def _mentioned_handle(root: Node, business: str) -> str | None:
    """The business's @handle as the tweets mention it (tweet events carry no `users` map)."""
    for tweet in root.items("tweet_create_events"):
        if tweet.optional_text("in_reply_to_user_id_str") == business:
            name = tweet.optional_text("in_reply_to_screen_name")
            if name:
                return f"@{name}"
        entities = tweet.get("entities")
        for mention in entities.items("user_mentions") if entities is not None else []:
            if mention.optional_text("id_str") == business:
                return f"@{mention.text('screen_name')}"
    return None
