"""The fake vendor server the sender and service tests point their API base at."""

from __future__ import annotations

import httpx
import pytest

from tests.fake_vendor import FakeVendor, Reply


def test_it_records_each_request_and_answers_as_scripted(fake_vendor: FakeVendor) -> None:
    fake_vendor.script(Reply.retry_after(7), Reply.error(400, {"error": {"code": 131047}}))
    with httpx.Client(base_url=fake_vendor.base_url) as client:
        first = client.post("/v1/messages?x=1", json={"to": "1"}, headers={"X-Key": "k"})
        second = client.post("/v1/messages", data={"To": "+44", "Body": "hi"})
        third = client.get("/me")
    assert (first.status_code, first.headers["retry-after"]) == (429, "7")
    assert second.status_code == 400 and second.json() == {"error": {"code": 131047}}
    assert third.status_code == 200  # the script is used up: the default answer
    one, two, three = fake_vendor.requests
    assert (one.method, one.path, one.query) == ("POST", "/v1/messages", {"x": ["1"]})
    assert one.headers["x-key"] == "k" and one.json() == {"to": "1"}
    assert two.form() == {"To": ["+44"], "Body": ["hi"]}
    assert (three.method, three.path, three.body) == ("GET", "/me", b"")


def test_a_hang_outlasts_the_client_timeout_and_ends_with_the_server() -> None:
    with FakeVendor() as vendor:
        vendor.script(Reply.hang(30))
        with pytest.raises(httpx.TimeoutException):
            httpx.post(vendor.base_url + "/slow", json={}, timeout=0.2)
        assert [r.path for r in vendor.requests] == ["/slow"]
