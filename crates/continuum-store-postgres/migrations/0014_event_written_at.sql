-- When an event was written, where that is not its own time: events of imported history keep
-- the conversation's time (timelines place them there) and a node's copy of another node's
-- events keeps the origin's; the log's retention counts from the write. NULL: written at `at`.
ALTER TABLE events ADD COLUMN written_at BIGINT;
