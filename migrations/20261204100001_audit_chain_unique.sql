-- The chain cannot fork: every entry names a different predecessor. The
-- append functions serialise writers with a lock, but a caller in a
-- REPEATABLE READ transaction reads the head from a snapshot taken before
-- that lock, and would chain to a stale head; the unique index refuses it.
CREATE UNIQUE INDEX audit_log_prev_hash_idx ON audit_log (prev_hash);

-- A caller that holds the chain's lock and stalls cannot stop every other
-- writer for good: they give up after a while and retry.
ALTER FUNCTION audit_append(timestamptz, text, text, text, jsonb, jsonb)
    SET lock_timeout = '15s';
ALTER FUNCTION audit_append_many(timestamptz[], text[], text[], text[], jsonb[], jsonb[])
    SET lock_timeout = '15s';
