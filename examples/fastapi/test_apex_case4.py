"""Apex case 4 end to end (shared/scenarios/apex.md): a `free` user's 4th supervisor run in
5 hours is refused with the limit, the reset time and the upgrade; u2 is not affected; at
14:00:00 u1 runs again. Through the example app, served by uvicorn, against a real server."""

from __future__ import annotations

from pathlib import Path

import httpx

from support import Server, UvicornThread
from tollgate import AsyncTollgate, Tollgate

from apex_app import create_app

CATALOG = Path(__file__).resolve().parents[1] / "catalogs" / "apex.yaml"


def test_case_4_rolling_window_through_the_app(server: Server) -> None:
    with Tollgate(server.admin_key, base_url=server.url) as admin:
        admin.apply_catalog(CATALOG.read_text())
        clock = admin.create_test_clock("2026-11-10T09:00:00Z", name="apex case 4")["id"]
        admin.create_customer("apex-case4", test_clock=clock)
        admin.create_subscription("apex-case4", "free")
        key = admin.create_key("apex-case4")["secret"]

        app = create_app(AsyncTollgate(base_url=server.url))
        with UvicornThread(app) as served:

            def run(user: str) -> httpx.Response:
                return httpx.post(
                    served.url + "/agents/supervisor/runs",
                    headers={"Authorization": f"Bearer {key}", "X-User-Id": user},
                )

            for hour, left in (("09", "2"), ("10", "1"), ("11", "0")):
                admin.advance_test_clock(clock, f"2026-11-10T{hour}:00:00Z")
                ok = run("u1")
                assert ok.status_code == 200, ok.text
                assert ok.json()["user"] == "u1" and ok.json()["runs_left"] == left

            admin.advance_test_clock(clock, "2026-11-10T12:00:00Z")
            denied = run("u1")
            assert denied.status_code == 429
            assert denied.headers["content-type"] == "application/problem+json"
            body = denied.json()
            assert body["code"] == "quota_exceeded"
            decision = body["decision"]
            assert (decision["limit"], decision["window"], decision["scope"]) == ("3", "5h", "subject")
            assert decision["reset_at"] == "2026-11-10T14:00:00Z"
            assert denied.headers["retry-after"] == "7200"
            assert body["upgrade"] == {"plan": "early", "limit": "100"}
            assert "plan `early` allows it" in body["detail"]

            assert run("u2").status_code == 200, "u2 is not affected by u1's runs"

            admin.advance_test_clock(clock, "2026-11-10T13:59:59Z")
            assert run("u1").status_code == 429
            admin.advance_test_clock(clock, "2026-11-10T14:00:00Z")
            assert run("u1").status_code == 200, "at 14:00:00 a run is allowed again"

            # Case 5 through the same app: a feature of `early` answers 403 with the hint.
            gate = httpx.post(served.url + "/optimizations/advanced", headers={"X-API-Key": key})
            assert gate.status_code == 403 and gate.json()["upgrade"]["plan"] == "early"
            assert httpx.post(served.url + "/chat", headers={"X-API-Key": key}).status_code == 200

        # The runs are usage of the meter (they carry its filter, `level: supervisor`).
        runs = next(m for m in admin.usage("apex-case4")["meters"] if m["meter"] == "agent_runs")
        assert runs["used"] == "5"
