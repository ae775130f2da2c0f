"""HTTP answers of the server's routes: plain text and JSON with the same headers, and refusals.

Every answer is ``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff``. A route
refuses by raising :class:`Refusal`; the application's handler (:func:`refusal_response`)
answers it as text (the console's routes, the handshake routes) or JSON (the REST API),
and turns a request body or parameter that does not validate into 400 naming the field
(:func:`validation_response`) instead of FastAPI's 422.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response

TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=utf-8"
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="monitor"'}
"""Sent with a 401 on the token routes (PROTOCOL.md); not by the console's routes, whose page signs in itself."""


def respond(
    status: int, body: bytes | str, content_type: str = TEXT, headers: dict[str, str] | None = None
) -> Response:
    """An answer with ``body`` and the common headers (``headers`` added last)."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    response = Response(data, status_code=status, media_type=None)
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def json_response(status: int, value: Any, headers: dict[str, str] | None = None) -> Response:
    """``value`` as UTF-8 JSON (Chinese kept readable)."""
    return respond(status, json.dumps(value, ensure_ascii=False), JSON, headers)


class Refusal(Exception):
    """A request refused with ``status`` and a one-line ``message``; ``as_json`` for the REST API
    (``{"error": code, "message": ...}``), else plain text (``message`` and a newline)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "refused",
        as_json: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.as_json = as_json
        self.headers = headers or {}


async def refusal_response(request: Request, exc: Exception) -> Response:
    """The exception handler for :class:`Refusal`."""
    assert isinstance(exc, Refusal)
    if exc.as_json:
        return json_response(exc.status, {"error": exc.code, "message": exc.message}, exc.headers)
    return respond(exc.status, exc.message + "\n", TEXT, exc.headers)


def describe_validation(exc: RequestValidationError) -> tuple[str, list[str]]:
    """One line naming every bad field (``body.decision: Input should be ...``) and the field names."""
    parts: list[str] = []
    fields: list[str] = []
    for error in exc.errors():
        location = [str(p) for p in error.get("loc", ())]
        where = ".".join(location) or "request"
        fields.append(location[-1] if len(location) > 1 else where)
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts), fields


async def validation_response(request: Request, exc: Exception) -> Response:
    """400 (not FastAPI's 422) with ``{"error": "bad_request", "message", "fields"}``."""
    assert isinstance(exc, RequestValidationError)
    message, fields = describe_validation(exc)
    return json_response(400, {"error": "bad_request", "message": message, "fields": fields})
