-- The full-text index is brought up to date when it is used (`text_search`, `check`), not on
-- every write: recall ranks with the engine's derived index unless `derived_index` is off, so
-- most stores never query it, and indexing every memory as it was written cost about a seventh
-- of a learn. The index holds exactly the memories whose rid is at most `through`; a forget
-- removes an indexed memory's tokens as before (secure-delete) and lowers `through` to the
-- largest rid left, so a rid SQLite hands out again is never taken for indexed.
CREATE TABLE fts_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    through INTEGER NOT NULL
);
-- Every memory written so far was indexed when it was written.
INSERT INTO fts_state (id, through) SELECT 1, coalesce(max(rid), 0) FROM memories;
