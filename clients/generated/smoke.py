"""Smoke test of clients generated from docs/openapi.json by two independent generators,
against a live server: openapi-python-client (package `tollgate_client`) and openapi-generator's
`python` generator (package `tollgate_ogen`). Run by .ci/clients.sh, which generates both.

Each client walks the same path a developer walks first: apply a catalog, create a customer on a
plan, give it a key, check and count with that key, send events, read usage (with its rolling
window), put a customer on a test clock and close a month (Apex case 1: 2% of 3,000.00 = 60.00),
list the invoices (which once crashed a generated client) and read an error as a typed problem.

    python3 smoke.py http://127.0.0.1:PORT ADMIN_KEY
"""

from __future__ import annotations

import pathlib
import sys
import uuid

BASE, ADMIN = sys.argv[1], sys.argv[2]
APEX = (pathlib.Path(__file__).parents[2] / "examples/catalogs/apex.yaml").read_text()


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def openapi_python_client() -> None:
    from tollgate_client import AuthenticatedClient
    from tollgate_client.api.catalog import catalog_apply
    from tollgate_client.api.check import check_check
    from tollgate_client.api.customers import customers_create, customers_get, customers_usage
    from tollgate_client.api.events import events_ingest
    from tollgate_client.api.invoices import invoices_list
    from tollgate_client.api.keys import keys_create
    from tollgate_client.api.subscriptions import subscriptions_create
    from tollgate_client.api.test_clocks import test_clocks_advance, test_clocks_create
    from tollgate_client.models import (
        AdvanceIn,
        CatalogApplyJsonBody,
        CheckIn,
        CustomerIn,
        EventIn,
        EventInProperties,
        EventsIn,
        KeyIn,
        PageInvoiceOut,
        Problem,
        SubscriptionIn,
        TestClockIn,
    )

    tag = uuid.uuid4().hex[:8]
    admin = AuthenticatedClient(base_url=BASE, token=ADMIN, raise_on_unexpected_status=True)
    applied = catalog_apply.sync_detailed(client=admin, body=CatalogApplyJsonBody.from_dict({"yaml": APEX}))
    check(applied.status_code == 200, f"opc: catalog applied ({applied.status_code})")
    acme = f"acme-{tag}"
    created = customers_create.sync(client=admin, body=CustomerIn(id=acme))
    check(getattr(created, "id", None) == acme, "opc: customer created")
    sub = subscriptions_create.sync(acme, client=admin, body=SubscriptionIn(plan="free"))
    check(getattr(sub, "plan", None) == "free", "opc: subscribed to free")
    key = keys_create.sync(acme, client=admin, body=KeyIn())
    secret = getattr(key, "secret", None)
    check(isinstance(secret, str) and secret.startswith("tg_"), "opc: key issued")

    customer = AuthenticatedClient(base_url=BASE, token=secret, raise_on_unexpected_status=True)
    for n in range(3):
        decision = check_check.sync(client=customer, body=CheckIn(meter="agent_runs", subject="u1", consume=True))
        check(getattr(decision, "allowed", None) is True, f"opc: run {n + 1} allowed")
    denied = check_check.sync(client=customer, body=CheckIn(meter="agent_runs", subject="u1", consume=True))
    check(
        getattr(denied, "allowed", None) is False
        and denied.reason == "quota_exceeded"  # type: ignore[union-attr]
        and denied.upgrade.plan == "early",  # type: ignore[union-attr]
        "opc: the 4th run is denied with the upgrade hint, typed",
    )
    usage = customers_usage.sync(acme, client=customer, subject="u1")
    runs = [m for m in usage.meters if m.meter == "agent_runs"]  # type: ignore[union-attr]
    check(runs and runs[0].windows[0].used == "3", "opc: usage shows the 5h window, typed")

    def ingest_events(body: EventsIn) -> int:
        return events_ingest.sync_detailed(client=admin, body=body).status_code

    ingest_status = ingest_events(
        EventsIn(
            events=[
                EventIn(
                    id=f"e-{tag}",
                    customer=acme,
                    type_="cloud.cost",
                    properties=EventInProperties.from_dict({"amount_usd": "12.50"}),
                )
            ]
        )
    )
    check(ingest_status == 200, f"opc: event accepted ({ingest_status})")

    clock = test_clocks_create.sync(client=admin, body=TestClockIn(frozen_time="2026-10-01T00:00:00Z"))
    beta = f"beta-{tag}"
    customers_create.sync(client=admin, body=CustomerIn(id=beta, test_clock=clock.id))  # type: ignore[union-attr]
    subscriptions_create.sync(beta, client=admin, body=SubscriptionIn(plan="early", trial=False))
    ingest_events(
        EventsIn(
            events=[
                EventIn(
                    id=f"oct-{tag}",
                    customer=beta,
                    type_="cloud.cost",
                    properties=EventInProperties.from_dict({"amount_usd": "3000.00"}),
                )
            ]
        )
    )
    test_clocks_advance.sync(clock.id, client=admin, body=AdvanceIn(frozen_time="2026-11-01T00:00:01Z"))  # type: ignore[union-attr]
    page = invoices_list.sync(beta, client=admin)
    check(isinstance(page, PageInvoiceOut), "opc: invoices listed and parsed")
    # Oldest first: the opening invoice (nothing in advance on this plan: 0.00), then October's.
    invoice = page.data[-1]  # type: ignore[union-attr]
    check(invoice.total == "60.00" and len(invoice.lines) >= 1, "opc: Apex case 1 invoice, 60.00 with its lines")

    missing = customers_get.sync("ghost-" + tag, client=admin)
    check(isinstance(missing, Problem) and missing.code == "not_found", "opc: a 404 is a typed problem")


