-- Customers gain a postal address and tax ids (JSON, set by `PATCH /v1/customers/{id}`) and an
-- archive time (`DELETE /v1/customers/{id}`): an archived customer's row stays, so its invoices,
-- credit notes and usage keep their owner and stay readable.
ALTER TABLE customers ADD COLUMN address TEXT NOT NULL DEFAULT 'null';
ALTER TABLE customers ADD COLUMN tax_ids TEXT NOT NULL DEFAULT '[]';
ALTER TABLE customers ADD COLUMN archived_at INTEGER;
