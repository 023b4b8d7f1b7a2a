"""Netra Apex's API, gated by Tollgate's middleware (docs/PYTHON.md).

Apex's customers call it with their Tollgate customer key; who inside the customer acts comes in
`X-User-Id`. Supervisor agent runs are counted per user against the plan's rolling window (on
`free`: 3 in any 5 hours); advanced optimization needs `early` or better.

    TOLLGATE_URL=http://127.0.0.1:8080 uvicorn apex_app:app --port 9000
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request

from tollgate import AsyncTollgate, EntitlementCache
from tollgate.middleware import Route, TollgateMiddleware

ROUTES = [
    # Each run consumes 1 of `agent_runs` before the handler; the event carries the meter's
    # filter (`level: supervisor`) so the run counts in the meter's reports too.
    Route(
        "/agents/supervisor/runs",
        method="POST",
        meter="agent_runs",
        cost=1,
        properties={"level": "supervisor"},
    ),
    Route("/optimizations/advanced", method="POST", feature="advanced_optimization"),
    Route("/chat", method="POST", feature="basic_chat"),
]


def create_app(client: AsyncTollgate | None = None) -> FastAPI:
    """The app; `client` defaults to one configured from `TOLLGATE_URL`."""
    app = FastAPI(title="Netra Apex (example)")

    @app.post("/agents/supervisor/runs")
    async def run_supervisor(request: Request) -> dict[str, Any]:
        caller = request.state.tollgate
        decision = caller.decision
        return {
            "run": caller.event_id,
            "user": caller.subject,
            "runs_left": str(decision.remaining) if decision and decision.remaining is not None else None,
        }

    @app.post("/optimizations/advanced")
    async def optimize() -> dict[str, str]:
        return {"status": "optimizing"}

    @app.post("/chat")
    async def chat() -> dict[str, str]:
        return {"reply": "hello"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(
        TollgateMiddleware,
        client=client or AsyncTollgate(base_url=os.environ.get("TOLLGATE_URL")),
        routes=ROUTES,
        subject_header="X-User-Id",
        cache=EntitlementCache(ttl=30),
    )
    return app


app = create_app()
