"""The sync and async clients against a real server: CRUD, checks, events, billing, errors."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tollgate import (
    AsyncTollgate,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Tollgate,
    TollgateError,
    ValidationError,
)

from conftest import Workspace, make_customer
from support import Server


def test_customer_subscription_and_key_lifecycle(lab: Workspace) -> None:
    with lab.client() as admin:
        cid = f"life-{uuid.uuid4().hex[:8]}"
        created = admin.create_customer(cid, name="Acme", email="ops@acme.test", metadata={"tier": "gold"})
        assert created["id"] == cid and created["metadata"] == {"tier": "gold"}
        assert admin.get_customer(cid)["name"] == "Acme"
        assert cid in {c["id"] for c in admin.list_customers()}

        sub = admin.create_subscription(cid, "basic")
        assert sub["plan"] == "basic" and sub["status"] in ("active", "trialing")
        assert [s["id"] for s in admin.list_subscriptions(cid)] == [sub["id"]]
        changed = admin.change_subscription(cid, sub["id"], "pro")
        assert changed["plan"] == "pro"

        key = admin.create_key(cid, name="ci")
        assert key["secret"].startswith("tg_live_")
        listed = admin.list_keys(cid)
        assert [k["id"] for k in listed] == [key["id"]] and "secret" not in listed[0]

        assert admin.suspend_customer(cid)["suspended"] is True
        with pytest.raises(PermissionDeniedError) as denied:
            lab.client(key["secret"]).get_customer(cid)
        assert denied.value.code == "customer_suspended" and denied.value.status == 403
        assert admin.unsuspend_customer(cid)["suspended"] is False
        assert lab.client(key["secret"]).get_customer(cid)["id"] == cid

        revoked = admin.revoke_key(cid, key["id"])
        assert revoked["revoked_at"]
        with pytest.raises(AuthenticationError):
            lab.client(key["secret"]).get_customer(cid)


def test_errors_are_typed_problems(lab: Workspace) -> None:
    c = make_customer(lab, "basic")
    with lab.client() as admin:
        with pytest.raises(NotFoundError) as nf:
            admin.get_customer("nobody-" + uuid.uuid4().hex)
        assert nf.value.status == 404 and nf.value.code == "not_found" and "not found" in nf.value.detail

        with pytest.raises(ConflictError) as conflict:
            admin.create_customer(c.id)
        assert conflict.value.code == "already_exists"

        with pytest.raises(ValidationError) as invalid:
            admin.apply_catalog("meters: 3\n")
        assert invalid.value.status == 422 and invalid.value.code == "invalid_catalog"
        assert {e["path"] for e in invalid.value.errors} >= {"currency", "meters"}

        with pytest.raises(BadRequestError) as bad:
            admin.check(c.id, meter="no_such_meter", quantity="-1")
        assert bad.value.code == "invalid_quantity"

    with pytest.raises(AuthenticationError) as unauth:
        lab.client("tg_live_not_a_key").list_customers()
    assert unauth.value.code == "unauthorized" and unauth.value.status == 401

    with pytest.raises(PermissionDeniedError) as forbidden:
        lab.client(c.key).list_customers()
    assert forbidden.value.code == "forbidden"
    # A customer key asking for another customer: the same 404 as a missing one.
    with pytest.raises(NotFoundError):
        lab.client(c.key).get_customer("someone-else")
    assert isinstance(forbidden.value, TollgateError)

    with pytest.raises(ValueError):
        lab.client().check(c.id, feature="reports", meter="api_calls")


def test_feature_and_meter_checks(lab: Workspace) -> None:
    c = make_customer(lab, "basic")
    with lab.client() as admin:
        yes = admin.check(c.id, feature="reports")
        assert yes.allowed and yes.reason == "allowed"
        no = admin.check(c.id, feature="exports")
        assert not no.allowed and no.reason == "feature_not_in_plan"
        assert no.upgrade is not None and no.upgrade.plan == "pro"

        for i in range(2):
            d = admin.check(c.id, meter="exports", consume=True)
            assert d.allowed and d.used == Decimal(i + 1)
        over = admin.check(c.id, meter="exports", consume=True)
        assert not over.allowed and over.reason == "quota_exceeded"
        assert over.limit == Decimal(2) and over.remaining == Decimal(0)
        assert over.upgrade is not None and over.upgrade.limit == Decimal(100)

    # With the customer's own key, `customer` is implied.
    with lab.client(c.key) as mine:
        assert mine.check(feature="reports").allowed


def test_consuming_check_with_event_id_counts_once(lab: Workspace) -> None:
    c = make_customer(lab, "basic")
    with lab.client() as admin:
        first = admin.check(c.id, meter="api_calls", consume=True, event_id="run-1")
        again = admin.check(c.id, meter="api_calls", consume=True, event_id="run-1")
        assert first.used == again.used == Decimal(1)
        usage = admin.usage(c.id)
        api = next(m for m in usage["meters"] if m["meter"] == "api_calls")
        assert Decimal(api["used"]) == 1


def test_events_batch_with_per_event_results(lab: Workspace) -> None:
    c = make_customer(lab, "basic")
    with lab.client() as admin:
        report = admin.ingest(
            [
                {"id": "e1", "customer": c.id, "type": "llm.tokens", "properties": {"tokens": 120}},
                {"id": "e1", "customer": c.id, "type": "llm.tokens", "properties": {"tokens": 120}},
                {"customer": c.id, "type": "llm.tokens", "properties": {"tokens": 30}},  # id generated
                {"id": "e3", "customer": "nobody", "type": "llm.tokens"},
                {"id": "e4", "customer": c.id, "type": "llm.tokens", "properties": {"tokens": "lots"}},
            ]
        )
        assert (report.accepted, report.duplicates, report.rejected) == (2, 1, 2)
        assert [r.code for r in report.rejections] == ["unknown_customer", "invalid_property"]
        assert [r.index for r in report.rejections] == [3, 4]
        tokens = next(m for m in admin.usage(c.id)["meters"] if m["meter"] == "tokens")
        assert Decimal(tokens["used"]) == 150

    # A customer key sends its own events without naming the customer.
    with lab.client(c.key) as mine:
        assert mine.ingest([{"type": "api.call"}]).accepted == 1


def test_invoices_clocks_and_bill_runs(lab: Workspace) -> None:
    with lab.client() as admin:
        clock = admin.create_test_clock("2026-03-10T09:00:00Z", name="sdk")
        assert admin.get_test_clock(clock["id"])["frozen_time"] == "2026-03-10T09:00:00Z"
        c = make_customer(lab, "basic", clock=clock["id"])
        upcoming = admin.upcoming_invoice(c.id)
        assert upcoming["status"] == "draft" and upcoming["currency"] == "USD"
        moved = admin.advance_test_clock(clock["id"], "2026-04-02T00:00:00Z")
        assert moved["frozen_time"] == "2026-04-02T00:00:00Z"
        with pytest.raises(BadRequestError) as back:
            admin.advance_test_clock(clock["id"], "2026-01-01T00:00:00Z")
        assert back.value.code == "clock_backwards"

        run = admin.create_bill_run()
        assert run["status"] in ("completed", "running", "pending")
        assert admin.get_bill_run(run["id"])["id"] == run["id"]
        invoices = admin.list_invoices(c.id)
        assert invoices, "the March period closed on the clock: one invoice"
        one = admin.get_invoice(invoices[0]["id"])
        assert one["customer"] == c.id and one["number"]
        assert admin.invoice_pdf(one["id"]).startswith(b"%PDF")
        # The customer sees its own invoices with its key.
        assert [i["id"] for i in lab.client(c.key).list_invoices(c.id)] == [i["id"] for i in invoices]


def test_catalog_apply_yaml_and_mapping(lab: Workspace, server: "Server") -> None:
    from conftest import HERE

    text = (HERE / "lab.yaml").read_text()
    with lab.client() as admin:
        current = admin.get_catalog()
        again = admin.apply_catalog(text)
        assert again["version"] == current["version"] + 1
        assert again.get("changes", []) == []
        import json

        tiny = {"currency": "USD", "meters": {}, "features": {}, "plans": {"p": {"name": "P"}}}
        root = Tollgate(server.admin_key, base_url=lab.url)
        other = Tollgate(root.create_workspace("tiny")["admin_key"], base_url=lab.url)
        assert other.apply_catalog(json.loads(json.dumps(tiny)))["version"] == 1


def test_catalog_read_back_can_be_applied(lab: Workspace) -> None:
    with lab.client() as admin:
        current = admin.get_catalog()
        again = admin.apply_catalog(current["catalog"])
        assert again["version"] == current["version"] + 1
        assert again.get("changes", []) == [], "the same catalog: nothing changed"


async def test_async_client_end_to_end(lab: Workspace) -> None:
    c = make_customer(lab, "basic")
    async with AsyncTollgate(lab.admin_key, base_url=lab.url) as admin:
        assert (await admin.get_customer(c.id))["id"] == c.id
        d = await admin.check(c.id, meter="api_calls", consume=True)
        assert d.allowed and d.used == 1
        report = await admin.ingest([{"customer": c.id, "type": "api.call"}])
        assert report.accepted == 1
        with pytest.raises(NotFoundError):
            await admin.get_customer("missing-" + uuid.uuid4().hex)
    async with AsyncTollgate(c.key, base_url=lab.url) as mine:
        assert not (await mine.check(feature="exports")).allowed


def test_generated_async_client_is_up_to_date() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "gen_async.py"
    assert subprocess.run([sys.executable, str(script), "--check"]).returncode == 0, "run scripts/gen_async.py"


def test_env_defaults(monkeypatch: pytest.MonkeyPatch, lab: Workspace) -> None:
    monkeypatch.setenv("TOLLGATE_URL", lab.url)
    monkeypatch.setenv("TOLLGATE_API_KEY", lab.admin_key)
    with Tollgate() as admin:
        assert admin.get_catalog()["version"] >= 1


def test_lists_follow_every_page_and_events_are_queried(lab: Workspace) -> None:
    with lab.client() as admin:
        # More customers than one page of the SDK (100) and than the server's default (20).
        tag = uuid.uuid4().hex[:8]
        made = [admin.create_customer(f"page-{tag}-{i:03}")["id"] for i in range(105)]
        listed = [c["id"] for c in admin.list_customers()]
        assert len(listed) == len(set(listed)), "each customer once across pages"
        assert [c for c in listed if c.startswith(f"page-{tag}-")] == made, "creation order"

        c = make_customer(lab, "basic")
        report = admin.ingest(
            [
                {"id": f"{tag}-q1", "customer": c.id, "type": "llm.tokens", "subject": "ann", "properties": {"tokens": 5}},
                {"id": f"{tag}-q2", "customer": c.id, "type": "api.call", "subject": "bob"},
                {"id": f"{tag}-q3", "customer": c.id, "type": "llm.tokens", "subject": "bob", "properties": {"tokens": 1}},
            ]
        )
        assert report.accepted == 3
        assert [e["id"] for e in admin.list_events(customer=c.id, type="llm.tokens")] == [f"{tag}-q1", f"{tag}-q3"]
        assert [e["id"] for e in admin.list_events(customer=c.id, subject="bob")] == [f"{tag}-q2", f"{tag}-q3"]
        csv = admin.export_events(format="csv", customer=c.id)
        assert csv.splitlines()[0] == "id,customer,type,timestamp,subject,properties,received_at"
        assert len(csv.splitlines()) == 4
        with pytest.raises(BadRequestError) as bad:
            admin.export_events(format="xml")
        assert bad.value.code == "invalid_format"

    # A customer key lists its own events only.
    with lab.client(c.key) as mine:
        assert {e["customer"] for e in mine.list_events()} == {c.id}
        with pytest.raises(NotFoundError):
            mine.list_events(customer="someone-else")
