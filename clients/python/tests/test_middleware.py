"""The ASGI middleware in a real FastAPI app served by uvicorn, against a real server."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Callable

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tollgate import AsyncEventBatcher, AsyncTollgate, EntitlementCache, Tollgate
from tollgate.middleware import Route, TollgateMiddleware, current_caller

from conftest import Workspace, make_customer
from support import UvicornThread

ROUTES = [
    Route("/reports/{id}", method="GET", feature="reports"),
    Route("/exports", method="POST", feature="exports", meter="exports"),
    Route("/calls", method="POST", meter="api_calls"),
    Route("/calls-after", method="POST", meter="api_calls", meter_after=True, event_type="api.call"),
    Route("/fail", method="POST", meter="api_calls", meter_after=True, event_type="api.call"),
    Route("/whoami", feature="reports"),
]


def build_app(ws: Workspace, **options: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/reports/{rid}")
    async def report(rid: str) -> dict[str, str]:
        return {"report": rid}

    @app.post("/exports")
    async def export() -> dict[str, bool]:
        return {"exported": True}

    @app.post("/calls")
    @app.post("/calls-after")
    async def call() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/fail")
    async def fail() -> JSONResponse:
        return JSONResponse({"error": "boom"}, status_code=500)

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        caller = current_caller(request)
        assert caller is not None and caller.decision is not None
        return {"customer": caller.customer, "subject": caller.subject, "cached": caller.decision.cached}

    @app.get("/open")
    async def open_route() -> dict[str, bool]:
        return {"open": True}

    client = options.pop("client", None) or AsyncTollgate(ws.admin_key, base_url=ws.url)
    app.add_middleware(TollgateMiddleware, client=client, routes=options.pop("routes", ROUTES), **options)
    return app


def used(ws: Workspace, customer: str, meter: str) -> Decimal:
    with ws.client() as admin:
        return Decimal(next(m["used"] for m in admin.usage(customer)["meters"] if m["meter"] == meter))


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] == f"urn:tollgate:problem:{code}" and body["title"] and body["detail"]
    return body


def test_keys_are_authenticated(lab: Workspace, serve: Callable[[Any], UvicornThread]) -> None:
    c = make_customer(lab, "basic")
    with serve(build_app(lab)) as app:
        assert_problem(httpx.get(app.url + "/reports/1"), 401, "unauthorized")
        assert_problem(httpx.get(app.url + "/reports/1", headers={"X-API-Key": "tg_live_nope"}), 401, "unauthorized")
        assert_problem(httpx.get(app.url + "/reports/1", headers={"X-API-Key": lab.admin_key}), 401, "unauthorized")
        ok = httpx.get(app.url + "/reports/1", headers={"Authorization": f"Bearer {c.key}"})
        assert ok.status_code == 200 and ok.json() == {"report": "1"}
        assert httpx.get(app.url + "/reports/2", headers={"X-API-Key": c.key}).status_code == 200
        assert httpx.get(app.url + "/open").json() == {"open": True}, "unmatched routes pass through"


def test_feature_not_in_plan_is_403_with_upgrade(lab: Workspace, serve: Callable[[Any], UvicornThread]) -> None:
    c = make_customer(lab, "basic")
    with serve(build_app(lab)) as app:
        r = httpx.post(app.url + "/exports", headers={"X-API-Key": c.key})
        body = assert_problem(r, 403, "feature_not_in_plan")
        assert body["upgrade"] == {"plan": "pro"} and body["decision"]["reason"] == "feature_not_in_plan"
        assert "plan `pro` allows it" in body["detail"]
    assert used(lab, c.id, "exports") == 0


def test_quota_consumed_before_handler_then_429(lab: Workspace, serve: Callable[[Any], UvicornThread]) -> None:
    c = make_customer(lab, "basic")
    with serve(build_app(lab)) as app:
        for _ in range(5):
            assert httpx.post(app.url + "/calls", headers={"X-API-Key": c.key}).status_code == 200
        r = httpx.post(app.url + "/calls", headers={"X-API-Key": c.key})
        body = assert_problem(r, 429, "quota_exceeded")
        assert int(r.headers["retry-after"]) >= 1
        assert body["decision"]["limit"] == "5" and body["decision"]["remaining"] == "0"
        assert body["upgrade"]["plan"] == "pro"
    assert used(lab, c.id, "api_calls") == 5


def test_meter_after_success_records_and_5xx_gives_back(lab: Workspace, serve: Callable[[Any], UvicornThread]) -> None:
    c = make_customer(lab, "basic")
    with serve(build_app(lab)) as app:
        assert httpx.post(app.url + "/calls-after", headers={"X-API-Key": c.key}).status_code == 200
        assert httpx.post(app.url + "/fail", headers={"X-API-Key": c.key}).status_code == 500
    # Leaving the block stopped the app, so its post-answer work is done.
    assert used(lab, c.id, "api_calls") == 1, "the 5xx is not billed"


def test_suspended_and_unsubscribed_are_402(lab: Workspace, serve: Callable[[Any], UvicornThread]) -> None:
    suspended = make_customer(lab, "basic")
    bare = make_customer(lab, None)
    with lab.client() as admin:
        admin.suspend_customer(suspended.id)
    with serve(build_app(lab)) as app:
        assert_problem(httpx.get(app.url + "/reports/1", headers={"X-API-Key": suspended.key}), 402, "customer_suspended")
        assert_problem(httpx.get(app.url + "/reports/1", headers={"X-API-Key": bare.key}), 402, "no_subscription")


def test_rate_limit_headers_and_429(lab: Workspace, serve: Callable[[Any], UvicornThread]) -> None:
    with lab.client() as admin:
        clock = admin.create_test_clock("2026-06-01T10:00:00Z")
    c = make_customer(lab, "throttled", clock=clock["id"])
    with serve(build_app(lab)) as app:
        answers = [httpx.get(app.url + "/reports/1", headers={"X-API-Key": c.key}) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    for remaining, a in zip(("2", "1", "0"), answers):
        assert a.headers["ratelimit-policy"] == '"default";q=3;w=3600'
        assert a.headers["x-ratelimit-limit"] == "3" and a.headers["x-ratelimit-remaining"] == remaining
        assert a.headers["ratelimit"].startswith(f'"default";r={remaining};t=')
    body = assert_problem(answers[3], 429, "rate_limited")
    assert body["decision"]["reason"] == "rate_limited"
    assert int(answers[3].headers["retry-after"]) >= 1 and "x-ratelimit-reset" in answers[3].headers


def test_resolver_mode_with_subject(lab: Workspace, serve: Callable[[Any], UvicornThread]) -> None:
    c = make_customer(lab, "basic")

    def from_header(scope: Any) -> str | None:
        headers = dict(scope["headers"])
        value = headers.get(b"x-account")
        return value.decode() if value else None

    with serve(build_app(lab, customer=from_header, subject_header="X-User-Id")) as app:
        r = httpx.get(app.url + "/whoami", headers={"X-Account": c.id, "X-User-Id": "u7"})
        assert r.json() == {"customer": c.id, "subject": "u7", "cached": False}
        assert_problem(httpx.get(app.url + "/whoami"), 401, "unauthorized")
        unknown = assert_problem(httpx.get(app.url + "/whoami", headers={"X-Account": "never-provisioned"}), 402, "no_subscription")
        assert "not known" in unknown["detail"]


def test_cache_serves_gates_and_is_invalidated(lab: Workspace, serve: Callable[[Any], UvicornThread]) -> None:
    c = make_customer(lab, "basic")
    cache = EntitlementCache(ttl=60)

    def account(scope: Any) -> str:
        return c.id

    with serve(build_app(lab, customer=account, cache=cache)) as app:
        first = httpx.get(app.url + "/whoami").json()
        second = httpx.get(app.url + "/whoami").json()
        assert (first["cached"], second["cached"]) == (False, True) and cache.hits == 1
        with lab.client() as admin:
            admin.suspend_customer(c.id)
        assert httpx.get(app.url + "/whoami").status_code == 200, "within the TTL the cached allow stands"
        cache.invalidate(c.id)
        assert_problem(httpx.get(app.url + "/whoami"), 402, "customer_suspended")
        with lab.client() as admin:
            admin.unsuspend_customer(c.id)
        assert httpx.get(app.url + "/whoami").json()["cached"] is False
        # A 403 of the same customer drops its cached gates.
        assert len(cache) == 1
        assert httpx.post(app.url + "/exports").status_code == 403
        assert len(cache) == 0


def test_batcher_flushes_on_app_shutdown(lab: Workspace, serve: Callable[[Any], UvicornThread]) -> None:
    c = make_customer(lab, "basic")
    client = AsyncTollgate(lab.admin_key, base_url=lab.url)
    # A long interval and a big batch: nothing leaves before shutdown.
    batcher = AsyncEventBatcher(client, max_batch=1000, flush_interval=3600)
    with serve(build_app(lab, client=client, batcher=batcher)) as app:
        for _ in range(3):
            assert httpx.post(app.url + "/calls-after", headers={"X-API-Key": c.key}).status_code == 200
        # Recorded right after the answer went out: poll briefly.
        for _ in range(100):
            if len(batcher) == 3:
                break
            time.sleep(0.01)
        assert len(batcher) == 3
        assert used(lab, c.id, "api_calls") == 0
    assert len(batcher) == 0 and batcher.stats.accepted == 3
    assert used(lab, c.id, "api_calls") == 3


def test_tollgate_down_is_503_or_open(serve: Callable[[Any], UvicornThread]) -> None:
    from support import free_port
    from tollgate import RetryPolicy

    dead = Workspace(f"http://127.0.0.1:{free_port()}", "tg_admin_x")

    def account(scope: Any) -> str:
        return "acme"

    fast = RetryPolicy(max_retries=1, base_delay=0.01)
    with serve(build_app(dead, customer=account, client=AsyncTollgate("k", base_url=dead.url, retry=fast))) as app:
        assert_problem(httpx.get(app.url + "/reports/1"), 503, "tollgate_unavailable")
    with serve(build_app(dead, customer=account, fail_open=True, client=AsyncTollgate("k", base_url=dead.url, retry=fast))) as app:
        assert httpx.get(app.url + "/reports/1").status_code == 200


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/v1/reports/{id}", "/v1/reports/42", True),
        ("/v1/reports/{id}", "/v1/reports/", False),
        ("/v1/reports/{id}", "/v1/reports/42/x", False),
        ("/v1/exports/*", "/v1/exports", True),
        ("/v1/exports/*", "/v1/exports/a/b", True),
        ("/v1/*/runs", "/v1/agents/runs", True),
        ("/v1/x", "/v1/x/", False),
    ],
)
def test_route_patterns_match_like_the_gateway(pattern: str, path: str, expected: bool) -> None:
    assert Route(pattern, feature="f").matches("GET", path) is expected
    assert Route(pattern, method="POST", feature="f").matches("GET", path) is False


def test_route_validation() -> None:
    with pytest.raises(ValueError):
        Route("/x")
    with pytest.raises(ValueError):
        Route("/x", meter="m", meter_after=True)
    with pytest.raises(ValueError):
        Route("/x", meter="m", cost=0.5)  # type: ignore[arg-type]


def test_concurrent_burst_never_overshoots_the_quota(lab: Workspace, serve: Callable[[Any], UvicornThread]) -> None:
    import asyncio

    c = make_customer(lab, "basic")

    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(timeout=10) as http:
            answers = await asyncio.gather(
                *(http.post(url + "/calls", headers={"X-API-Key": c.key}) for _ in range(20))
            )
        return sorted(a.status_code for a in answers)

    with serve(build_app(lab)) as app:
        statuses = asyncio.run(burst(app.url))
    assert statuses == [200] * 5 + [429] * 15
    assert used(lab, c.id, "api_calls") == 5
