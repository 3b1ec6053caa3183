-- The identity of the imported turn a memory came from (`TURN_KEY/ROLE`), so that an import
-- run again skips what an earlier run stored. NULL for memories learned any other way.
ALTER TABLE memories ADD COLUMN import_key TEXT;
CREATE UNIQUE INDEX memories_import_key ON memories (tenant, import_key) WHERE import_key IS NOT NULL;
