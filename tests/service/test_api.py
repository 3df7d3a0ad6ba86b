"""The agent, supervisor and admin API under TestClient: tokens, roles, an agent acting only
on their own interactions, an agent session, history paging, publish and rollback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.api_helpers import V2, Api, make_api, revoke, under_test_client
from tests.service.helpers import METRICS_AUTH, environment


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    yield from under_test_client(make_api(tmp_path))


def api_routes(api: Api) -> list[tuple[str, str]]:
    """Every /api route of the OpenAPI document as (method, path with its parameters filled)."""
    found: list[tuple[str, str]] = []
    for path, operations in api.client.get("/openapi.json").json()["paths"].items():
        if path.startswith("/api/"):
            path = path.replace("{conversation_id}", "c1").replace("{agent}", "frank")
            path = path.replace("{version}", "v1").replace("{kind}", "queues")
            found.extend((method.upper(), path) for method in operations)
    return found


def offered_to_frank(api: Api, visitor: str = "v-1") -> str:
    """A web customer answers the flow's question; the conversation is offered to frank."""
    assert api.put("frank", "/api/agent/presence", {"state": "available"}).status_code == 200
    api.web(visitor, "Hello")
    api.web(visitor, "Eve")
    (conv_id,) = [c for c, state in api.work("frank").items() if state == "offered"]
    return conv_id


def test_every_api_route_refuses_a_missing_unknown_or_revoked_token(api: Api) -> None:
    routes = api_routes(api)
    assert len(routes) >= 15
    revoke(api, "sam")
    for index, (method, path) in enumerate(routes):
        # each route from an address of its own: its 3 failures stay under the limit on failed
        # sign-ins from one address (test_signin_limit.py); the app runs already
        client = TestClient(api.app, client=(f"192.0.2.{index + 1}", 50000))
        for headers in (
            {},
            {"Authorization": "Bearer flt_not-a-token"},
            {"Authorization": "Basic c2FtOnNhbQ=="},
            api.auth("sam"),  # revoked
        ):
            answer = client.request(method, path, headers=headers, json={})
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"


def test_a_token_in_the_url_is_refused_even_with_a_good_header(api: Api) -> None:
    token = api.tokens["frank"]
    for query in ({"token": token}, {"access_token": token}, {"q": token}):
        answer = api.get("frank", "/api/agent/interactions", params=query)
        assert answer.status_code == 401
        assert "never in the URL" in answer.json()["detail"]["reason"]
    assert api.get("frank", "/api/agent/interactions").status_code == 200


@pytest.mark.parametrize(
    ("user", "method", "path"),
    [
        ("frank", "GET", "/api/supervisor/realtime"),
        ("frank", "PUT", "/api/supervisor/agents/alice/presence"),
        ("frank", "GET", "/api/admin/flows"),
        ("sam", "GET", "/api/agent/interactions"),  # a supervisor acting as an agent
        ("sam", "POST", "/api/agent/interactions/c1/reply"),
        ("sam", "GET", "/api/agent/stream"),
        ("sam", "POST", "/api/admin/flows"),
        ("ada", "POST", "/api/agent/interactions/c1/accept"),
    ],
)
def test_a_route_of_another_role_is_403(api: Api, user: str, method: str, path: str) -> None:
    body = {"state": "away", "text": "x"}
    answer = api.client.request(method, path, headers=api.auth(user), json=body)
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"]["code"] == "wrong_role"


