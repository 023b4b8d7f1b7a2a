"""Tollgate's Python SDK: sync and async API clients, an entitlement cache, event batchers and
ASGI middleware for FastAPI/Starlette."""

from ._core import NO_RETRIES, RetryPolicy
from .aio import AsyncTollgate
from .batcher import AsyncEventBatcher, BatcherStats, EventBatcher
from .cache import EntitlementCache
from .client import Tollgate
from .errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    BatcherFullError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TollgateError,
    ValidationError,
)
from .models import Decision, Event, EventResult, IngestReport, RateLimit, Upgrade

__version__ = "0.1.0"

__all__ = [
    "Tollgate",
    "AsyncTollgate",
    "RetryPolicy",
    "NO_RETRIES",
    "EntitlementCache",
    "EventBatcher",
    "AsyncEventBatcher",
    "BatcherStats",
    "Decision",
    "Upgrade",
    "RateLimit",
    "IngestReport",
    "EventResult",
    "Event",
    "TollgateError",
    "APIConnectionError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "ValidationError",
    "RateLimitError",
    "ServerError",
    "BatcherFullError",
]
