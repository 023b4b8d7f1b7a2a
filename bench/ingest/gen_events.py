#!/usr/bin/env python3
"""Writes the event batches bench/ingest.sh sends: Apex (examples/catalogs/apex.yaml) usage for
one customer on plan `mid`, so every event feeds a meter and its aggregates.

Usage: gen_events.py OUT_DIR BATCHES BATCH_SIZE CUSTOMER RUN_ID

Writes OUT_DIR/batch-NNNNN.json (BATCHES files) and OUT_DIR/warmup.json (one more batch, sent
before the clock starts), each `{"events": [...]}` with BATCH_SIZE events whose ids are unique
across all files (`RUN_ID-bNNNNN-NNNN`). The mix, per three events:
  - `agent.run` with level `supervisor` -> meters agent_runs (count, rolling 5 h per user) and
    tokens (sum);
  - `agent.run` with level `worker` -> tokens only (agent_runs filters on supervisor);
  - `cloud.cost` -> ai_spend (sum of amount_usd, priced 5% capped on plan mid).
Users cycle through u0..u99. No timestamps: the server stamps them (now).
"""

import json
import sys
from pathlib import Path


def batch(run_id: str, name: str, size: int, customer: str) -> dict:
    events = []
    for i in range(size):
        event_id = f"{run_id}-{name}-{i:04d}"
        user = f"u{i % 100}"
        kind = i % 3
        if kind == 0:
            props = {"level": "supervisor", "tokens": 100 + i % 900, "user": user}
            events.append({"id": event_id, "customer": customer, "type": "agent.run", "properties": props})
        elif kind == 1:
            props = {"level": "worker", "tokens": 50 + i % 450, "user": user}
            events.append({"id": event_id, "customer": customer, "type": "agent.run", "properties": props})
        else:
            props = {"amount_usd": f"{(i % 500) / 100 + 0.01:.2f}"}
            events.append({"id": event_id, "customer": customer, "type": "cloud.cost", "properties": props})
    return {"events": events}


def main() -> None:
    out, batches, size, customer, run_id = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    out.mkdir(parents=True, exist_ok=True)
    for n in range(batches):
        name = f"b{n:05d}"
        (out / f"batch-{n:05d}.json").write_text(json.dumps(batch(run_id, name, size, customer), separators=(",", ":")))
    (out / "warmup.json").write_text(json.dumps(batch(run_id, "warmup", size, customer), separators=(",", ":")))


if __name__ == "__main__":
    main()
