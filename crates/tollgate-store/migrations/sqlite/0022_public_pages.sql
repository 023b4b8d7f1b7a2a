-- The public pages (docs/DASHBOARD.md, "Public pages"): whether a workspace shows its pricing
-- table and hosted signup to anyone (off until its operator turns them on), and the custom
-- domains (hostnames) that serve a workspace's public pages and portal without its id in the path.
CREATE TABLE public_pages (
    workspace  TEXT    NOT NULL PRIMARY KEY,
    enabled    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- A hostname names one workspace in the whole deployment (a request's Host header is read
-- before any workspace is known): the primary key is the hostname alone, lower-cased.
CREATE TABLE custom_domains (
    hostname   TEXT    NOT NULL PRIMARY KEY,
    workspace  TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX custom_domains_by_workspace ON custom_domains (workspace, hostname);

-- Portal sign-in by email and the hosted signup's duplicate check find a customer by its email,
-- compared lower-cased.
CREATE INDEX customers_by_email ON customers (workspace, lower(email));