def test_an_agent_session_from_offer_to_report(api: Api) -> None:
    conv = offered_to_frank(api)
    accepted = api.post("frank", f"/api/agent/interactions/{conv}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "with_agent"
    assert api.work("frank") == {conv: "assigned"}

    before = len(api.sent.sent)
    replied = api.post("frank", f"/api/agent/interactions/{conv}/reply", {"text": "Hi Eve!"})
    assert replied.status_code == 200, replied.text
    assert replied.json()["deliveries"][0]["status"] == "queued"
    api.settled()  # the reply delivered by the outbox's thread
    out = api.sent.sent[before:]
    assert [(m.channel, m.sender, m.content["text"]) for m in out] == [("web", "agent", "Hi Eve!")]

    wrong = api.post("frank", f"/api/agent/interactions/{conv}/complete", {"wrap_up": "Banana"})
    assert wrong.status_code == 422
    assert wrong.json()["detail"]["code"] == "wrap_up_invalid"
    assert api.work("frank") == {conv: "assigned"}  # a refused complete changed nothing
    done = api.post("frank", f"/api/agent/interactions/{conv}/complete", {"wrap_up": "Resolved"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "closed"
    assert api.work("frank") == {}

    report = api.get("sam", "/api/supervisor/reports/interactions", params={"from": "2020-01-01"})
    assert report.status_code == 200, report.text
    (row,) = report.json()["reports"][0]["rows"]
    assert row["conversation"] == conv
    assert row["agents"] == ["frank"] and row["wrap_up"] == "Resolved"


def test_rich_replies_go_by_the_channels_rules_and_a_blocked_one_is_never_sent(
    api: Api,
) -> None:
    conv = offered_to_frank(api)
    api.post("frank", f"/api/agent/interactions/{conv}/accept")
    path = f"/api/agent/interactions/{conv}/reply"
    sent = len(api.sent.sent)
    image = {"kind": "image", "url": "https://gbank.example/card.png"}
    assert api.post("frank", path, {"content": image}).json()["deliveries"][0]["status"] == "queued"
    choices = {"kind": "quick_replies", "text": "Pick one", "options": [f"o{i}" for i in range(12)]}
    degraded = api.post("frank", path, {"content": choices}).json()["deliveries"][0]
    assert degraded["status"] == "degraded" and len(degraded["content"]["options"]) == 10
    api.settled()
    assert [m.content["kind"] for m in api.sent.sent[sent:]] == ["image", "quick_replies"]

    sticker = api.post("frank", path, {"content": {"kind": "sticker", "sticker_id": "42"}})
    assert sticker.status_code == 409
    assert sticker.json()["detail"]["code"] == "content_not_supported"
    assert "Web Messaging cannot carry sticker" in sticker.json()["detail"]["reason"]
    too_long = api.post("frank", path, {"text": "x" * 4001})
    assert too_long.status_code == 409 and too_long.json()["detail"]["code"] == "text_too_long"
    api.settled()
    assert len(api.sent.sent) == sent + 2  # nothing more went out
    metrics = api.client.get("/metrics", headers=METRICS_AUTH).text
    assert 'flowlang_deliveries_total{status="blocked"} 2.0' in metrics  # the policy's refusals
    assert f'flowlang_deliveries_total{{status="sent"}} {float(len(api.sent.sent))}' in metrics
    for empty in ({}, {"text": "  "}, {"content": {"url": "https://x"}}):
        assert api.post("frank", path, empty).status_code == 422


def test_an_agent_cannot_touch_an_interaction_that_is_not_theirs(api: Api) -> None:
    conv = offered_to_frank(api)
    sent = len(api.sent.sent)
    for action, body in [
        ("accept", {}),
        ("decline", {}),
        ("reply", {"text": "I am not frank"}),
        ("transfer", {"queue": "Cards"}),
        ("complete", {"wrap_up": "Resolved"}),
        ("wrap-up", {"wrap_up": "Resolved"}),
    ]:
        answer = api.post("alice", f"/api/agent/interactions/{conv}/{action}", body)
        assert answer.status_code == 403, (action, answer.text)
        assert answer.json()["detail"] == {
            "code": "not_yours",
            "reason": f"conversation {conv} is not offered or assigned to alice",
        }
    history = api.get("alice", f"/api/agent/interactions/{conv}/history")
    assert history.status_code == 403
    # A conversation that does not exist gets the very same answer: ids cannot be probed.
    ghost = api.post("alice", "/api/agent/interactions/c999/accept")
    assert ghost.status_code == 403 and ghost.json()["detail"]["code"] == "not_yours"
    assert len(api.sent.sent) == sent
    assert api.work("frank") == {conv: "offered"}  # still frank's to take
    assert api.work("alice") == {}


def test_the_engine_judges_what_an_agent_may_do_with_their_own_work(api: Api) -> None:
    conv = offered_to_frank(api)
    early = api.post("frank", f"/api/agent/interactions/{conv}/reply", {"text": "too soon"})
    assert early.status_code == 403
    assert early.json()["detail"]["code"] == "not_holder"
    assert api.post("frank", f"/api/agent/interactions/{conv}/accept").status_code == 200
    again = api.post("frank", f"/api/agent/interactions/{conv}/accept")
    assert again.status_code == 403 and again.json()["detail"]["code"] == "offer_not_open"


def test_a_declined_offer_is_no_longer_the_agents(api: Api) -> None:
    conv = offered_to_frank(api)
    declined = api.post("frank", f"/api/agent/interactions/{conv}/decline")
    assert declined.status_code == 200, declined.text
    assert conv not in api.work("frank")
    reply = api.post("frank", f"/api/agent/interactions/{conv}/reply", {"text": "hello"})
    assert reply.status_code == 403 and reply.json()["detail"]["code"] == "not_yours"


def test_a_transfer_to_an_unknown_queue_or_agent_is_422_and_changes_nothing(api: Api) -> None:
    conv = offered_to_frank(api)
    api.post("frank", f"/api/agent/interactions/{conv}/accept")
    for body, code in [
        ({"queue": "Nowhere"}, "unknown_queue"),
        ({"agent": "mallory"}, "unknown_agent"),
        ({"agent": "frank"}, "transfer_to_self"),
    ]:
        answer = api.post("frank", f"/api/agent/interactions/{conv}/transfer", body)
        assert answer.status_code == 422 and answer.json()["detail"]["code"] == code
    assert api.work("frank") == {conv: "assigned"}
    moved = api.post("frank", f"/api/agent/interactions/{conv}/transfer", {"queue": "Cards"})
    assert moved.status_code == 200, moved.text
    assert conv not in api.work("frank")
    assert api.work("alice") == {conv: "assigned"} or api.work("kenji") == {conv: "assigned"}


def test_presence_is_the_agents_own_and_supervisors_change_anyones(api: Api) -> None:
    assert api.put("frank", "/api/agent/presence", {"state": "away"}).json() == {
        "agent": "frank",
        "state": "away",
    }
    bad = api.put("frank", "/api/agent/presence", {"state": "asleep"})
    assert bad.status_code == 422
    changed = api.put("sam", "/api/supervisor/agents/alice/presence", {"state": "offline"})
    assert changed.json() == {"agent": "alice", "state": "offline"}
    assert api.get("alice", "/api/agent/presence").json()["state"] == "offline"
    unknown = api.put("sam", "/api/supervisor/agents/mallory/presence", {"state": "away"})
    assert unknown.status_code == 404
    listed = {a["agent"]: a["state"] for a in api.get("sam", "/api/supervisor/agents").json()}
    assert listed["frank"] == "away" and listed["alice"] == "offline"


def test_history_pages_back_to_the_customers_first_message_across_conversations(
    api: Api,
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=5)
    api.whatsapp("447700900123", "first, five days ago", long_ago)
    api.whatsapp("447700900123", "second, five days ago", long_ago + timedelta(minutes=1))
    api.whatsapp("447700900123", "now again", datetime.now(UTC))
    work = api.work("alice") or api.work("kenji")
    agent = "alice" if api.work("alice") else "kenji"
    current = [c for c, state in work.items() if state == "assigned"][-1]
    texts: list[str] = []
    conversations: set[str] = set()
    before = None
    pages = 0
    while True:
        params = {"limit": 1} | ({"before": before} if before is not None else {})
        page = api.get(agent, f"/api/agent/interactions/{current}/history", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        texts = [m["content"].get("text", "") for m in body["messages"]] + texts
        conversations |= {m["conversation_id"] for m in body["messages"]}
        pages += 1
        before = body["before"]
        if before is None:
            break
    assert texts == ["first, five days ago", "second, five days ago", "now again"]
    assert len(conversations) == 2 and pages == 3
    too_big = api.get(agent, f"/api/agent/interactions/{current}/history", params={"limit": 10**6})
    assert too_big.status_code == 422


def test_supervisors_read_realtime_and_period_reports(api: Api) -> None:
    conv = offered_to_frank(api)
    api.post("frank", f"/api/agent/interactions/{conv}/accept")
    now = api.get("sam", "/api/supervisor/realtime")
    assert now.status_code == 200, now.text
    queues = {r["report"]: r for r in now.json()["reports"]}["realtime"]["rows"]
    overflow_now = next(q for q in queues if q["queue"] == "Overflow")
    assert overflow_now["in_progress"] == 1 and overflow_now["waiting"] == 0
    day = api.get("ada", "/api/supervisor/reports/queues", params={"from": "2020-01-01"})
    assert day.status_code == 200, day.text
    overflow = next(r for r in day.json()["reports"][0]["rows"] if r["queue"] == "Overflow")
    assert overflow["routed"] == 1 and overflow["answered"] == 1
    backwards = api.get(
        "sam", "/api/supervisor/reports/queues", params={"from": "2026-02-01", "to": "2026-01-01"}
    )
    assert backwards.status_code == 422


def test_publish_checks_the_flow_and_returns_its_diagnostics(api: Api) -> None:
    before = api.get("ada", "/api/admin/flows").json()
    broken = 'flow "Broken"\nserve messages on web\n\nstate start:\n    route to queue "Nowhere"\n'
    answer = api.post("ada", "/api/admin/flows", {"text": broken})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail["code"] == "flow_has_errors"
    (problem,) = [d for d in detail["diagnostics"] if d["severity"] == "error"]
    assert problem["code"] == "FL101" and problem["file"] == "api.flow" and problem["line"] == 5
    assert api.get("ada", "/api/admin/flows").json() == before  # nothing was published


def test_publish_then_rollback_keeps_conversations_in_flight_on_their_version(api: Api) -> None:
    v1 = api.get("ada", "/api/admin/flows").json()["current"]
    api.web("early", "Hello")  # asked version one's question; waits for the answer
    published = api.post("ada", "/api/admin/flows", {"text": V2})
    assert published.status_code == 201, published.text
    v2 = published.json()["version"]
    assert v2 != v1 and published.json()["previous"] == v1

    api.web("early", "Eve")  # answers on version one
    api.web("late", "Hello")  # a new conversation starts on version two
    said = [m.content.get("text") for m in api.sent.sent]
    assert "Thanks, version one" in said and "Version two: your name?" in said
    assert "Thanks, version two" not in said

    back = api.post("ada", f"/api/admin/flows/{v1}/publish")
    assert back.status_code == 200 and back.json() == {
        "version": v1,
        "flow": "API test",
        "previous": v2,
    }
    api.web("later", "Hello")
    assert api.sent.sent[-1].content["text"] == "Version one: your name?"
    listed = api.get("ada", "/api/admin/flows").json()
    assert listed["current"] == v1
    assert [v["version"] for v in listed["versions"]] == [v1, v2]
    by_version = {v["version"]: v for v in listed["versions"]}
    assert by_version[v2]["published_by"] == ["ada"] and by_version[v1]["published_by"] == ["ada"]
    unknown = api.post("ada", "/api/admin/flows/0000000000000000/publish")
    assert unknown.status_code == 404


def test_a_published_flow_uses_modules_from_the_served_flows_folder(
    api: Api, tmp_path: Path
) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "greet.flow").write_text(
        'module "Greetings"\n\ntask greet:\n    reply "Hello from the module"\n', "utf-8"
    )
    with_module = V2.replace(
        'flow "API test"\n', 'flow "API test"\nuse "common/greet.flow"\n'
    ).replace("    if message.channel", "    call task greet\n    if message.channel")
    published = api.post("ada", "/api/admin/flows", {"text": with_module})
    assert published.status_code == 201, published.text
    api.web("visitor", "Hello")  # a new conversation: the published version, with the module
    said = [m.content.get("text") for m in api.sent.sent]
    assert said[-2:] == ["Hello from the module", "Version two: your name?"]

    missing = with_module.replace("common/greet.flow", "common/gret.flow")
    refused = api.post("ada", "/api/admin/flows", {"text": missing})
    assert refused.status_code == 422
    (problem,) = [d for d in refused.json()["detail"]["diagnostics"] if d["code"] == "FL132"]
    assert problem["line"] == 2 and "common/gret.flow" in problem["message"]


def test_a_flow_of_another_name_is_not_published(api: Api) -> None:
    before = api.get("ada", "/api/admin/flows").json()
    other = V2.replace('flow "API test"', 'flow "Another flow"')
    answer = api.post("ada", "/api/admin/flows", {"text": other})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail["code"] == "unknown_flow"
    assert (
        "the flow is named 'Another flow'; the flows running here are 'API test'"
        in (detail["reason"])
    )
    assert api.get("ada", "/api/admin/flows").json() == before


def test_openapi_lists_the_api_with_its_models(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/agent/presence",
        "/api/agent/interactions",
        "/api/agent/interactions/{conversation_id}/reply",
        "/api/agent/interactions/{conversation_id}/history",
        "/api/agent/stream",
        "/api/agent/stream-ticket",
        "/api/supervisor/realtime",
        "/api/supervisor/reports/{kind}",
        "/api/admin/flows",
        "/api/admin/flows/{version}/publish",
    ):
        assert path in paths, path
    assert {"ReplyRequest", "ActionResult", "HistoryPageView", "WorkItem"} <= set(
        spec["components"]["schemas"]
    )
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_a_published_flow_reads_no_module_from_outside_the_flows_folder(
    api: Api, tmp_path: Path
) -> None:
    """An admin's flow text cannot make the server read (and echo, word by word, in its
    diagnostics) a file outside the flows folder: a secret file, the process's environment."""
    (tmp_path.parent / "secret.env").write_text("TOPSECRETVALUE\n", "utf-8")
    outside = tmp_path / "common"
    outside.mkdir(exist_ok=True)
    (outside / "leak.flow").symlink_to(tmp_path.parent / "secret.env")
    for path in ("../secret.env", "common/leak.flow", "/proc/self/environ"):
        text = V2.replace('flow "API test"\n', f'flow "API test"\nuse "{path}"\n')
        answer = api.post("ada", "/api/admin/flows", {"text": text})
        assert answer.status_code == 422, answer.text
        assert "TOPSECRETVALUE" not in answer.text
        (problem,) = answer.json()["detail"]["diagnostics"]
        assert (problem["code"], problem["line"]) == ("FL132", 2)
        assert "outside the flows folder" in problem["message"]
