#!/usr/bin/env python3
"""The peer of durable ingest: SQLite's own batched insert rate for the same rows.

Usage: sqlite_peer.py BATCH_DIR DB_FILE LABEL

Creates DB_FILE with Tollgate's `events` table (same columns, STRICT, same unique key and index
as crates/tollgate-store/migrations/sqlite/0001_init.sql), in WAL mode with synchronous=FULL
(the durability Tollgate promises: every commit fsyncs the WAL), and inserts the events of every
batch file in one transaction per file (1,000 rows). Parsing the JSON files is done before the
clock starts: what is timed is SQLite inserting and committing. No aggregates are updated, no
HTTP: this is the floor Tollgate's ingest is built on, not an equivalent of it.
Prints `LABEL<TAB>events/s<TAB>events<TAB>seconds`.
"""

import json
import sqlite3
import sys
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE events (
    workspace   TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    customer    TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    ts          INTEGER NOT NULL,
    subject     TEXT,
    properties  TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (workspace, id)
) STRICT;
CREATE INDEX events_by_customer_time ON events (workspace, customer, ts);
"""


def main() -> None:
    batch_dir, db_file, label = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    now_ms = int(time.time() * 1000)
    batches = []
    for path in sorted(batch_dir.glob("batch-*.json")):
        rows = []
        for e in json.loads(path.read_bytes())["events"]:
            props = e.get("properties", {})
            rows.append(("default", e["id"], e["customer"], e["type"], now_ms, props.get("user"),
                         json.dumps(props, separators=(",", ":")), now_ms))
        batches.append(rows)

    db = sqlite3.connect(db_file, isolation_level=None)
    if db.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
        sys.exit("WAL mode refused")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(SCHEMA)

    started = time.perf_counter()
    for rows in batches:
        db.execute("BEGIN")
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
    wall = time.perf_counter() - started
    events = sum(len(rows) for rows in batches)
    count = db.execute("SELECT count(*) FROM events").fetchone()[0]
    db.close()
    if count != events:
        sys.exit(f"expected {events} rows, found {count}")
    print(f"{label}\t{events / wall:.0f}\t{events}\t{wall:.3f}")


if __name__ == "__main__":
    main()
