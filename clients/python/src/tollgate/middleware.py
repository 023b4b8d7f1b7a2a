"""ASGI middleware (FastAPI, Starlette, any ASGI app): gate and meter routes by the caller's plan.

Refusals are the gateway's (`crates/tollgate-server/src/gateway/refusal.rs`): the same
`application/problem+json` body (`code`, `detail`, `decision`, `upgrade`), the same statuses
(401 who are you, 402 suspended / no subscription, 403 not in the plan, 429 quota or rate limit
with `Retry-After`) and the same `RateLimit`/`RateLimit-Policy`/`X-RateLimit-*` headers, on
refusals and on forwarded answers alike. An app moved from behind the gateway to the middleware
(or back) answers its clients the same way.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Literal, Mapping, MutableMapping, Sequence, Union

from .aio import AsyncTollgate
from .batcher import AsyncEventBatcher
from .cache import EntitlementCache, identity
from .errors import AuthenticationError, NotFoundError, PermissionDeniedError, TollgateError
from .models import Decision

__all__ = ["TollgateMiddleware", "Route", "Caller", "current_caller"]

log = logging.getLogger("tollgate.middleware")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: Maps a request (its ASGI scope) to a customer id, or None (refused with 401).
CustomerResolver = Callable[[Scope], Union[str, None, Awaitable[Union[str, None]]]]
SubjectResolver = Callable[[Scope], Union[str, None, Awaitable[Union[str, None]]]]


@dataclass(frozen=True)
class Route:
    """A route to gate: `feature` (the plan must include it), `meter` (each request counts
    `cost`), or both (gated by the feature, metered on the meter).

    `path` patterns are the gateway's: literal segments, `{name}` or `*` for one non-empty
    segment, a trailing `*` for everything below (including nothing). `method="*"`: any.

    Metering: by default a consuming check before the handler (exact under concurrency: no
    burst gets past a quota; a request the handler then fails with a 5xx still counts).
    `meter_after=True`: checked before, recorded after the handler only when it answered below
    500 (nothing billed for a 5xx); concurrent requests can then overshoot a quota by the number
    in flight. `event_type` (the meter's event) is required for it. `properties` go on the
    recorded event (e.g. the meter's filter, `{"level": "supervisor"}`).
    """

    path: str
    method: str = "*"
    feature: str | None = None
    meter: str | None = None
    cost: int | str = 1
    meter_after: bool = False
    event_type: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.feature is None and self.meter is None:
            raise ValueError(f"route {self.path}: give a feature, a meter or both")
        if not self.path.startswith("/"):
            raise ValueError(f"route {self.path}: a path starts with /")
        if self.meter_after and (self.meter is None or not self.event_type):
            raise ValueError(f"route {self.path}: meter_after needs a meter and its event_type")
        if isinstance(self.cost, float):
            raise ValueError(f"route {self.path}: cost is an integer or a decimal string, never a float")

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        pattern = self.path.strip("/").split("/") if self.path != "/" else []
        parts = path.strip("/").split("/") if path != "/" else []
        if path.endswith("/") != self.path.endswith("/") and pattern[-1:] != ["*"]:
            return False  # exact about trailing slashes, as the gateway is
        for i, p in enumerate(pattern):
            if p == "*" and i == len(pattern) - 1:
                return True
            if i >= len(parts):
                return False
            if p == "*" or (p.startswith("{") and p.endswith("}")):
                if not parts[i]:
                    return False
            elif p != parts[i]:
                return False
        return len(parts) == len(pattern)


@dataclass(frozen=True)
class Caller:
    """Who a gated request is from; put in `request.state.tollgate` for the handler."""

    customer: str | None
    api_key: str | None
    subject: str | None
    route: Route
    decision: Decision | None
    event_id: str | None


def current_caller(request: Any) -> Caller | None:
    """The `Caller` of a gated request (a Starlette `Request` or an ASGI scope), or None."""
    state = request.get("state") if isinstance(request, dict) else getattr(request, "scope", {}).get("state")
    caller = (state or {}).get("tollgate")
    return caller if isinstance(caller, Caller) else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def bearer_or_api_key(scope: Scope) -> str | None:
    """The caller's key from `Authorization: Bearer` or `X-API-Key`, as the gateway reads it."""
    auth = _header(scope, b"authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return (_header(scope, b"x-api-key") or "").strip() or None


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def problem(
    status: int,
    code: str,
    detail: str,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    body: dict[str, Any] = {
        "type": f"urn:tollgate:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra or {})
    return status, body, dict(headers or {})


def refusal(decision: Decision, target: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A denied decision as the gateway answers it (see refusal.rs)."""
    hint = f"; plan `{decision.upgrade.plan}` allows it" if decision.upgrade else ""
    reason = decision.reason
    table: dict[str, tuple[int, str]] = {
        "rate_limited": (429, "request rate limit reached"),
        "quota_exceeded": (429, f"the quota of {target} is used up{hint}"),
        "feature_not_in_plan": (403, f"the plan does not include {target}{hint}"),
        "feature_limit_exceeded": (403, f"the plan's limit of {target} is reached{hint}"),
        "customer_suspended": (402, "the customer is suspended"),
        "no_subscription": (402, "the customer has no active subscription"),
    }
    headers = dict(decision.rate_limit.headers) if decision.rate_limit else {}
    if reason not in table:
        log.error("route target %s: decision %s cannot be refused; is it in the catalog?", target, reason)
        return problem(
            500,
            "route_target_unknown",
            "the middleware's route names a feature or meter the catalog does not have",
            headers=headers,
        )
    status, detail = table[reason]
    extra: dict[str, Any] = {"decision": decision.raw}
    if decision.upgrade is not None and "upgrade" in decision.raw:
        extra["upgrade"] = decision.raw["upgrade"]
    if status == 429:
        headers["retry-after"] = str(max(decision.retry_after or 1, 1))
    return problem(status, reason, detail, extra, headers)


class _Refused(Exception):
    def __init__(self, answer: tuple[int, dict[str, Any], dict[str, str]]) -> None:
        self.answer = answer


class TollgateMiddleware:
    """Checks (and consumes) before the handler, records usage after.

    Who the caller is: by default its own Tollgate customer key (`Authorization: Bearer` or
    `X-API-Key`), which the middleware passes to Tollgate per call (admin keys are refused with
    401, as the gateway does). Or `customer=`: a callable mapping the request's ASGI scope to
    a customer id (your own auth decides; the client then acts with its admin key).

    `subject_header` (e.g. `X-User-Id`) or `subject=` (a callable) names who inside the
    customer acts, for per-user quotas. `cache` caches allowed feature gates; `batcher` sends
    `meter_after` events in the background (else each is sent before the answer completes).
    `fail_open=True` lets requests through when Tollgate cannot be reached (default: 503).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        client: AsyncTollgate,
        routes: Sequence[Route],
        customer: CustomerResolver | None = None,
        subject_header: str | None = None,
        subject: SubjectResolver | None = None,
        cache: EntitlementCache | None = None,
        batcher: AsyncEventBatcher | None = None,
        unmatched: Literal["pass_through", "refuse"] = "pass_through",
        fail_open: bool = False,
    ) -> None:
        self.app = app
        self.client = client
        self.routes = list(routes)
        self.customer_resolver = customer
        self.subject_header = subject_header.lower().encode() if subject_header else None
        self.subject_resolver = subject
        self.cache = cache
        self.batcher = batcher
        self.unmatched = unmatched
        self.fail_open = fail_open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = next((r for r in self.routes if r.matches(scope["method"], scope["path"])), None)
        if route is None:
            if self.unmatched == "refuse":
                await self._answer(send, problem(404, "route_not_found", f"no route matches {scope['path']}"))
            else:
                await self.app(scope, receive, send)
            return
        try:
            caller = await self._admit(scope, route)
        except _Refused as refused:
            await self._answer(send, refused.answer)
            return
        if caller is None:  # fail open
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["tollgate"] = caller
        extra = caller.decision.rate_limit.headers if caller.decision and caller.decision.rate_limit else {}
        status_seen: list[int] = []

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(int(message["status"]))
                if extra:
                    headers = [(k, v) for k, v in message.get("headers", []) if bytes(k).lower().decode() not in extra]
                    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            status = status_seen[0] if status_seen else 500
            if route.meter_after and status < 500:
                await self._record(caller)

    async def _admit(self, scope: Scope, route: Route) -> Caller | None:
        customer: str | None = None
        api_key: str | None = None
        if self.customer_resolver is not None:
            customer = await _maybe_await(self.customer_resolver(scope))
            if not customer:
                raise _Refused(problem(401, "unauthorized", "the request names no customer"))
        else:
            api_key = bearer_or_api_key(scope)
            if not api_key:
                raise _Refused(problem(401, "unauthorized", "send your API key as `Authorization: Bearer <key>` or `X-API-Key`"))
            if api_key.startswith("tg_admin_"):
                raise _Refused(problem(401, "unauthorized", "an admin key is not a customer's key"))
        subject: str | None = None
        if self.subject_resolver is not None:
            subject = await _maybe_await(self.subject_resolver(scope))
        elif self.subject_header is not None:
            subject = _header(scope, self.subject_header)
        who = identity(customer, api_key)
        decision: Decision | None = None
        event_id: str | None = None
        try:
            if route.feature is not None:
                if self.cache is not None:
                    decision = await self.cache.acheck(
                        self.client, route.feature, customer=customer, api_key=api_key, subject=subject
                    )
                else:
                    decision = await self.client.check(customer, feature=route.feature, subject=subject, api_key=api_key)
                if not decision.allowed:
                    raise _Refused(refusal(decision, f"feature `{route.feature}`"))
            if route.meter is not None:
                event_id = f"mw_{uuid.uuid4().hex}"
                consume = not route.meter_after
                if consume or route.feature is None:
                    decision = await self.client.check(
                        customer,
                        meter=route.meter,
                        quantity=route.cost,
                        subject=subject,
                        consume=consume,
                        event_id=event_id if consume else None,
                        properties=route.properties if consume else None,
                        api_key=api_key,
                    )
                    if not decision.allowed:
                        raise _Refused(refusal(decision, f"meter `{route.meter}`"))
        except _Refused as refused:
            if refused.answer[0] in (402, 403) and self.cache is not None:
                self.cache.invalidate_identity(who)
            raise
        except NotFoundError as exc:
            # Only a resolver can name a customer Tollgate does not know (one not provisioned
            # yet): like a customer without a subscription, it has nothing to use.
            detail = f"customer {customer!r} is not known to Tollgate" if customer else exc.detail
            raise _Refused(problem(402, "no_subscription", detail)) from None
        except AuthenticationError as exc:
            raise _Refused(problem(401, "unauthorized", exc.detail)) from None
        except PermissionDeniedError as exc:
            if self.cache is not None:
                self.cache.invalidate_identity(who)
            if exc.code == "customer_suspended":  # a payment matter, as at the gateway
                raise _Refused(problem(402, "customer_suspended", exc.detail)) from None
            raise _Refused(problem(401, "unauthorized", exc.detail)) from None
        except TollgateError as exc:
            if exc.status is not None and exc.status < 500 and exc.status != 429:
                log.error("tollgate refused the middleware's check for %s: %s", route.path, exc)
                raise _Refused(problem(500, "tollgate_check_failed", "the entitlement check failed; see the app's log")) from None
            if self.fail_open:
                log.warning("tollgate unreachable, letting %s through: %s", route.path, exc)
                return None
            raise _Refused(problem(503, "tollgate_unavailable", "entitlements cannot be checked right now")) from None
        return Caller(customer, api_key, subject, route, decision, event_id)

    async def _record(self, caller: Caller) -> None:
        route = caller.route
        assert route.meter is not None and route.event_type is not None
        event: dict[str, Any] = {"id": caller.event_id, "type": route.event_type, "properties": dict(route.properties)}
        if caller.customer:
            event["customer"] = caller.customer
        if caller.subject:
            event["subject"] = caller.subject
        try:
            if self.batcher is not None:
                await self.batcher.add(event, api_key=caller.api_key)
            else:
                report = await self.client.ingest([event], api_key=caller.api_key)
                if report.rejected:
                    log.error("usage of %s rejected: %s", route.path, report.rejections)
        except TollgateError as exc:
            log.error("usage of %s not recorded: %s", route.path, exc)

    def _lifespan_receive(self, receive: Receive) -> Receive:
        """Starts the batcher with the app and flushes it when the app shuts down."""

        async def wrapped() -> Message:
            message = await receive()
            if self.batcher is not None:
                if message["type"] == "lifespan.startup":
                    self.batcher.start()
                elif message["type"] == "lifespan.shutdown":
                    await self.batcher.aclose()
            return message

        return wrapped

    @staticmethod
    async def _answer(send: Send, answer: tuple[int, dict[str, Any], dict[str, str]]) -> None:
        import json

        status, body, headers = answer
        payload = json.dumps(body).encode()
        raw = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(payload)).encode())]
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": payload})
