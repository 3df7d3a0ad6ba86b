"""Vendor ids from message data never move a send to another endpoint: an X sender id
`../../tweets?x=` must not turn a DM into a public tweet, nor a comment id post to a page feed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.channels.outbound import DeliveryError
from flowlang.channels.outbound.send_bodies import PrivateReplyError
from flowlang.channels.registry import builtin_registry
from flowlang.channels.senders import Credentials, VendorSender
from flowlang.runtime.ports import OutboundMessage
from tests.fake_vendor import FakeVendor

BASE = "https://vendor.example/api"
IDS = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["..", ".", "/", "?", "#", "%2F", "%2E", "x=", "tweets", "feed"])).map(
        "".join
    ),
)


def _sender(channel: str, base: str = BASE) -> VendorSender:
    return VendorSender(builtin_registry()[channel], Credentials("t"), api_base=base)


def _message(channel: str, recipient: str, **more: Any) -> OutboundMessage:
    account = more.pop("account", "104857362910")
    return OutboundMessage(
        "conv-1", channel, account, recipient, "agent", {"text": "hi"}, message_id="m-1", **more
    )


def _path(channel: str, message: OutboundMessage) -> str | None:
    """The path the HTTP client would request, or None when the send is refused unsent."""
    try:
        request = _sender(channel).request(message)
    except (DeliveryError, PrivateReplyError) as refused:
        assert getattr(refused, "permanent", False)
        return None
    url = httpx.URL(request.url)
    assert url.host == "vendor.example"
    return url.raw_path.decode("ascii").split("?")[0]


def _one_segment(path: str | None, before: str, after: str) -> None:
    if path is None:
        return
    assert path.startswith(before) and path.endswith(after), path
    middle = path[len(before) : len(path) - len(after)]
    assert middle and "/" not in middle, path


@settings(max_examples=300, deadline=None)
@given(IDS)
def test_an_x_dm_always_goes_to_the_dm_endpoint(sender_id: str) -> None:
    path = _path("x_dm", _message("x_dm", sender_id))
    _one_segment(path, "/api/2/dm_conversations/with/", "/messages")


@settings(max_examples=300, deadline=None)
@given(IDS)
def test_a_comment_reply_always_goes_to_that_comments_endpoint(comment_id: str) -> None:
    path = _path("facebook_page", _message("facebook_page", "u1", in_reply_to=comment_id))
    _one_segment(path, "/api/", "/comments")


@settings(max_examples=300, deadline=None)
@given(IDS, st.sampled_from(["messenger", "instagram"]))
def test_a_private_reply_never_reaches_a_public_endpoint(account: str, channel: str) -> None:
    message = _message(channel, "u1", account=account, private_reply_to={"comment_id": "987_11"})
    path = _path(channel, message)
    _one_segment(path, "/api/", "/messages")


def test_the_red_team_ids_stay_in_their_segment(fake_vendor: FakeVendor) -> None:
    """What the vendor receives: the hostile id percent-encoded inside the DM endpoint."""
    _sender("x_dm", fake_vendor.base_url).send(_message("x_dm", "../../tweets?x="))
    _sender("facebook_page", fake_vendor.base_url).send(
        _message("facebook_page", "u1", in_reply_to="../104857362910/feed?x=")
    )
    paths = [request.path for request in fake_vendor.requests]
    assert paths == [
        "/2/dm_conversations/with/..%2F..%2Ftweets%3Fx%3D/messages",
        "/..%2F104857362910%2Ffeed%3Fx%3D/comments",
    ]


@pytest.mark.parametrize("hostile", ["", ".", ".."])
def test_a_dot_segment_id_is_refused_unsent(fake_vendor: FakeVendor, hostile: str) -> None:
    with pytest.raises(DeliveryError, match="not a vendor id") as refused:
        _sender("x_dm", fake_vendor.base_url).send(_message("x_dm", hostile))
    assert refused.value.permanent and fake_vendor.requests == []
