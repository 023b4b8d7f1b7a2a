"""Writes src/tollgate/aio.py: the async client, its API methods generated from client.py.

The sync client is the source of truth; run this after changing its API section
(`python scripts/gen_async.py`). A test fails when aio.py is out of date.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "tollgate"

HEADER = '''"""The asynchronous client. The API methods below are generated from client.py by
scripts/gen_async.py: edit client.py and regenerate."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Mapping, Sequence, cast

import httpx

from ._core import (
    DEFAULT_BASE_URL,
    PAGE_SIZE,
    USER_AGENT,
    Op,
    RetryPolicy,
    T,
    catalog_body,
    check_body,
    check_op,
    chunks,
    drop_none,
    event_filters,
    finish,
    headers_for,
    ingest_op,
    items,
    list_op,
    op,
    pdf_op,
    retry_after,
    seg,
    should_retry,
    text_op,
    with_event_ids,
)
from .errors import APIConnectionError
from .models import (
    ApiKey,
    BillRun,
    CatalogVersion,
    Customer,
    Decision,
    Event,
    IngestReport,
    Invoice,
    StoredEvent,
    Subscription,
    TestClock,
    UsageReport,
)

__all__ = ["AsyncTollgate"]


class AsyncTollgate:
    """Async twin of `Tollgate` (same methods, awaited), on `httpx.AsyncClient`."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.api_key = api_key or os.environ.get("TOLLGATE_API_KEY")
        self.base_url = (base_url or os.environ.get("TOLLGATE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.retry = retry or RetryPolicy()
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, headers={"User-Agent": USER_AGENT}
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncTollgate:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, op: Op[T], *, api_key: str | None = None, idempotency_key: str | None = None) -> T:
        """Sends `op`, retrying 429/5xx/connection errors with the same idempotency key."""
        headers = headers_for(op, api_key or self.api_key, idempotency_key)
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    op.method, self.base_url + op.path, json=op.json, params=op.params, headers=headers
                )
            except httpx.TransportError as exc:
                wait = self.retry.delay(attempt, None)
                if wait is None:
                    raise APIConnectionError(f"{op.method} {op.path}: {exc!r}") from exc
                await asyncio.sleep(wait)
                attempt += 1
                continue
            if should_retry(op, response):
                wait = self.retry.delay(attempt, retry_after(response))
                if wait is not None:
                    await response.aclose()
                    await asyncio.sleep(wait)
                    attempt += 1
                    continue
            return finish(op, response)

    async def _list_all(self, op: Op[Any], *, api_key: str | None = None) -> list[Any]:
        """Every item of a list, following its `has_more` pages (100 items a request)."""
        out: list[Any] = []
        params = {"limit": str(PAGE_SIZE), **dict(op.params or {})}
        while True:
            page, more = items(await self._call(Op(op.method, op.path, op.parse, params=params), api_key=api_key))
            out.extend(page)
            if not more or not page or "id" not in page[-1]:
                return out
            params["starting_after"] = str(page[-1]["id"])

'''


def generate() -> str:
    source = (ROOT / "client.py").read_text()
    api = source.split("    # BEGIN API\n", 1)[1].split("    # END API\n", 1)[0]
    api = re.sub(r"^    def ", "    async def ", api, flags=re.M)
    api = api.replace("self._call(", "await self._call(").replace("self._list_all(", "await self._list_all(")
    return HEADER + "    # BEGIN API\n" + api + "    # END API\n"


if __name__ == "__main__":
    target = ROOT / "aio.py"
    if "--check" in sys.argv:
        sys.exit(0 if target.read_text() == generate() else 1)
    target.write_text(generate())
