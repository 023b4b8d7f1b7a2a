"""The peer Tollgate's `POST /v1/check` is measured against.

What the `scenarios/` businesses would otherwise write themselves: a FastAPI service that
authenticates the customer's API key against Redis, enforces a per-customer request limit with
the usual fixed-window counter in Redis (INCR + EXPIRE), and answers the same questions as
Tollgate's check (a feature of the plan, or a meter's quota for a user) in JSON.

Written the way a competent team would, so the comparison is fair: an async Redis client with a
connection pool, one pipeline (one round trip) for the counters, a FastAPI dependency rather
than a `BaseHTTPMiddleware` (which is known to be slow), uvloop and httptools via
`uvicorn[standard]`, hiredis via `redis[hiredis]`. Per request: 2 Redis round trips (key lookup, then the counter pipeline).

Run: uvicorn app:app --workers 2 (bench/http-check.sh does, with PEER_REDIS_URL and
PEER_PREFIX set, after storing the benchmark key under `<prefix>:key:<sha256 of the key>`).
"""

import hashlib
import os
import time
from typing import Optional

import redis.asyncio as redis
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel

REDIS_URL = os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("PEER_PREFIX", "tgbench")
# Requests per customer per minute. The benchmark sets it so high that nothing is rejected, as
# with nginx's limit_req and Tollgate's plan: what is measured is the cost of counting.
RATE_PER_MINUTE = int(os.environ.get("PEER_RATE_PER_MINUTE", "1000000000"))

# The Apex plans (examples/catalogs/apex.yaml), as such a team would hard-code them.
_FREE = {"basic_chat", "simple_optimization"}
_EARLY = _FREE | {"advanced_optimization", "basic_analytics", "api_access"}
_MID = _EARLY | {"all_agents", "team_collaboration", "advanced_analytics"}
_ENTERPRISE = _MID | {"white_label", "custom_models", "dedicated_support"}
PLANS = {
    "free": {"features": _FREE, "quotas": {"agent_runs": (3, 5 * 3600)}},
    "early": {"features": _EARLY, "quotas": {"agent_runs": (100, 5 * 3600)}},
    "mid": {"features": _MID, "quotas": {"agent_runs": (1000, 5 * 3600)}},
    "enterprise": {"features": _ENTERPRISE, "quotas": {"agent_runs": (1000, 5 * 3600)}},
}

app = FastAPI()
pool = redis.Redis.from_url(REDIS_URL, decode_responses=True, max_connections=256)


class Customer(BaseModel):
    id: str
    plan: str


class CheckIn(BaseModel):
    feature: Optional[str] = None
    meter: Optional[str] = None
    subject: Optional[str] = None
    quantity: int = 1


def problem(status: int, code: str, headers: Optional[dict] = None) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "status": status, "code": code}, status_code=status,
                        media_type="application/problem+json", headers=headers)


async def authenticate(authorization: Optional[str] = Header(default=None)) -> Customer:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(status_code=401, detail="missing_key")
    digest = hashlib.sha256(authorization[7:].encode()).hexdigest()
    record = await pool.get(f"{PREFIX}:key:{digest}")
    if record is None:
        raise HTTPException(status_code=401, detail="unknown_key")
    return Customer.model_validate_json(record)


@app.post("/v1/check")
async def check(body: CheckIn, customer: Customer = Depends(authenticate)):
    plan = PLANS[customer.plan]
    now = int(time.time())
    rate_key = f"{PREFIX}:rate:{customer.id}:{now // 60}"
    pipe = pool.pipeline(transaction=False)
    pipe.incr(rate_key)
    pipe.expire(rate_key, 60)
    quota = None
    if body.meter is not None:
        quota = plan["quotas"].get(body.meter)
        if quota is not None:
            limit, window = quota
            pipe.get(f"{PREFIX}:usage:{customer.id}:{body.meter}:{body.subject or ''}:{now // window}")
    results = await pipe.execute()
    if results[0] > RATE_PER_MINUTE:
        return problem(429, "rate_limited", {"Retry-After": str(60 - now % 60)})

    if body.feature is not None:
        allowed = body.feature in plan["features"]
        return {"allowed": allowed, "feature": body.feature, "plan": customer.plan,
                **({} if allowed else {"reason": "feature_not_in_plan"})}
    if body.meter is not None:
        if quota is None:
            return {"allowed": True, "meter": body.meter, "plan": customer.plan}
        limit, window = quota
        used = int(results[2] or 0)
        remaining = max(limit - used, 0)
        allowed = used + body.quantity <= limit
        return {"allowed": allowed, "meter": body.meter, "plan": customer.plan, "limit": str(limit),
                "remaining": str(remaining), "reset_at": (now // window + 1) * window,
                **({} if allowed else {"reason": "quota_exceeded"})}
    return problem(400, "invalid_target")


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}

