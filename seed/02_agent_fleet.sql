-- The agent-storm fleet: agents ag-loadtest-00001 .. ag-loadtest-<fleet> (certctl's 02_agent_fleet.sql).
--
--   psql "$CERTCTL_DATABASE_URL" -v fleet=5000 -f seed/02_agent_fleet.sql   (without -v: 5000)
--
-- Runs after certctl-server has created the `agents` table (or after 00_agents_schema.sql).
-- Same rows as certctl's seed, for every column; agent g (1-based) gets:
--   id         ag-loadtest-<g>, name loadtest-agent-<g>, hostname loadtest-<g>.fleet.example.test,
--              <g> zero-padded to 5 digits, numbers of 6 digits or more in full
--   status     Online, last_heartbeat_at now - (g mod 60) s (staggered: the reaper leaves them alone)
--   registered_at now - (g mod 90 + 1) days, api_key_hash loadtest_no_auth, version 2.1.0
--   os         windows when g mod 10 = 0, darwin when 1, else linux
--   architecture arm64 when g mod 5 = 0, else amd64; ip_address 10.42.(g div 256 mod 256).(g mod 256)
--
-- Differences from certctl's file, all on re-runs:
--   - An existing ag-loadtest-* row is returned to the seed's clean state (ON CONFLICT DO UPDATE):
--     Online, not retired, staggered heartbeat, seed name/hostname/metadata/api_key_hash.
--     registered_at is kept: a re-seed is not a new registration.
--   - `name` is UNIQUE. If another agent (any other id) already holds one of the seed's names,
--     the script stops with an error naming those agents and writes nothing.
--   - Rows beyond <fleet> from an earlier, larger seed are left as they are; nothing is deleted.
-- The upsert is agent_fleet_upsert.sql, included from this file's directory (\ir): the one the
-- Python seeders run too.
-- One transaction; ends with a NOTICE counting the ag-loadtest-% rows. PostgreSQL 15 and 16.

\set ON_ERROR_STOP on
\if :{?fleet}
\else
    \set fleet 5000
\endif

BEGIN;

CREATE TEMP TABLE loadtest_fleet ON COMMIT DROP AS
SELECT
    'ag-loadtest-' || n.padded AS id,
    'loadtest-agent-' || n.padded AS name,
    'loadtest-' || n.padded || '.fleet.example.test' AS hostname,
    'Online' AS status,
    now() - make_interval(secs => g % 60) AS last_heartbeat_at,
    now() - make_interval(days => g % 90 + 1) AS registered_at,
    'loadtest_no_auth' AS api_key_hash,
    CASE g % 10 WHEN 0 THEN 'windows' WHEN 1 THEN 'darwin' ELSE 'linux' END AS os,
    CASE WHEN g % 5 = 0 THEN 'arm64' ELSE 'amd64' END AS architecture,
    '10.42.' || ((g / 256) % 256) || '.' || (g % 256) AS ip_address,
    '2.1.0' AS version
FROM generate_series(1, :'fleet'::integer) AS g,
    LATERAL (SELECT lpad(g::text, greatest(5, length(g::text)), '0') AS padded) AS n;

DO $$
DECLARE
    taken integer;
    examples text;
BEGIN
    SELECT count(*),
           string_agg(format('%s (held by %s)', s.name, s.holder), ', ' ORDER BY s.nth) FILTER (WHERE s.nth <= 5)
      INTO taken, examples
      FROM (SELECT f.name, a.id AS holder, row_number() OVER (ORDER BY f.id) AS nth
              FROM loadtest_fleet AS f
              JOIN agents AS a ON a.name = f.name AND a.id <> f.id) AS s;
    IF taken > 0 THEN
        RAISE EXCEPTION '% load-test agent name(s) already used by other agents: %', taken, examples
            USING HINT = 'rename or remove those agents, then rerun; nothing was written';
    END IF;
END $$;

\ir agent_fleet_upsert.sql

DO $$
DECLARE
    agent_count integer;
BEGIN
    SELECT count(*) INTO agent_count FROM agents WHERE id LIKE 'ag-loadtest-%';
    RAISE NOTICE 'agent-storm seed: % agents rows present (ag-loadtest-*)', agent_count;
END $$;

COMMIT;
