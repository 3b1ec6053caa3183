-- Forgotten memories leave the full-text index at once. A contentless_delete table records a
-- deletion as a tombstone and keeps the row's tokens in its segments until they are merged, so
-- a forgotten memory's words stayed in the file. The index is rebuilt as a plain contentless
-- table with FTS5's secure-delete option: a deletion (the 'delete' command, given the indexed
-- text from memories) removes the row's tokens from the segments.
DROP TABLE memories_fts;
CREATE VIRTUAL TABLE memories_fts USING fts5(
    content,
    content = '',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO memories_fts (memories_fts, rank) VALUES ('secure-delete', 1);
INSERT INTO memories_fts (rowid, content) SELECT rid, content FROM memories;
