-- Event store schema, version 1.
--
-- streams: one row per stream, with an integer id so that events refer to
-- their stream by a small key, and the stream's tip (last revision and last
-- hash) so that an append needs no read of the events table.
CREATE TABLE streams (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    last_revision INTEGER NOT NULL,
    last_hash     BLOB    NOT NULL
);

-- events: keyed by the global position (the rowid), so appends go to the
-- right-most leaf of the table B-tree. UNIQUE(stream_id, revision) is the one
-- secondary index: appends of one stream touch one leaf of it. There is no
-- index on the (random) event id: a retried append is recognised by
-- comparing the ids stored at the revisions it asks for.
--
-- meta holds the rest of the envelope in a compact binary encoding (see
-- codec.go): version byte 1, then id, type, occurred_at, recorded_at, actor,
-- correlation_id, causation_id, prev_hash, hash. Times are Unix nanoseconds.
CREATE TABLE events (
    position  INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL,
    revision  INTEGER NOT NULL,
    meta      BLOB    NOT NULL,
    data      BLOB    NOT NULL,
    UNIQUE (stream_id, revision)
);
