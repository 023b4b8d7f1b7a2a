-- Keyset paging of lists: `GET /v1/customers` pages in (created_at, id) order and
-- `GET /v1/events` (and its export) reads a workspace's events in (ts, id) order, with or
-- without a customer filter. Both indexes serve `ORDER BY ... LIMIT` after a cursor without
-- sorting the whole workspace.
CREATE INDEX customers_by_creation ON customers (workspace, created_at, id);
CREATE INDEX events_by_time ON events (workspace, ts, id);
