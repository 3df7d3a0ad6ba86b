"""The supervisor dashboard (`/supervisor`): queues, the longest active interactions and agents
live (the page's script follows `GET /api/supervisor/stream`), changing an agent's presence and
pulling an interaction back through the supervisor API; a period's queue figures and charts,
today's by default (`?from=YYYY-MM-DD&to=YYYY-MM-DD`); one interaction's details
(`/supervisor/interactions/{id}`), with its messages the vendor never got."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from flowlang.reporting.render import display
from flowlang.runtime.engine import Engine
from flowlang.service.agent_api import now_of
from flowlang.service.dashboard import Board
from flowlang.service.history import History, Period, PeriodError, history, period_of
from flowlang.service.state import service_of
from flowlang.store import Store
from flowlang.web.render import page
from flowlang.web.session import signed_in

router = APIRouter(include_in_schema=False)
NUMERIC = ("int", "seconds", "percent")


def board_of(request: Request) -> Board:
    board: Board = request.app.state.board
    return board


@router.get("/supervisor")
async def supervisor_page(
    request: Request,
    first: Annotated[str | None, Query(alias="from")] = None,
    last: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    """The dashboard, its history over `from`-`to` (whole UTC days; default today)."""
    user = await signed_in(request, "supervisor", "admin")
    if isinstance(user, Response):
        return user
    service, board = service_of(request), board_of(request)

    def read(engine: Engine) -> tuple[dict[str, Any], History, str | None]:
        now = now_of(engine)
        try:
            period, error = period_of(first, last, now), None
        except PeriodError as exc:
            period, error = period_of(None, None, now), str(exc)
        return board.snapshot(engine, now), history(board, period, now), error

    snapshot, past, error = await service.worker.call(read)
    return page(
        request,
        "supervisor.html.j2",
        user=user,
        title="Supervisor",
        data={"snapshot": snapshot},
        history=_table(past),
        history_title=_period_words(past.period),
        period_from=past.period.first.isoformat(),
        period_to=past.period.last.isoformat(),
        period_to_exclusive=(past.period.last + timedelta(days=1)).isoformat(),
        period_error=error,
        status_code=422 if error else 200,
    )


@router.get("/supervisor/interactions/{conversation_id}")
async def interaction_page(request: Request, conversation_id: str) -> Response:
    """One interaction as the interaction details report shows it."""
    user = await signed_in(request, "supervisor", "admin")
    if isinstance(user, Response):
        return user
    service, board = service_of(request), board_of(request)

    def read(engine: Engine) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
        found = board.details(conversation_id, now_of(engine))
        if found is None:
            return [], []
        (row,) = found.rows
        customer = engine.store.get_customer(row["customer"]) if row["customer"] else None
        if customer is not None and customer.name:
            row["customer"] = f"{customer.name} ({row['customer']})"
        fields = [(c.header, display(c, row.get(c.key))) for c in found.columns]
        return fields, undelivered(engine, service.store, conversation_id)

    fields, failed = await service.worker.call(read)
    return page(
        request,
        "supervisor_interaction.html.j2",
        user=user,
        title=f"Interaction {conversation_id}",
        conversation_id=conversation_id,
        fields=fields,
        undelivered=failed,
        missing=(
            f"No interaction {conversation_id} in the last days' log; `flowlang report "
            "interactions --from ... --to ...` reads the whole store."
        ),
        status_code=200 if fields else 404,
    )


LATEST_MESSAGES = 200
"""How many of the customer's latest messages the details page looks through for failures."""


def undelivered(engine: Engine, store: Store, conversation_id: str) -> list[dict[str, str]]:
    """The conversation's sent messages the vendor never got (among the customer's latest
    messages): when, the text, and why."""
    conv = engine.store.get_conversation(conversation_id)
    if conv is None:
        return []
    sent = [
        m
        for m in store.history(conv.customer_id, limit=LATEST_MESSAGES).messages
        if m["conversation_id"] == conversation_id and m["content"].get("message_id")
    ]
    kept = store.sent_messages([m["content"]["message_id"] for m in sent])
    out = []
    for message in sent:
        record = kept.get(message["content"]["message_id"])
        if record is not None and record.status == "failed":
            content = message["content"]
            out.append(
                {
                    "at": message["at"].strftime("%Y-%m-%d %H:%M:%S"),
                    "sender": str(message["sender"]),
                    "text": str(content.get("text") or content.get("url") or content.get("kind")),
                    "error": record.error,
                }
            )
    return out


def _table(past: History) -> dict[str, Any]:
    report = past.queues
    rows = [*report.rows, *([report.total] if report.total is not None else [])]
    return {
        "columns": [{"header": c.header, "numeric": c.kind in NUMERIC} for c in report.columns],
        "rows": [
            [(display(c, row.get(c.key)), c.kind in NUMERIC) for c in report.columns]
            for row in rows
        ],
        "has_total": report.total is not None,
        "notes": " ".join(report.notes),
        # Our own SVG, every text in it escaped by `step_chart` (as in the HTML report).
        "charts": [Markup(svg) for svg in past.charts],
    }


def _period_words(period: Period) -> str:
    first, last = period.first.strftime("%d %b %Y"), period.last.strftime("%d %b %Y")
    return first if first == last else f"{first} to {last}"
