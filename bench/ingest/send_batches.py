#!/usr/bin/env python3
"""Sends pre-generated event batches to `POST /v1/events`, each exactly once, over CONCURRENCY
keep-alive connections, and reports events/s (accepted events / wall time).

Usage: send_batches.py URL ADMIN_KEY BATCH_DIR CONCURRENCY LABEL

Every file is read into memory first; BATCH_DIR/warmup.json goes first, untimed (it loads the
customer's state). The clock runs from the first timed request to the last answer. A 2xx answer
means the accepted events are durable (see docs/ARCHITECTURE.md). Prints one summary line and
exits non-zero if any request failed or any event was rejected.
"""

import http.client
import json
import queue
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit


def main() -> None:
    url, key, batch_dir, concurrency, label = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    target = urlsplit(url)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = [p.read_bytes() for p in sorted(batch_dir.glob("batch-*.json"))]
    events = sum(len(json.loads(b)["events"]) for b in bodies)

    def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, dict]:
        conn.request("POST", "/v1/events", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, {"raw": data[:500].decode(errors="replace")}

    warm = http.client.HTTPConnection(target.hostname, target.port, timeout=300)
    status, report = post(warm, (batch_dir / "warmup.json").read_bytes())
    if status != 200:
        sys.exit(f"{label}: warm-up batch -> HTTP {status}: {json.dumps(report)[:500]}")
    warm.close()

    work: "queue.Queue[bytes]" = queue.Queue()
    for body in bodies:
        work.put(body)
    lock = threading.Lock()
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0, "failed": 0}
    latencies: list[float] = []
    failures: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=300)
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                break
            started = time.perf_counter()
            try:
                status, report = post(conn, body)
            except (OSError, http.client.HTTPException) as e:
                status, report = 0, {"error": repr(e)}
                conn.close()
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=300)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if status in (200, 207):
                    for k in ("accepted", "duplicates", "rejected"):
                        totals[k] += report.get(k, 0)
                    if report.get("rejected"):
                        bad = [r for r in report.get("results", []) if r.get("status") == "rejected"][:3]
                        failures.append(f"HTTP {status}: rejected {json.dumps(bad)}")
                else:
                    totals["failed"] += 1
                    failures.append(f"HTTP {status}: {json.dumps(report)[:300]}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started

    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"{label}\t{totals['accepted'] / wall:.0f}\t{totals['accepted']}\t{events}\t{wall:.3f}\t"
        f"{statistics.median(latencies) * 1000:.1f}\t{p99 * 1000:.1f}\t"
        f"{totals['duplicates']}\t{totals['rejected']}\t{totals['failed']}"
    )
    for f in failures[:5]:
        print(f"{label}: {f}", file=sys.stderr)
    if totals["failed"] or totals["rejected"] or totals["accepted"] != events:
        sys.exit(1)


if __name__ == "__main__":
    main()
