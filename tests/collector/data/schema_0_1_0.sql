-- The schema of empmix-collector 0.1.0 (collector/empmix_collector/store.py at main before issue 10), verbatim.
CREATE TABLE IF NOT EXISTS projects (
  id INTEGER PRIMARY KEY, token TEXT UNIQUE NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (                 -- append-only, never rewritten
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL,
  event TEXT NOT NULL, distinct_id TEXT NOT NULL,    -- as sent ('' = not tied to a user)
  time_ms INTEGER NOT NULL,                          -- stored time (arrival time if none, clamped if future)
  dedup_time_ms INTEGER NOT NULL,                    -- time as sent, -1 if none: part of the dedup key
  received_ms INTEGER NOT NULL,
  insert_id TEXT NOT NULL, insert_id_generated INTEGER NOT NULL DEFAULT 0,
  properties TEXT NOT NULL);
-- exactly once: (project, $insert_id, event, distinct_id, time as sent). Time leads the key so
-- that inserts append near the right edge of the b-tree instead of touching random pages
-- (random uuids first cost ~3x in write throughput).
CREATE UNIQUE INDEX IF NOT EXISTS ux_events_dedup
  ON events(project_id, dedup_time_ms, insert_id, event, distinct_id);
CREATE INDEX IF NOT EXISTS ix_events_did_time ON events(project_id, distinct_id, time_ms);
-- covering for funnels and retention (event, time, distinct_id, rowid): no table lookups
CREATE INDEX IF NOT EXISTS ix_events_name_time ON events(project_id, event, time_ms, distinct_id);
CREATE TABLE IF NOT EXISTS persons (
  id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL,
  is_identified INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
  properties TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS ix_persons_project ON persons(project_id, id);
CREATE TABLE IF NOT EXISTS person_distinct_ids (    -- the identity map, resolved at query time
  project_id INTEGER NOT NULL, distinct_id TEXT NOT NULL,
  person_id INTEGER NOT NULL, created_at INTEGER NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (project_id, distinct_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_pdi_person ON person_distinct_ids(person_id, seq);
CREATE TABLE IF NOT EXISTS aliases (                -- an alias value is registered once
  project_id INTEGER NOT NULL, alias TEXT NOT NULL, target_distinct_id TEXT NOT NULL,
  created_at INTEGER NOT NULL, PRIMARY KEY (project_id, alias)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS merges (                 -- every merge attempt (rule 12)
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, insert_id TEXT,
  kind TEXT NOT NULL, from_id TEXT NOT NULL, to_id TEXT NOT NULL,
  result TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', detail TEXT,
  time_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL);
-- an identical refused (or no-op) attempt is logged once, however many events repeat it
CREATE UNIQUE INDEX IF NOT EXISTS ux_merges_once
  ON merges(project_id, kind, from_id, to_id, result, reason) WHERE result <> 'merged';
CREATE TABLE IF NOT EXISTS profile_updates (        -- dedup of /engage records carrying $insert_id
  project_id INTEGER NOT NULL, insert_id TEXT NOT NULL, distinct_id TEXT NOT NULL,
  received_ms INTEGER NOT NULL, PRIMARY KEY (project_id, insert_id)) WITHOUT ROWID;
