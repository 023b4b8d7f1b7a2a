"""Event batchers: queue usage events in memory and send them in batches in the background.

Guarantees:
- every event gets an `id` when queued (yours, or a generated one), so a batch resent after a
  timeout is counted once by the server;
- a batch is sent when `max_batch` events are queued or `flush_interval` seconds after the
  oldest waiting one, whichever comes first; `flush()` sends everything queued and waits;
  `close()` (and the context managers) flush before returning;
- a failed send that may succeed later (connection error, 429, 5xx, after the client's own
  retries) puts the events back at the head of the queue for the next flush; any other failure
  (400, 401, 403: resending would not help) drops them and calls `on_error`;
- events the server rejects one by one (`unknown_customer`, `invalid_property`, ...) are counted
  in `stats.rejected` and passed to `on_rejected`.

Not guaranteed: events still queued when the process dies (`kill -9`, a crash, a hard exit
without `close()`) are lost. Queue at most `max_queue` events; when full, `when_full` decides:
`"block"` (default: wait up to `block_timeout`, then raise `BatcherFullError`; backpressure,
nothing lost silently), `"drop_newest"` or `"drop_oldest"` (counted in `stats.dropped`).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Sequence

from .errors import APIConnectionError, BatcherFullError, RateLimitError, ServerError, TollgateError
from .models import Event, EventResult, IngestReport

if TYPE_CHECKING:
    from .aio import AsyncTollgate
    from .client import Tollgate

__all__ = ["EventBatcher", "AsyncEventBatcher", "BatcherStats", "WhenFull"]

WhenFull = Literal["block", "drop_newest", "drop_oldest"]
_Item = tuple["str | None", dict[str, Any]]  # (api key to send with, event)
ErrorHook = Callable[[TollgateError, Sequence[Mapping[str, Any]]], None]
RejectedHook = Callable[[Sequence[EventResult]], None]

_TRANSIENT = (APIConnectionError, RateLimitError, ServerError)


@dataclass
class BatcherStats:
    queued: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0
    failed_sends: int = 0


def _prepare(event: Event | Mapping[str, Any]) -> dict[str, Any]:
    prepared = dict(event)
    if not prepared.get("id"):
        prepared["id"] = f"py_{uuid.uuid4().hex}"
    return prepared


class _Base:
    def __init__(
        self,
        *,
        max_batch: int,
        flush_interval: float,
        max_queue: int,
        when_full: WhenFull,
        block_timeout: float,
        on_error: ErrorHook | None,
        on_rejected: RejectedHook | None,
    ) -> None:
        if max_batch < 1 or max_batch > 10_000:
            raise ValueError("max_batch must be 1..10000 (the server's batch limit)")
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.when_full = when_full
        self.block_timeout = block_timeout
        self.on_error = on_error
        self.on_rejected = on_rejected
        self.stats = BatcherStats()
        self._queue: deque[_Item] = deque()
        self._closed = False
        self._oldest: float | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def _take(self) -> list[_Item]:
        n = min(self.max_batch, len(self._queue))
        return [self._queue.popleft() for _ in range(n)]

    @staticmethod
    def _groups(batch: list[_Item]) -> dict[str | None, list[dict[str, Any]]]:
        """One request per key: a customer key may only send its own customer's events."""
        groups: dict[str | None, list[dict[str, Any]]] = {}
        for key, event in batch:
            groups.setdefault(key, []).append(event)
        return groups

    def _record(self, report: IngestReport) -> None:
        self.stats.accepted += report.accepted
        self.stats.duplicates += report.duplicates
        self.stats.rejected += report.rejected
        if report.rejected and self.on_rejected is not None:
            self.on_rejected(report.rejections)

    def _failed(self, exc: TollgateError, key: str | None, events: list[dict[str, Any]], requeue: bool) -> None:
        self.stats.failed_sends += 1
        if requeue and isinstance(exc, _TRANSIENT):
            room = self.max_queue - len(self._queue)
            back = events[:room]
            self._queue.extendleft((key, e) for e in reversed(back))
            if back and self._oldest is None:
                self._oldest = time.monotonic()
            self.stats.dropped += len(events) - len(back)
        else:
            self.stats.dropped += len(events)
        if self.on_error is not None:
            self.on_error(exc, events)