def openapi_generator() -> None:
    import tollgate_ogen as og
    from tollgate_ogen.exceptions import NotFoundException

    tag = uuid.uuid4().hex[:8]
    admin_api = og.ApiClient(og.Configuration(host=BASE, access_token=ADMIN))
    catalog = og.CatalogApi(admin_api)
    catalog.catalog_apply({"yaml": APEX})
    print("ok: ogen: catalog applied")
    customers = og.CustomersApi(admin_api)
    acme = f"acme-{tag}"
    check(customers.customers_create(og.CustomerIn(id=acme)).id == acme, "ogen: customer created")
    og.SubscriptionsApi(admin_api).subscriptions_create(acme, og.SubscriptionIn(plan="free"))
    secret = og.KeysApi(admin_api).keys_create(acme, og.KeyIn()).secret
    check(secret.startswith("tg_"), "ogen: key issued")

    customer_api = og.ApiClient(og.Configuration(host=BASE, access_token=secret))
    checks = og.CheckApi(customer_api)
    for n in range(3):
        check(
            checks.check_check(og.CheckIn(meter="agent_runs", subject="u1", consume=True)).allowed,
            f"ogen: run {n + 1} allowed",
        )
    denied = checks.check_check(og.CheckIn(meter="agent_runs", subject="u1", consume=True))
    check(
        denied.allowed is False and denied.reason == "quota_exceeded" and denied.upgrade.plan == "early",
        "ogen: the 4th run is denied with the upgrade hint, typed",
    )
    usage = og.CustomersApi(customer_api).customers_usage(acme, subject="u1")
    runs = [m for m in usage.meters if m.meter == "agent_runs"]
    check(runs and runs[0].windows[0].remaining == "0", "ogen: usage shows the 5h window, typed")

    clocks = og.TestClocksApi(admin_api)
    clock = clocks.test_clocks_create(og.TestClockIn(frozen_time="2026-10-01T00:00:00Z"))
    beta = f"beta-{tag}"
    customers.customers_create(og.CustomerIn(id=beta, test_clock=clock.id))
    og.SubscriptionsApi(admin_api).subscriptions_create(beta, og.SubscriptionIn(plan="early", trial=False))
    events = og.EventsApi(admin_api)
    report = events.events_ingest(
        og.EventsIn(
            events=[og.EventIn(id=f"oct-{tag}", customer=beta, type="cloud.cost", properties={"amount_usd": "3000.00"})]
        )
    )
    check(report.accepted == 1, "ogen: event accepted")
    clocks.test_clocks_advance(clock.id, og.AdvanceIn(frozen_time="2026-11-01T00:00:01Z"))
    page = og.InvoicesApi(admin_api).invoices_list(beta)
    check(page.data[-1].total == "60.00" and len(page.data[-1].lines) >= 1, "ogen: invoices listed: 60.00 with its lines")

    try:
        customers.customers_get("ghost-" + tag)
    except NotFoundException as e:
        check(e.status == 404 and "not_found" in (e.body or ""), "ogen: a 404 raises NotFoundException with the problem")
    else:
        raise SystemExit("FAILED: ogen: no exception for a missing customer")


openapi_python_client()
openapi_generator()
print("generated clients: all smoke checks passed")
