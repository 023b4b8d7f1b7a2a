-- A sealing pass reads records in the order it appends them, (time written, id), from where the
-- last pass stopped, and stops after its limit: with the id in the index the database walks the
-- index in that order and stops early, instead of sorting every record since the last pass
-- (which made each pass cost the whole backlog while sealing lagged behind a burst of ingest).
DROP INDEX events_by_received;
CREATE INDEX events_by_received ON events (workspace, received_at, id);
DROP INDEX outbox_by_created;
CREATE INDEX outbox_by_created ON outbox (workspace, created_at, id);
