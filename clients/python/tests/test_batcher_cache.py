"""The event batchers and the entitlement cache, against a real server."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tollgate import (
    AsyncEventBatcher,
    AsyncTollgate,
    BatcherFullError,
    EntitlementCache,
    EventBatcher,
    RetryPolicy,
    Tollgate,
)

from conftest import Workspace, make_customer
from support import free_port


def tokens_used(ws: Workspace, customer: str) -> Decimal:
    with ws.client() as admin:
        return Decimal(next(m["used"] for m in admin.usage(customer)["meters"] if m["meter"] == "tokens"))


def event(customer: str, n: int = 1) -> dict[str, object]:
    return {"customer": customer, "type": "llm.tokens", "properties": {"tokens": n}}


def test_close_flushes_everything_queued(lab: Workspace) -> None:
    c = make_customer(lab, "basic")
    client = lab.client()
    batcher = EventBatcher(client, max_batch=1000, flush_interval=3600)
    for _ in range(250):
        batcher.add(event(c.id))
    assert tokens_used(lab, c.id) == 0, "nothing sent before a trigger"
    batcher.close()
    assert batcher.stats.accepted == 250 and len(batcher) == 0
    assert tokens_used(lab, c.id) == 250
    with pytest.raises(RuntimeError):
        batcher.add(event(c.id))


def test_flush_on_size_and_on_interval(lab: Workspace) -> None:
    c = make_customer(lab, "basic")
    with EventBatcher(lab.client(), max_batch=10, flush_interval=3600) as batcher:
        for _ in range(10):
            batcher.add(event(c.id))
        deadline = time.monotonic() + 5
        while batcher.stats.accepted < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert batcher.stats.accepted == 10, "a full batch goes without waiting for the interval"
    with EventBatcher(lab.client(), max_batch=1000, flush_interval=0.2) as batcher:
        batcher.add(event(c.id, 5))
        deadline = time.monotonic() + 5
        while batcher.stats.accepted < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert batcher.stats.accepted == 1, "the interval sends a partial batch"
    assert tokens_used(lab, c.id) == 15


def test_resent_events_count_once_and_rejections_are_reported(lab: Workspace) -> None:
    c = make_customer(lab, "basic")
    rejected: list[str] = []
    with EventBatcher(lab.client(), on_rejected=lambda rs: rejected.extend(r.code or "" for r in rs)) as batcher:
        batcher.add({**event(c.id, 7), "id": "same"})
        batcher.add({**event(c.id, 7), "id": "same"})
        batcher.add(event("no-such-customer"))
    assert (batcher.stats.accepted, batcher.stats.duplicates, batcher.stats.rejected) == (1, 1, 1)
    assert rejected == ["unknown_customer"]
    assert tokens_used(lab, c.id) == 7


def test_customer_keys_are_batched_per_key(lab: Workspace) -> None:
    a, b = make_customer(lab, "basic"), make_customer(lab, "basic")
    with EventBatcher(lab.client()) as batcher:
        batcher.add({"type": "llm.tokens", "properties": {"tokens": 2}}, api_key=a.key)
        batcher.add({"type": "llm.tokens", "properties": {"tokens": 3}}, api_key=b.key)
    assert (tokens_used(lab, a.id), tokens_used(lab, b.id)) == (Decimal(2), Decimal(3))


def test_full_queue_policies() -> None:
    dead = Tollgate("k", base_url=f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(max_retries=0))
    errors: list[Exception] = []
    drop = EventBatcher(dead, max_queue=2, flush_interval=3600, when_full="drop_newest", on_error=lambda e, ev: errors.append(e))
    for i in range(4):
        drop.add({"customer": "x", "type": "t", "id": f"e{i}"})
    assert len(drop) == 2 and drop.stats.dropped == 2
    drop.close()  # the server is down: reported, counted, not raised
    assert drop.stats.dropped == 4 and errors

    oldest = EventBatcher(dead, max_queue=2, flush_interval=3600, when_full="drop_oldest")
    for i in range(3):
        oldest.add({"customer": "x", "type": "t", "id": f"e{i}"})
    assert [e["id"] for _, e in oldest._queue] == ["e1", "e2"]
    oldest.close()
    assert oldest.stats.dropped == 3  # one for the full queue, two when the dead server failed

    block = EventBatcher(dead, max_queue=1, max_batch=5, flush_interval=3600, block_timeout=0.2)
    block.add({"customer": "x", "type": "t"})
    start = time.monotonic()
    with pytest.raises(BatcherFullError):
        block.add({"customer": "x", "type": "t"})
    assert time.monotonic() - start >= 0.2
    block.close()


async def test_async_batcher_flushes_on_close(lab: Workspace) -> None:
    c = make_customer(lab, "basic")
    async with AsyncTollgate(lab.admin_key, base_url=lab.url) as client:
        batcher = AsyncEventBatcher(client, max_batch=1000, flush_interval=3600)
        for _ in range(20):
            await batcher.add(event(c.id, 2))
        assert tokens_used(lab, c.id) == 0
        await batcher.aclose()
    assert batcher.stats.accepted == 20 and tokens_used(lab, c.id) == 40


async def test_async_batcher_flushes_on_interval(lab: Workspace) -> None:
    import asyncio

    c = make_customer(lab, "basic")
    async with AsyncTollgate(lab.admin_key, base_url=lab.url) as client:
        async with AsyncEventBatcher(client, flush_interval=0.1) as batcher:
            await batcher.add(event(c.id, 4))
            for _ in range(100):
                if batcher.stats.accepted:
                    break
                await asyncio.sleep(0.02)
            assert batcher.stats.accepted == 1
    assert tokens_used(lab, c.id) == 4


def test_cache_ttl_and_denials(lab: Workspace) -> None:
    c = make_customer(lab, "basic")
    now = [0.0]
    cache = EntitlementCache(ttl=10, clock=lambda: now[0])
    with lab.client() as admin:
        assert not cache.check(admin, "reports", customer=c.id).cached
        assert cache.check(admin, "reports", customer=c.id).cached
        assert not cache.check(admin, "exports", customer=c.id).allowed
        assert not cache.check(admin, "exports", customer=c.id).cached, "denials are never cached"
        assert len(cache) == 0, "the denial dropped the customer's cached allows"
        cache.check(admin, "reports", customer=c.id)
        now[0] = 11
        assert not cache.check(admin, "reports", customer=c.id).cached, "expired after the TTL"
        # Keyed by customer key too (stored as a hash, never the key itself).
        assert not cache.check(admin, "reports", api_key=c.key).cached
        assert all(c.key not in k[0] for k in cache._entries)
