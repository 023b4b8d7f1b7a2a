-- The dashboard's operators and the sessions of the web pages (docs/DASHBOARD.md).
-- An operator signs in with an email and a password (an argon2 PHC string, never the password);
-- a session's token is stored as its SHA-256 hash only, like every secret.
CREATE TABLE operator_users (
    workspace     TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace, id)
) STRICT;
CREATE UNIQUE INDEX operator_users_email ON operator_users (workspace, email);

-- `kind`: `operator` (a signed-in operator: `subject` is the user id), `portal_link` (the
-- single-use link an operator's app hands to its customer: `subject` is the customer id) and
-- `portal` (the customer's portal session the link became). `csrf` is the token every form of the
-- session must carry back.
CREATE TABLE web_sessions (
    workspace  TEXT    NOT NULL,
    token_hash TEXT    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX web_sessions_by_subject ON web_sessions (workspace, kind, subject);