class EventBatcher(_Base):
    """Thread-based batcher for sync code: `add()` never makes a network call."""

    def __init__(
        self,
        client: Tollgate,
        *,
        max_batch: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 100_000,
        when_full: WhenFull = "block",
        block_timeout: float = 5.0,
        on_error: ErrorHook | None = None,
        on_rejected: RejectedHook | None = None,
    ) -> None:
        super().__init__(
            max_batch=max_batch,
            flush_interval=flush_interval,
            max_queue=max_queue,
            when_full=when_full,
            block_timeout=block_timeout,
            on_error=on_error,
            on_rejected=on_rejected,
        )
        self.client = client
        self._cond = threading.Condition()
        self._sending = 0
        self._thread = threading.Thread(target=self._run, name="tollgate-batcher", daemon=True)
        self._thread.start()

    def add(self, event: Event | Mapping[str, Any], *, api_key: str | None = None) -> str:
        """Queues an event; returns its id."""
        prepared = _prepare(event)
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if len(self._queue) >= self.max_queue:
                if self.when_full == "drop_newest":
                    self.stats.dropped += 1
                    return str(prepared["id"])
                if self.when_full == "drop_oldest":
                    self._queue.popleft()
                    self.stats.dropped += 1
                else:
                    deadline = time.monotonic() + self.block_timeout
                    while len(self._queue) >= self.max_queue:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise BatcherFullError(f"event queue full ({self.max_queue}) for {self.block_timeout}s")
                        self._cond.notify_all()
                        self._cond.wait(left)
            self._queue.append((api_key, prepared))
            self.stats.queued += 1
            if self._oldest is None:
                self._oldest = time.monotonic()
                self._cond.notify_all()  # the worker times the interval from now
            elif len(self._queue) >= self.max_batch:
                self._cond.notify_all()
        return str(prepared["id"])

    def _send(self, batch: list[_Item], requeue: bool) -> None:
        for key, events in self._groups(batch).items():
            try:
                report = self.client.ingest(events, api_key=key)
            except TollgateError as exc:
                with self._cond:
                    self._failed(exc, key, events, requeue)
                continue
            with self._cond:
                self._record(report)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    due = self._oldest is not None and time.monotonic() - self._oldest >= self.flush_interval
                    if len(self._queue) >= self.max_batch or (due and self._queue):
                        break
                    timeout = self.flush_interval
                    if self._oldest is not None:
                        timeout = max(0.0, self._oldest + self.flush_interval - time.monotonic())
                    self._cond.wait(timeout)
                if self._closed:
                    return
                batch = self._take()
                self._oldest = time.monotonic() if self._queue else None
                self._sending += 1
                self._cond.notify_all()  # room for blocked producers
            failures = self.stats.failed_sends
            try:
                self._send(batch, requeue=True)
            finally:
                with self._cond:
                    self._sending -= 1
                    self._cond.notify_all()
                    if self.stats.failed_sends > failures:
                        # The server is failing: wait an interval before trying again.
                        pause_until = time.monotonic() + self.flush_interval
                        while not self._closed and time.monotonic() < pause_until:
                            self._cond.wait(pause_until - time.monotonic())

    def flush(self) -> None:
        """Sends everything queued now and waits for it (and for a batch already on its way)."""
        while True:
            with self._cond:
                batch = self._take()
                if not batch:
                    while self._sending:
                        self._cond.wait()
                    self._oldest = None
                    return
                self._sending += 1
            try:
                self._send(batch, requeue=False)
            finally:
                with self._cond:
                    self._sending -= 1
                    self._cond.notify_all()

    def close(self) -> None:
        """Stops the background thread and sends what is left. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        self.flush()

    def __enter__(self) -> EventBatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncEventBatcher(_Base):
    """asyncio batcher: a background task in the running loop, started by the first `add()`
    (or `start()`); `aclose()` flushes. The middleware starts and closes it with the app."""

    def __init__(
        self,
        client: AsyncTollgate,
        *,
        max_batch: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 100_000,
        when_full: WhenFull = "block",
        block_timeout: float = 5.0,
        on_error: ErrorHook | None = None,
        on_rejected: RejectedHook | None = None,
    ) -> None:
        super().__init__(
            max_batch=max_batch,
            flush_interval=flush_interval,
            max_queue=max_queue,
            when_full=when_full,
            block_timeout=block_timeout,
            on_error=on_error,
            on_rejected=on_rejected,
        )
        self.client = client
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._room: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._room = asyncio.Event()
            self._lock = asyncio.Lock()
            self._closed = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="tollgate-batcher")

    async def add(self, event: Event | Mapping[str, Any], *, api_key: str | None = None) -> str:
        """Queues an event; returns its id. Awaits only when the queue is full under `"block"`."""
        if self._closed:
            raise RuntimeError("the batcher is closed")
        self.start()
        assert self._wake is not None and self._room is not None
        prepared = _prepare(event)
        if len(self._queue) >= self.max_queue:
            if self.when_full == "drop_newest":
                self.stats.dropped += 1
                return str(prepared["id"])
            if self.when_full == "drop_oldest":
                self._queue.popleft()
                self.stats.dropped += 1
            else:
                deadline = time.monotonic() + self.block_timeout
                while len(self._queue) >= self.max_queue:
                    self._room.clear()
                    self._wake.set()
                    left = deadline - time.monotonic()
                    try:
                        await asyncio.wait_for(self._room.wait(), max(left, 0.0))
                    except asyncio.TimeoutError:
                        raise BatcherFullError(
                            f"event queue full ({self.max_queue}) for {self.block_timeout}s"
                        ) from None
        self._queue.append((api_key, prepared))
        self.stats.queued += 1
        if len(self._queue) >= self.max_batch:
            self._wake.set()
        return str(prepared["id"])

    async def _send(self, batch: list[_Item], requeue: bool) -> None:
        for key, events in self._groups(batch).items():
            try:
                report = await self.client.ingest(events, api_key=key)
            except TollgateError as exc:
                self._failed(exc, key, events, requeue)
                continue
            self._record(report)

    async def _run(self) -> None:
        assert self._wake is not None and self._room is not None and self._lock is not None
        while not self._closed:
            if len(self._queue) < self.max_batch:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.flush_interval)
                except asyncio.TimeoutError:
                    pass
            self._wake.clear()
            if self._closed:
                return
            while self._queue:
                failures = self.stats.failed_sends
                async with self._lock:
                    batch = self._take()
                    self._room.set()
                    await self._send(batch, requeue=True)
                if self.stats.failed_sends > failures:
                    # The server is failing: wait an interval before trying again.
                    try:
                        await asyncio.wait_for(self._closing(), self.flush_interval)
                    except asyncio.TimeoutError:
                        pass
                    break
                if len(self._queue) < self.max_batch:
                    break  # the rest at the next tick

    async def _closing(self) -> None:
        while not self._closed:
            await asyncio.sleep(0.05)

    async def flush(self) -> None:
        """Sends everything queued now and waits for it."""
        lock = self._lock or asyncio.Lock()
        async with lock:
            while self._queue:
                batch = self._take()
                if self._room is not None:
                    self._room.set()
                await self._send(batch, requeue=False)

    async def aclose(self) -> None:
        """Stops the background task and sends what is left. Idempotent."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    async def __aenter__(self) -> AsyncEventBatcher:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
