-- Sealing writes one entry per accepted event: no index that no query reads (the by-customer
-- index was never used; an entry is found by its seq or by its (kind, ref)).
DROP INDEX IF EXISTS ledger_entries_by_customer;
