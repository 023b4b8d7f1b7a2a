"""Typed errors built from Tollgate's `application/problem+json` answers.

Every error the server sends has a stable `code`; branch on it (or on the subclass), never on
`detail`, which is prose for humans.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import httpx

__all__ = [
    "TollgateError",
    "APIConnectionError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "ValidationError",
    "RateLimitError",
    "ServerError",
    "BatcherFullError",
    "error_from_response",
    "parse_retry_after",
]


class TollgateError(Exception):
    """An error answer of the API (or, for `APIConnectionError`, no answer at all)."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str | None = None,
        title: str | None = None,
        type: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}" if status else detail)
        self.detail = detail
        self.status = status
        self.code = code
        self.title = title
        self.type = type
        #: For 422: one entry per mistake, each `{"path": ..., "message": ...}`.
        self.errors: list[dict[str, Any]] = errors or []
        #: The whole problem document, extension members (`decision`, `upgrade`) included.
        self.body: dict[str, Any] = dict(body or {})
        self.headers: dict[str, str] = dict(headers or {})


class APIConnectionError(TollgateError):
    """The server could not be reached (after the retries)."""


class BadRequestError(TollgateError):
    """400: the request itself is wrong (`invalid_json`, `invalid_target`, ...)."""


class AuthenticationError(TollgateError):
    """401: missing, unknown or revoked key."""


class PermissionDeniedError(TollgateError):
    """403: a customer key on an admin call (`forbidden`) or a suspended customer."""


class NotFoundError(TollgateError):
    """404: also what a customer key gets for another customer."""


class ConflictError(TollgateError):
    """409: `already_exists`, `subscription_exists`, invalid invoice transitions, ..."""


class ValidationError(TollgateError):
    """422: `invalid_catalog` / `validation_failed`, with every mistake in `errors`."""


class RateLimitError(TollgateError):
    """429 after the retries were spent (or with a `Retry-After` too long to wait for)."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class ServerError(TollgateError):
    """5xx after the retries were spent."""


class BatcherFullError(TollgateError):
    """The event batcher's queue stayed full for longer than its `block_timeout`."""


_BY_STATUS: dict[int, type[TollgateError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}


def problem_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of an answer, or `{}` if it has none (a proxy's HTML 502, say)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def error_from_response(response: httpx.Response) -> TollgateError:
    """The typed error for an error answer."""
    body = problem_body(response)
    status = response.status_code
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else TollgateError)
    detail = body.get("detail") or response.reason_phrase or f"HTTP {status}"
    errors = body.get("errors")
    return cls(
        str(detail),
        status=status,
        code=body.get("code"),
        title=body.get("title"),
        type=body.get("type"),
        errors=errors if isinstance(errors, list) else None,
        body=body,
        headers={k.lower(): v for k, v in response.headers.items()},
    )


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime
    from datetime import datetime, timezone

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
