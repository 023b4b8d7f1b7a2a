"""Retries against a scripted local HTTP server: backoff, `Retry-After`, one idempotency key."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from tollgate import (
    APIConnectionError,
    AsyncTollgate,
    RateLimitError,
    RetryPolicy,
    ServerError,
    Tollgate,
)

from support import free_port


class Script:
    """Answers requests from a list of (status, headers, body); records what came in."""

    def __init__(self, answers: list[tuple[int, dict[str, str], Any]]) -> None:
        self.answers = answers
        self.seen: list[dict[str, Any]] = []


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script([])

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            script.seen.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "json": json.loads(body) if body else None,
                    "at": time.monotonic(),
                }
            )
            status, headers, payload = script.answers.pop(0) if script.answers else (200, {}, {})
            data = json.dumps(payload).encode()
            self.send_response(status)
            ctype = "application/problem+json" if status >= 400 else "application/json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()


RATE = {"type": "urn:tollgate:problem:rate_limited", "status": 429, "code": "rate_limited", "detail": "slow down"}
BOOM = {"type": "urn:tollgate:problem:internal", "status": 503, "code": "internal", "detail": "busy"}


def test_429_with_retry_after_then_200_keeps_the_idempotency_key(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.answers = [(429, {"Retry-After": "1"}, RATE), (200, {}, {"id": "acme"})]
    client = Tollgate("tg_admin_x", base_url=url)
    start = time.monotonic()
    assert client.create_customer("acme")["id"] == "acme"
    assert len(script.seen) == 2
    waited = script.seen[1]["at"] - script.seen[0]["at"]
    assert waited >= 1.0, "Retry-After: 1 is honoured"
    keys = {s["headers"]["idempotency-key"] for s in script.seen}
    assert len(keys) == 1, "one logical call, one idempotency key across its retries"
    assert time.monotonic() - start < 5


def test_5xx_backoff_then_success_and_explicit_key(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.answers = [(503, {}, BOOM), (502, {}, {}), (201, {}, {"id": "sub_1", "plan": "pro"})]
    client = Tollgate("tg_admin_x", base_url=url, retry=RetryPolicy(base_delay=0.05))
    assert client.create_subscription("acme", "pro", idempotency_key="order-77")["plan"] == "pro"
    assert [s["headers"]["idempotency-key"] for s in script.seen] == ["order-77"] * 3


def test_consuming_check_retried_with_one_event_id(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    decision = {"allowed": True, "reason": "allowed", "used": "1"}
    script.answers = [(500, {}, BOOM), (200, {}, decision)]
    client = Tollgate("tg_admin_x", base_url=url, retry=RetryPolicy(base_delay=0.01))
    assert client.check("acme", meter="runs", consume=True).allowed
    ids = {s["json"]["event_id"] for s in script.seen}
    assert len(ids) == 1 and ids != {None}
    assert len({s["headers"]["idempotency-key"] for s in script.seen}) == 1


def test_rate_limited_check_is_a_decision_not_retried(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    body = {**RATE, "decision": {"allowed": False, "reason": "rate_limited", "retry_after": 17}}
    headers = {"Retry-After": "17", "RateLimit": '"default";r=0;t=17', "X-RateLimit-Limit": "3",
               "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1900000000"}
    script.answers = [(429, headers, body)]
    decision = Tollgate("k", base_url=url).check("acme", feature="reports")
    assert not decision.allowed and decision.reason == "rate_limited" and decision.retry_after == 17
    assert decision.rate_limit is not None and decision.rate_limit.limit == 3 and decision.rate_limit.remaining == 0
    assert len(script.seen) == 1


def test_gives_up_after_max_retries_with_a_typed_error(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.answers = [(503, {}, BOOM)] * 3
    client = Tollgate("k", base_url=url, retry=RetryPolicy(max_retries=2, base_delay=0.01))
    with pytest.raises(ServerError) as err:
        client.get_customer("acme")
    assert err.value.status == 503 and err.value.code == "internal" and len(script.seen) == 3
    assert "idempotency-key" not in script.seen[0]["headers"], "GETs need none"


def test_retry_after_too_long_is_not_waited_for(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.answers = [(429, {"Retry-After": "3600"}, RATE)]
    with pytest.raises(RateLimitError) as err:
        Tollgate("k", base_url=url).get_customer("acme")
    assert err.value.retry_after == 3600 and len(script.seen) == 1


def test_connection_errors_are_retried_then_typed() -> None:
    client = Tollgate("k", base_url=f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(max_retries=2, base_delay=0.01))
    with pytest.raises(APIConnectionError):
        client.get_customer("acme")


async def test_async_retries_the_same_way(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.answers = [(429, {"Retry-After": "1"}, RATE), (503, {}, BOOM), (200, {}, {"accepted": 1, "duplicates": 0, "rejected": 0, "results": []})]
    async with AsyncTollgate("k", base_url=url, retry=RetryPolicy(base_delay=0.01)) as client:
        report = await client.ingest([{"customer": "acme", "type": "api.call"}])
    assert report.accepted == 1 and len(script.seen) == 3
    assert script.seen[1]["at"] - script.seen[0]["at"] >= 1.0
    assert len({s["headers"]["idempotency-key"] for s in script.seen}) == 1
    assert len({s["json"]["events"][0]["id"] for s in script.seen}) == 1, "event ids fixed before the first try"


def test_batcher_requeues_after_a_transient_failure(scripted: tuple[str, Script]) -> None:
    from tollgate import EventBatcher, NO_RETRIES

    url, script = scripted
    ok = {"accepted": 2, "duplicates": 0, "rejected": 0, "results": []}
    script.answers = [(503, {}, BOOM), (200, {}, ok)]
    errors: list[Exception] = []
    batcher = EventBatcher(
        Tollgate("k", base_url=url, retry=NO_RETRIES),
        flush_interval=0.05,
        on_error=lambda exc, events: errors.append(exc),
    )
    batcher.add({"customer": "acme", "type": "api.call"})
    batcher.add({"customer": "acme", "type": "api.call"})
    deadline = time.monotonic() + 5
    while batcher.stats.accepted < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    batcher.close()
    assert batcher.stats.accepted == 2 and batcher.stats.dropped == 0 and len(errors) == 1
    sent = [[e["id"] for e in s["json"]["events"]] for s in script.seen]
    assert len(sent) == 2 and sent[0] == sent[1], "the same events, with the same ids, resent"


def test_batcher_drops_what_a_resend_would_not_fix(scripted: tuple[str, Script]) -> None:
    from tollgate import EventBatcher, NO_RETRIES

    url, script = scripted
    bad = {"type": "urn:tollgate:problem:invalid_json", "status": 400, "code": "invalid_json", "detail": "no"}
    script.answers = [(400, {}, bad)]
    errors: list[str] = []
    batcher = EventBatcher(Tollgate("k", base_url=url, retry=NO_RETRIES), on_error=lambda e, ev: errors.append(e.code or ""))
    batcher.add({"customer": "acme", "type": "api.call"})
    batcher.close()
    assert errors == ["invalid_json"] and batcher.stats.dropped == 1 and len(script.seen) == 1


def test_batcher_backs_off_while_the_server_fails(scripted: tuple[str, Script]) -> None:
    from tollgate import EventBatcher, NO_RETRIES

    url, script = scripted
    script.answers = [(503, {}, BOOM)] * 100
    batcher = EventBatcher(Tollgate("k", base_url=url, retry=NO_RETRIES), max_batch=1, flush_interval=0.2)
    batcher.add({"customer": "acme", "type": "api.call"})
    time.sleep(0.5)
    tries = len(script.seen)
    assert 1 <= tries <= 4, f"{tries} sends in 0.5 s: not a tight loop"
    # The server is back: the final flush delivers.
    script.answers = [(200, {}, {"accepted": 1, "duplicates": 0, "rejected": 0, "results": []})]
    batcher.close()
    assert batcher.stats.accepted == 1 and batcher.stats.dropped == 0 and len(batcher) == 0
