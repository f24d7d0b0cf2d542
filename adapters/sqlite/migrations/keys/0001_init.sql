-- Key store schema, version 1: one AES-256 key per member. A destroyed key
-- leaves a row with a NULL key, so that it is never created again.
CREATE TABLE member_keys (
    member_id    TEXT PRIMARY KEY,
    key          BLOB,
    destroyed_at INTEGER
) WITHOUT ROWID;
