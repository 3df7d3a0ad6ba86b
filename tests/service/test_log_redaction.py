"""uvicorn's access log never writes a credential a client put in a URL: an API token, a
session id, a stream ticket, a Meta webhook's verify token."""

from __future__ import annotations

import logging

import pytest

from flowlang.runtime.users import TOKEN_BYTES, TOKEN_PREFIX
from flowlang.service.log_redaction import ACCESS_LOGGER, REDACTED, redact_access_log, redacted

# A token of new_token()'s shape, the same in every pytest-xdist worker: the parameters below name
# the tests, and the workers must collect the same names.
TOKEN = TOKEN_PREFIX + "Q" * ((TOKEN_BYTES * 4 + 2) // 3)


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        (f"/api/agent/presence?token={TOKEN}", f"/api/agent/presence?token={REDACTED}"),
        (f"/api/agent/stream?x={TOKEN}&limit=5", f"/api/agent/stream?x={REDACTED}&limit=5"),
        ("/api/agent/stream?ticket=abc123", f"/api/agent/stream?ticket={REDACTED}"),
        ("/?session=fls_abc", f"/?session={REDACTED}"),
        ("/?q=fls_abc", f"/?q={REDACTED}"),
        (
            "/api/supervisor/reports/all?from=2026-12-01",
            "/api/supervisor/reports/all?from=2026-12-01",
        ),
        ("/health", "/health"),
        # Meta's subscription handshake: the verify token is the deployment's secret
        (
            "/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444"
            "&hub.verify_token=meatyhamhock",
            "/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444"
            f"&hub.verify_token={REDACTED}",
        ),
        (
            "/webhooks/messenger?HUB.VERIFY_TOKEN=s3cret",
            f"/webhooks/messenger?HUB.VERIFY_TOKEN={REDACTED}",
        ),
    ],
)
def test_credentials_in_a_url_are_redacted_and_nothing_else(path: str, shown: str) -> None:
    assert redacted(path) == shown


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_access_log_line_is_written_without_the_token() -> None:
    redact_access_log()
    redact_access_log()  # once is enough: installed once
    logger = logging.getLogger(ACCESS_LOGGER)
    assert sum(type(f).__name__ == "RedactCredentials" for f in logger.filters) == 1
    lines, level = Lines(), logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        logger.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            f"/api/agent/presence?access_token={TOKEN}",
            "1.1",
            401,
        )
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    (line,) = lines.lines
    assert TOKEN not in line
    assert f"/api/agent/presence?access_token={REDACTED} HTTP/1.1" in line
