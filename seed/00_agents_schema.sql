-- certctl's `agents` table, for standalone use of the reference target on PostgreSQL.
--
-- Mirrors what certctl-server's migrations create (000001 table, the metadata columns and their
-- indexes, 000015 retirement columns and partial index). Against a database that certctl-server
-- has migrated, every statement here is a no-op, so it is safe to run (and rerun) anywhere:
--
--   psql "$CERTCTL_DATABASE_URL" -f seed/00_agents_schema.sql
--
-- The reference target's SQLite fleet runs this file too: every statement is also SQLite, which wants
-- the default (NOW()) in parentheses and gets NOW() from the store (RFC 3339 UTC text).

CREATE TABLE IF NOT EXISTS agents (
    id                TEXT PRIMARY KEY,
    name              VARCHAR(255) NOT NULL UNIQUE,
    hostname          VARCHAR(255) NOT NULL,
    status            VARCHAR(50)  NOT NULL DEFAULT 'offline',
    last_heartbeat_at TIMESTAMPTZ,
    registered_at     TIMESTAMPTZ  NOT NULL DEFAULT (NOW()),
    api_key_hash      VARCHAR(255) NOT NULL,
    os                VARCHAR(100) DEFAULT '',
    architecture      VARCHAR(100) DEFAULT '',
    ip_address        VARCHAR(45)  DEFAULT '',
    version           VARCHAR(50)  DEFAULT '',
    retired_at        TIMESTAMPTZ,
    retired_reason    TEXT
);

CREATE INDEX IF NOT EXISTS idx_agents_status ON agents (status);
CREATE INDEX IF NOT EXISTS idx_agents_hostname ON agents (hostname);
CREATE INDEX IF NOT EXISTS idx_agents_last_heartbeat_at ON agents (last_heartbeat_at);
CREATE INDEX IF NOT EXISTS idx_agents_os ON agents (os);
CREATE INDEX IF NOT EXISTS idx_agents_architecture ON agents (architecture);
CREATE INDEX IF NOT EXISTS idx_agents_retired_at ON agents (retired_at) WHERE retired_at IS NOT NULL;
