"""A local cache of feature-gate decisions, so a gate does not cost a round trip each time.

What is cached: *allowed* feature decisions, per customer (or customer key), subject, feature and
quantity, for `ttl` seconds. What is not: denials (a customer who just upgraded is never kept
out by a stale "no"), meter checks (quotas move with every request), anything consuming.

Invalidation: any denial that means "this customer's plan or standing changed" (not in plan,
feature limit, suspended, no subscription) or a 401/403 drops every entry of that customer; and
`invalidate()` can be called when your app knows better (after it changed a plan, say). A
downgrade or suspension made elsewhere is seen at the latest `ttl` seconds later.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

from .errors import AuthenticationError, PermissionDeniedError
from .models import Decision

if TYPE_CHECKING:
    from .aio import AsyncTollgate
    from .client import Tollgate

__all__ = ["EntitlementCache", "INVALIDATING_REASONS"]

#: Denials after which nothing cached about the customer can be trusted.
INVALIDATING_REASONS = frozenset(
    {"feature_not_in_plan", "feature_limit_exceeded", "customer_suspended", "no_subscription"}
)

_Key = tuple[str, str, str, str]


def identity(customer: str | None, api_key: str | None) -> str:
    """Who the entries belong to: the customer id, or a hash of its key (never the key)."""
    if customer:
        return f"c:{customer}"
    if api_key:
        return "k:" + hashlib.sha256(api_key.encode()).hexdigest()[:32]
    raise ValueError("a cached check needs a customer or a customer key")


class EntitlementCache:
    """Thread-safe; one instance may serve sync and async code alike."""

    def __init__(
        self, ttl: float = 30.0, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[_Key, tuple[float, Decision]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, who: str, feature: str, subject: str | None = None, quantity: str | None = None) -> Decision | None:
        key = (who, subject or "", feature, quantity or "")
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= now:
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self.hits += 1
            return entry[1]

    def observe(
        self, who: str, feature: str, decision: Decision, subject: str | None = None, quantity: str | None = None
    ) -> None:
        """Records a fresh decision: stores an allow, drops the customer's entries on a denial
        that says its plan or standing changed."""
        if decision.allowed:
            with self._lock:
                if len(self._entries) >= self.max_entries:
                    self._evict()
                # Rate-limit headers describe the moment of the check: not replayed from cache.
                cached = replace(decision, cached=True, rate_limit=None)
                self._entries[(who, subject or "", feature, quantity or "")] = (self._clock() + self.ttl, cached)
        elif decision.reason in INVALIDATING_REASONS:
            self.invalidate_identity(who)

    def invalidate(self, customer: str | None = None, *, api_key: str | None = None, feature: str | None = None) -> None:
        """Drops entries: all of them, a customer's, or one feature of a customer."""
        if customer is None and api_key is None:
            with self._lock:
                self._entries.clear()
            return
        self.invalidate_identity(identity(customer, api_key), feature)

    def invalidate_identity(self, who: str, feature: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == who and (feature is None or k[2] == feature)]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self) -> None:
        now = self._clock()
        for key in [k for k, (exp, _) in self._entries.items() if exp <= now]:
            del self._entries[key]
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # oldest inserted first

    # ---- cached checks ------------------------------------------------------------------------

    def check(
        self,
        client: Tollgate,
        feature: str,
        *,
        customer: str | None = None,
        api_key: str | None = None,
        subject: str | None = None,
        quantity: int | str | None = None,
    ) -> Decision:
        """`client.check(feature=...)` through the cache."""
        who = identity(customer, api_key)
        q = str(quantity) if quantity is not None else None
        hit = self.get(who, feature, subject, q)
        if hit is not None:
            return hit
        try:
            decision = client.check(customer, feature=feature, subject=subject, quantity=quantity, api_key=api_key)
        except (AuthenticationError, PermissionDeniedError):
            self.invalidate_identity(who)
            raise
        self.observe(who, feature, decision, subject, q)
        return decision

    async def acheck(
        self,
        client: AsyncTollgate,
        feature: str,
        *,
        customer: str | None = None,
        api_key: str | None = None,
        subject: str | None = None,
        quantity: int | str | None = None,
    ) -> Decision:
        """`await client.check(feature=...)` through the cache."""
        who = identity(customer, api_key)
        q = str(quantity) if quantity is not None else None
        hit = self.get(who, feature, subject, q)
        if hit is not None:
            return hit
        try:
            decision = await client.check(
                customer, feature=feature, subject=subject, quantity=quantity, api_key=api_key
            )
        except (AuthenticationError, PermissionDeniedError):
            self.invalidate_identity(who)
            raise
        self.observe(who, feature, decision, subject, q)
        return decision
