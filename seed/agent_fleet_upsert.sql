-- The fleet upsert every seeder runs: 02_agent_fleet.sql (psql's \ir, so keep the two files side by
-- side), `certctl-load seed` (certctl_load.db.seeding) and the reference target's SQLite fleet.
-- Not a script of its own: it reads the staging table `loadtest_fleet`, which the seeder fills with
-- the seed's rows (id, name, hostname, status, last_heartbeat_at, registered_at, api_key_hash, os,
-- architecture, ip_address, version) in the same transaction.
--
-- Each agent is inserted, or an existing row is returned to the seed's clean state: every seeded
-- column rewritten but registered_at (a re-seed is not a new registration), and not retired.
-- Runs on PostgreSQL and SQLite (`WHERE true` spares SQLite's parser reading ON CONFLICT as a join).

INSERT INTO agents (id, name, hostname, status, last_heartbeat_at, registered_at, api_key_hash,
                    os, architecture, ip_address, version)
SELECT id, name, hostname, status, last_heartbeat_at, registered_at, api_key_hash,
       os, architecture, ip_address, version
  FROM loadtest_fleet
 WHERE true
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name,
    hostname = EXCLUDED.hostname,
    status = EXCLUDED.status,
    last_heartbeat_at = EXCLUDED.last_heartbeat_at,
    api_key_hash = EXCLUDED.api_key_hash,
    os = EXCLUDED.os,
    architecture = EXCLUDED.architecture,
    ip_address = EXCLUDED.ip_address,
    version = EXCLUDED.version,
    retired_at = NULL,
    retired_reason = NULL;
