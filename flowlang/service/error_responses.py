"""Error responses that cannot fail while being written: FastAPI's default handlers encode the
answer as UTF-8, so a request holding a lone UTF-16 surrogate (`"\\ud800"` in its JSON, which
the 422 echoes back) turned a refusal into a 500. These answer the same JSON, ASCII-escaped."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

NO_BODY = frozenset({204, 304})


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: any Python text can be written."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
        ).encode("ascii")


async def invalid_request(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return AsciiJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


async def refused(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code < 200 or exc.status_code in NO_BODY:
        return Response(status_code=exc.status_code, headers=exc.headers)
    return AsciiJSONResponse(
        {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
    )


def install(app: FastAPI) -> None:
    """Answer validation errors and HTTP exceptions as FastAPI does, without failing on text
    that UTF-8 cannot encode."""
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, refused)
