"""uvicorn's access log (`--log-level debug`) without credentials: a request that carries an
API token, a session id or a stream ticket in its URL is refused (`access.py`), but its request
line would still be logged as sent; Meta's subscription handshake puts the deployment's verify
token in its URL. `RedactCredentials` replaces each such query value with
`[redacted]` before the line is written."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode

from flowlang.runtime.users import TOKEN_PREFIX
from flowlang.service.sessions import SESSION_PREFIX

ACCESS_LOGGER = "uvicorn.access"
SECRET_NAMES = frozenset(
    {
        "token",
        "access_token",
        "api_key",
        "apikey",
        "key",
        "auth",
        "ticket",
        "session",
        "hub.verify_token",  # Meta's subscription handshake: the deployment's verify token
    }
)
REDACTED = "[redacted]"


def redacted(path: str) -> str:
    """`path` with the value of each query parameter that is or looks like a credential
    replaced."""
    where, mark, query = path.partition("?")
    if not mark:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_secret(name, value) for name, value in pairs):
        return path
    kept = [(name, REDACTED if _secret(name, value) else value) for name, value in pairs]
    return f"{where}?{urlencode(kept, safe='[]')}"


def _secret(name: str, value: str) -> bool:
    return name.lower() in SECRET_NAMES or value.startswith((TOKEN_PREFIX, SESSION_PREFIX))


class RedactCredentials(logging.Filter):
    """Redacts the path of uvicorn's access log records (args: client, method, path, ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redacted(args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    """Install `RedactCredentials` on uvicorn's access logger (once per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactCredentials) for f in logger.filters):
        logger.addFilter(RedactCredentials())
