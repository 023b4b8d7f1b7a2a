"""What the API answers, typed.

Decisions and ingest reports are dataclasses because code branches on them; resources
(customers, subscriptions, invoices, ...) are `TypedDict`s of the JSON as sent, so fields the
server adds later are still there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, TypedDict

import httpx

__all__ = [
    "Decision",
    "Upgrade",
    "RateLimit",
    "IngestReport",
    "EventResult",
    "Event",
    "Customer",
    "Subscription",
    "ApiKey",
    "Invoice",
    "UsageReport",
    "CatalogVersion",
    "TestClock",
    "BillRun",
    "RATE_LIMIT_HEADERS",
]

#: The headers an answer of a plan with a rate limit carries (lower case).
RATE_LIMIT_HEADERS = (
    "ratelimit",
    "ratelimit-policy",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Upgrade:
    """The cheapest plan that would allow what was denied."""

    plan: str
    limit: Decimal | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Upgrade:
        return cls(plan=str(data.get("plan", "")), limit=_decimal(data.get("limit")))


@dataclass(frozen=True)
class RateLimit:
    """The plan's request rate limit as the answer's headers told it."""

    limit: int | None
    remaining: int | None
    reset: int | None  # Unix seconds
    #: The raw headers, to pass on unchanged (the middleware does).
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | httpx.Headers) -> RateLimit | None:
        raw = {name: headers[name] for name in RATE_LIMIT_HEADERS if name in headers}
        if not raw:
            return None

        def num(name: str) -> int | None:
            try:
                return int(raw[name])
            except (KeyError, ValueError):
                return None

        return cls(
            limit=num("x-ratelimit-limit"),
            remaining=num("x-ratelimit-remaining"),
            reset=num("x-ratelimit-reset"),
            headers=raw,
        )


@dataclass(frozen=True)
class Decision:
    """The answer of `POST /v1/check`. A denial is a decision, not an exception."""

    allowed: bool
    reason: str
    limit: Decimal | None = None
    used: Decimal | None = None
    remaining: Decimal | None = None
    window: str | None = None
    scope: str | None = None
    reset_at: datetime | None = None
    retry_after: int | None = None
    upgrade: Upgrade | None = None
    rate_limit: RateLimit | None = None
    #: The decision's JSON as sent (the middleware forwards it in refusals).
    raw: dict[str, Any] = field(default_factory=dict)
    #: True when it came from the local entitlement cache, not the server.
    cached: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any], headers: Mapping[str, str] | httpx.Headers | None = None) -> Decision:
        upgrade = data.get("upgrade")
        retry = data.get("retry_after")
        return cls(
            allowed=bool(data.get("allowed", False)),
            reason=str(data.get("reason", "")),
            limit=_decimal(data.get("limit")),
            used=_decimal(data.get("used")),
            remaining=_decimal(data.get("remaining")),
            window=data.get("window"),
            scope=data.get("scope"),
            reset_at=_time(data.get("reset_at")),
            retry_after=int(retry) if isinstance(retry, (int, float)) else None,
            upgrade=Upgrade.from_json(upgrade) if isinstance(upgrade, Mapping) else None,
            rate_limit=RateLimit.from_headers(headers) if headers is not None else None,
            raw=dict(data),
        )


@dataclass(frozen=True)
class EventResult:
    index: int
    status: str  # accepted | duplicate | rejected
    id: str | None = None
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class IngestReport:
    """Per-event outcome of `POST /v1/events`; accepted events are durable even when others fail."""

    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResult]
    # Repeated ids that replaced the stored value (a meter with `on_duplicate: latest_replaces`).
    amended: int = 0

    @property
    def rejections(self) -> list[EventResult]:
        return [r for r in self.results if r.status == "rejected"]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IngestReport:
        return cls(
            accepted=int(data.get("accepted", 0)),
            duplicates=int(data.get("duplicates", 0)),
            rejected=int(data.get("rejected", 0)),
            amended=int(data.get("amended", 0)),
            results=[
                EventResult(
                    index=int(r.get("index", 0)),
                    status=str(r.get("status", "")),
                    id=r.get("id"),
                    code=r.get("code"),
                    message=r.get("message"),
                )
                for r in data.get("results", [])
            ],
        )

    @classmethod
    def merge(cls, reports: list[IngestReport]) -> IngestReport:
        """One report for a batch sent in several requests (indexes renumbered in order)."""
        results: list[EventResult] = []
        for report in reports:
            offset = len(results)
            results.extend(
                EventResult(r.index + offset, r.status, r.id, r.code, r.message) for r in report.results
            )
        return cls(
            accepted=sum(r.accepted for r in reports),
            duplicates=sum(r.duplicates for r in reports),
            rejected=sum(r.rejected for r in reports),
            results=results,
            amended=sum(r.amended for r in reports),
        )


class Event(TypedDict, total=False):
    """A usage event to send. `id` makes a resend count once; the SDK fills one in if absent."""

    id: str
    customer: str
    type: str
    timestamp: str
    subject: str
    properties: dict[str, Any]


class StoredEvent(TypedDict, total=False):
    """An event as stored: `GET /v1/events` and its export."""

    id: str
    customer: str
    type: str
    timestamp: str
    subject: str | None
    properties: dict[str, Any]
    received_at: str


class Customer(TypedDict, total=False):
    id: str
    name: str | None
    email: str | None
    suspended: bool
    has_payment_method: bool
    test_clock: str | None
    metadata: dict[str, Any]
    created_at: str


class Subscription(TypedDict, total=False):
    id: str
    customer: str
    plan: str
    catalog_version: int
    status: str
    addons: dict[str, int]
    started_at: str
    current_period_start: str
    current_period_end: str
    trial_end: str | None
    ends_at: str | None
    scheduled_plan: str | None
    scheduled_at: str | None


class ApiKey(TypedDict, total=False):
    id: str
    customer: str
    name: str | None
    prefix: str
    #: Only in the answer that created the key.
    secret: str
    created_at: str
    revoked_at: str | None


class Invoice(TypedDict, total=False):
    id: str
    number: str | None
    customer: str
    subscription: str | None
    status: str
    currency: str
    period_start: str
    period_end: str
    total: str
    credit_applied: str
    amount_due: str
    credited: str
    lines: list[dict[str, Any]]
    created_at: str


class UsageReport(TypedDict, total=False):
    customer: str
    plan: str
    period_start: str
    period_end: str
    meters: list[dict[str, Any]]


class CatalogVersion(TypedDict, total=False):
    version: int
    catalog: dict[str, Any]
    changes: list[str]


class TestClock(TypedDict, total=False):
    id: str
    name: str | None
    frozen_time: str


class BillRun(TypedDict, total=False):
    id: str
    status: str
    done: int
    total: int
    invoices_created: int
    created: list[str]
    errors: list[Any]
