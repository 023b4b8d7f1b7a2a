-- Customers gain a postal address and tax ids (JSON, set by `PATCH /v1/customers/{id}`) and an
-- archive time (`DELETE /v1/customers/{id}`): an archived customer's row stays, so its invoices,
-- credit notes and usage keep their owner and stay readable. The table's row-level security
-- (0001) covers the new columns.
ALTER TABLE customers ADD COLUMN address JSONB NOT NULL DEFAULT 'null'::jsonb;
ALTER TABLE customers ADD COLUMN tax_ids JSONB NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE customers ADD COLUMN archived_at BIGINT;
