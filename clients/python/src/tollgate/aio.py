"""The asynchronous client. The API methods below are generated from client.py by
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

    # BEGIN API

    async def apply_catalog(self, catalog: str | Mapping[str, Any], *, idempotency_key: str | None = None) -> CatalogVersion:
        """Applies a catalog: YAML text as written in the file, or the catalog as a mapping."""
        return cast(CatalogVersion, await self._call(op("PUT", "/v1/catalog", catalog_body(catalog)), idempotency_key=idempotency_key))

    async def create_workspace(self, name: str, *, id: str | None = None) -> dict[str, Any]:
        """A new workspace; its `admin_key` is in this answer only."""
        return cast(dict[str, Any], await self._call(op("POST", "/v1/workspaces", drop_none(id=id, name=name))))

    async def get_catalog(self) -> CatalogVersion:
        return cast(CatalogVersion, await self._call(op("GET", "/v1/catalog")))

    async def create_customer(
        self,
        id: str | None = None,
        *,
        name: str | None = None,
        email: str | None = None,
        test_clock: str | None = None,
        has_payment_method: bool | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Customer:
        body = drop_none(id=id, name=name, email=email, test_clock=test_clock, has_payment_method=has_payment_method, metadata=dict(metadata) if metadata else None)
        return cast(Customer, await self._call(op("POST", "/v1/customers", body), idempotency_key=idempotency_key))

    async def get_customer(self, customer: str, *, api_key: str | None = None) -> Customer:
        return cast(Customer, await self._call(op("GET", f"/v1/customers/{seg(customer)}"), api_key=api_key))

    async def list_customers(self) -> list[Customer]:
        return cast(list[Customer], await self._list_all(list_op("/v1/customers")))

    async def suspend_customer(self, customer: str) -> Customer:
        """Refuses the customer's keys and denies its checks at once; deletes nothing."""
        return cast(Customer, await self._call(op("POST", f"/v1/customers/{seg(customer)}/suspend")))

    async def unsuspend_customer(self, customer: str) -> Customer:
        return cast(Customer, await self._call(op("POST", f"/v1/customers/{seg(customer)}/unsuspend")))

    async def create_subscription(
        self,
        customer: str,
        plan: str,
        *,
        trial: bool | None = None,
        addons: Mapping[str, int] | None = None,
        idempotency_key: str | None = None,
    ) -> Subscription:
        body = drop_none(plan=plan, trial=trial, addons=dict(addons) if addons else None)
        return cast(Subscription, await self._call(op("POST", f"/v1/customers/{seg(customer)}/subscriptions", body), idempotency_key=idempotency_key))

    async def list_subscriptions(self, customer: str) -> list[Subscription]:
        return cast(list[Subscription], await self._list_all(list_op(f"/v1/customers/{seg(customer)}/subscriptions")))

    async def change_subscription(
        self,
        customer: str,
        subscription: str,
        plan: str,
        *,
        addons: Mapping[str, int] | None = None,
        idempotency_key: str | None = None,
    ) -> Subscription:
        """Moves to `plan` at once, on the latest catalog; prorated on the next invoice."""
        body = drop_none(plan=plan, addons=dict(addons) if addons is not None else None)
        path = f"/v1/customers/{seg(customer)}/subscriptions/{seg(subscription)}/change"
        return cast(Subscription, await self._call(op("POST", path, body), idempotency_key=idempotency_key))

    async def cancel_subscription(self, customer: str, subscription: str, *, immediately: bool = False) -> Subscription:
        path = f"/v1/customers/{seg(customer)}/subscriptions/{seg(subscription)}/cancel"
        return cast(Subscription, await self._call(op("POST", path, {"immediately": immediately})))

    async def create_key(self, customer: str, *, name: str | None = None) -> ApiKey:
        """A customer key; its `secret` is in this answer only."""
        return cast(ApiKey, await self._call(op("POST", f"/v1/customers/{seg(customer)}/keys", drop_none(name=name))))

    async def list_keys(self, customer: str, *, api_key: str | None = None) -> list[ApiKey]:
        return cast(list[ApiKey], await self._list_all(list_op(f"/v1/customers/{seg(customer)}/keys"), api_key=api_key))

    async def revoke_key(self, customer: str, key: str) -> ApiKey:
        return cast(ApiKey, await self._call(op("POST", f"/v1/customers/{seg(customer)}/keys/{seg(key)}/revoke")))

    async def check(
        self,
        customer: str | None = None,
        *,
        feature: str | None = None,
        meter: str | None = None,
        quantity: int | str | None = None,
        subject: str | None = None,
        consume: bool = False,
        event_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
        api_key: str | None = None,
    ) -> Decision:
        """May `customer` (its `subject`) do this now? A denial is a `Decision`, not an error.

        With `consume`, the quantity is recorded atomically with the check; the `event_id`
        (generated if not given) makes the SDK's retries count once. A plan's request rate limit
        is a decision too (`reason="rate_limited"`), never retried here: waiting is the caller's
        choice. `customer` may be left out with a customer key.
        """
        body = check_body(customer, feature, meter, quantity, subject, consume, event_id, properties)
        return await self._call(check_op(body), api_key=api_key)

    async def ingest(self, events: Sequence[Event | Mapping[str, Any]], *, api_key: str | None = None) -> IngestReport:
        """Sends usage events, split into requests of at most 10,000, with an `id` given to each
        event that has none, so retries count once. Rejected events are in the report, not raised."""
        prepared = with_event_ids(list(events))
        return IngestReport.merge([await self._call(ingest_op(part), api_key=api_key) for part in chunks(prepared)])

    async def usage(self, customer: str, *, at: str | None = None, api_key: str | None = None) -> UsageReport:
        params = {"at": at} if at else None
        return cast(UsageReport, await self._call(op("GET", f"/v1/customers/{seg(customer)}/usage", params=params), api_key=api_key))

    async def upcoming_invoice(self, customer: str, *, api_key: str | None = None) -> Invoice:
        """The invoice the current period will close with, priced from usage so far (not stored)."""
        return cast(Invoice, await self._call(op("GET", f"/v1/customers/{seg(customer)}/invoices/upcoming"), api_key=api_key))

    async def list_invoices(self, customer: str, *, api_key: str | None = None) -> list[Invoice]:
        return cast(list[Invoice], await self._list_all(list_op(f"/v1/customers/{seg(customer)}/invoices"), api_key=api_key))

    async def list_events(
        self,
        *,
        customer: str | None = None,
        type: str | None = None,
        subject: str | None = None,
        since: str | None = None,
        until: str | None = None,
        api_key: str | None = None,
    ) -> list[StoredEvent]:
        """Stored events matching the filters (`since` inclusive, `until` exclusive, RFC 3339),
        oldest first, every page followed. A customer key sees its own events only."""
        params = event_filters(customer, type, subject, since, until)
        return cast(list[StoredEvent], await self._list_all(list_op("/v1/events", params), api_key=api_key))

    async def export_events(
        self,
        *,
        format: str = "ndjson",
        customer: str | None = None,
        type: str | None = None,
        subject: str | None = None,
        since: str | None = None,
        until: str | None = None,
        api_key: str | None = None,
    ) -> str:
        """Every matching event as `ndjson` or `csv` text (the server streams it)."""
        params = {"format": format, **event_filters(customer, type, subject, since, until)}
        return await self._call(text_op("/v1/events/export", params), api_key=api_key)

    async def get_invoice(self, invoice: str, *, api_key: str | None = None) -> Invoice:
        return cast(Invoice, await self._call(op("GET", f"/v1/invoices/{seg(invoice)}"), api_key=api_key))

    async def invoice_pdf(self, invoice: str, *, api_key: str | None = None) -> bytes:
        return await self._call(pdf_op(invoice), api_key=api_key)

    async def pay_invoice(self, invoice: str) -> Invoice:
        return cast(Invoice, await self._call(op("POST", f"/v1/invoices/{seg(invoice)}/pay")))

    async def void_invoice(self, invoice: str) -> Invoice:
        return cast(Invoice, await self._call(op("POST", f"/v1/invoices/{seg(invoice)}/void")))

    async def grant_credit(self, customer: str, amount: str, *, reason: str | None = None, idempotency_key: str | None = None) -> dict[str, Any]:
        body = drop_none(amount=amount, reason=reason)
        return cast(dict[str, Any], await self._call(op("POST", f"/v1/customers/{seg(customer)}/credits", body), idempotency_key=idempotency_key))

    async def create_bill_run(self, *, idempotency_key: str | None = None) -> BillRun:
        """Finalizes every invoice owed up to now; re-running bills nothing twice."""
        return cast(BillRun, await self._call(op("POST", "/v1/bill_runs"), idempotency_key=idempotency_key))

    async def get_bill_run(self, bill_run: str) -> BillRun:
        return cast(BillRun, await self._call(op("GET", f"/v1/bill_runs/{seg(bill_run)}")))

    async def create_test_clock(self, frozen_time: str, *, name: str | None = None) -> TestClock:
        return cast(TestClock, await self._call(op("POST", "/v1/test_clocks", drop_none(frozen_time=frozen_time, name=name))))

    async def get_test_clock(self, clock: str) -> TestClock:
        return cast(TestClock, await self._call(op("GET", f"/v1/test_clocks/{seg(clock)}")))

    async def advance_test_clock(self, clock: str, frozen_time: str) -> TestClock:
        """Moves the clock forward (never back); its customers' windows and periods follow."""
        return cast(TestClock, await self._call(op("POST", f"/v1/test_clocks/{seg(clock)}/advance", {"frozen_time": frozen_time})))

    # END API
