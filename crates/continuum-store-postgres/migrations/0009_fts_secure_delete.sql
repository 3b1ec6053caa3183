-- Nothing to change here: PostgreSQL keeps a memory's text and its tsvector in the memory's
-- row, deleted with it (the space is reclaimed by VACUUM). The migration keeps both stores'
-- schema versions in step.
SELECT 1;
