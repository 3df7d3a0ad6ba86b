"""Who may read `/metrics`: a scraper that sends the deployment's metrics token
(`Authorization: Bearer ...`, Prometheus's `authorization` / `bearer_token_file`). The token is
in the environment variable that `access.metrics_token_env` names; with none configured,
`/metrics` answers no one. Queue names, agent counts and rates are the center's business, and
a loopback-only rule would protect nothing behind a reverse proxy on the same host
(docs/service.md, "Metrics")."""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Mapping

from fastapi import Request, status
from fastapi.responses import JSONResponse, Response

from flowlang.config import Deployment
from flowlang.config.secrets import missing_why, secret_in

log = logging.getLogger("flowlang.service")


def metrics_token(deployment: Deployment, environ: Mapping[str, str] | None = None) -> str | None:
    """The token `/metrics` asks for (None: none configured, so it answers no one; a variable
    named but unset or blank is logged)."""
    variable = deployment.access.metrics_token_env
    if variable is None:
        return None
    env = os.environ if environ is None else environ
    token = secret_in(env, variable)
    if token is None:
        log.warning(
            "access.metrics_token_env: the environment variable %s %s; /metrics answers no "
            "one until it is set",
            variable,
            missing_why(env, variable),
        )
    return token


def metrics_refusal(request: Request, token: str | None) -> Response | None:
    """The answer that refuses `request` /metrics (None: it may read them): 403 when no
    metrics token is configured, 401 when the request does not carry it."""
    if token is None:
        return _refused(
            status.HTTP_403_FORBIDDEN,
            "metrics_off",
            "/metrics needs a metrics token: name its environment variable in the "
            "deployment's access.metrics_token_env, and send it as Authorization: Bearer",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode("utf-8", "replace"), token.encode()
    ):
        return _refused(
            status.HTTP_401_UNAUTHORIZED,
            "unauthorized",
            "/metrics needs the metrics token: Authorization: Bearer <token>",
        )
    return None


def _refused(status_code: int, code: str, reason: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
    return JSONResponse(
        {"detail": {"code": code, "reason": reason}}, status_code=status_code, headers=headers
    )
