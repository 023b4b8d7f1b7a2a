"""What the sync and async clients share: the retry policy and every operation as data.

Each API call is described once as an `Op` (method, path, body, how to read the answer); the
two clients only differ in how they send it and how they sleep between attempts.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Mapping, TypeVar, cast
from urllib.parse import quote

import httpx

from .errors import error_from_response, parse_retry_after, problem_body
from .models import Decision, IngestReport

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
USER_AGENT = "tollgate-python/0.1.0"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The server refuses larger batches (`batch_too_large`); bigger lists are split.
MAX_EVENTS_PER_REQUEST = 10_000
# Items asked for per request when a list is followed page by page (the server's maximum).
PAGE_SIZE = 100


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's `Retry-After` wins over the backoff.

    A `Retry-After` longer than `max_retry_after` is not waited for: the error is raised at once
    so the caller can decide (a web request should not hang for minutes).
    """

    max_retries: int = 3
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None to give up."""
        if attempt >= self.max_retries:
            return None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after + random.uniform(0, self.base_delay)
        return random.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))


NO_RETRIES = RetryPolicy(max_retries=0)


def _ok(response: httpx.Response) -> Any:
    return response.json() if response.content else None


@dataclass(frozen=True)
class Op(Generic[T]):
    """One API call: what to send and how to read the answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, str] | None = None
    #: Statuses (>= 400) that are answers for this call, not errors; not retried.
    answers: frozenset[int] = field(default_factory=frozenset)

    @property
    def mutating(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


def retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))


def should_retry(op: Op[Any], response: httpx.Response) -> bool:
    return response.status_code in RETRY_STATUSES and response.status_code not in op.answers


def finish(op: Op[T], response: httpx.Response) -> T:
    """The parsed answer, or the typed error."""
    if response.status_code >= 400 and response.status_code not in op.answers:
        raise error_from_response(response)
    return op.parse(response)


def headers_for(op: Op[Any], api_key: str | None, idempotency_key: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    if op.mutating:
        # Generated once per logical call: every retry of it carries the same key.
        headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
    return headers


def seg(value: str) -> str:
    """A path segment, escaped (ids may hold `:`; nothing may smuggle a `/`)."""
    return quote(value, safe="")


def items(body: Any) -> tuple[list[Any], bool]:
    """A list answer's items and whether more follow (`{data, has_more}`, as every list of the
    server answers; a bare array is read as one last page)."""
    if isinstance(body, list):
        return body, False
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return body["data"], bool(body.get("has_more"))
    return [], False


def _list(response: httpx.Response) -> Any:
    return response.json()


def _decision(response: httpx.Response) -> Decision:
    if response.status_code == 429:
        # A plan's request rate limit: the decision rides in the problem document.
        body = problem_body(response)
        decision = body.get("decision") or {"allowed": False, "reason": body.get("code", "rate_limited")}
        return Decision.from_json(decision, response.headers)
    return Decision.from_json(response.json(), response.headers)


def _report(response: httpx.Response) -> IngestReport:
    return IngestReport.from_json(response.json())


def _text(response: httpx.Response) -> str:
    return response.text


def _bytes(response: httpx.Response) -> bytes:
    return response.content


def drop_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# ---- operations -------------------------------------------------------------------------------


def op(method: str, path: str, json: Any = None, params: Mapping[str, str] | None = None) -> Op[Any]:
    return Op(method, path, _ok, json=json, params=params)


def list_op(path: str, params: Mapping[str, str] | None = None) -> Op[Any]:
    return Op("GET", path, _list, params=params)


def text_op(path: str, params: Mapping[str, str] | None = None) -> Op[str]:
    return Op("GET", path, _text, params=params)


def event_filters(
    customer: str | None, type: str | None, subject: str | None, since: str | None, until: str | None
) -> dict[str, str]:
    """The query of `GET /v1/events` and its export (`from`/`to` are Python keywords, hence
    `since`/`until`)."""
    return drop_none(customer=customer, type=type, subject=subject, **{"from": since, "to": until})


def check_op(body: dict[str, Any]) -> Op[Decision]:
    return Op("POST", "/v1/check", _decision, json=body, answers=frozenset({429}))


def ingest_op(events: list[dict[str, Any]]) -> Op[IngestReport]:
    return Op("POST", "/v1/events", _report, json={"events": events})


def pdf_op(invoice: str) -> Op[bytes]:
    return Op("GET", f"/v1/invoices/{seg(invoice)}.pdf", _bytes)


def with_event_ids(events: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Events with an `id` each, so a retried batch counts each event once."""
    out: list[dict[str, Any]] = []
    for e in events:
        event = dict(e)
        if not event.get("id"):
            event["id"] = f"py_{uuid.uuid4().hex}"
        out.append(event)
    return out


def chunks(events: list[dict[str, Any]], size: int = MAX_EVENTS_PER_REQUEST) -> list[list[dict[str, Any]]]:
    return [events[i : i + size] for i in range(0, len(events), size)] or [[]]


def catalog_body(catalog: str | Mapping[str, Any]) -> Any:
    """YAML text as `{"yaml": text}`; a mapping as the catalog's JSON."""
    return {"yaml": catalog} if isinstance(catalog, str) else dict(catalog)


def check_body(
    customer: str | None,
    feature: str | None,
    meter: str | None,
    quantity: int | str | None,
    subject: str | None,
    consume: bool,
    event_id: str | None,
    properties: Mapping[str, Any] | None,
) -> dict[str, Any]:
    if (feature is None) == (meter is None):
        raise ValueError("give exactly one of `feature` and `meter`")
    if consume and meter is None:
        raise ValueError("`consume` needs a `meter`")
    if consume and event_id is None:
        # Derived once per logical call: a retried consuming check counts once.
        event_id = f"py_{uuid.uuid4().hex}"
    body = drop_none(
        customer=customer,
        feature=feature,
        meter=meter,
        quantity=str(quantity) if quantity is not None else None,
        subject=subject,
        event_id=event_id if consume else None,
    )
    if consume:
        body["consume"] = True
    if properties:
        body["properties"] = dict(properties)
    return body


def as_list(value: Any) -> list[Any]:
    return cast(list[Any], value)
