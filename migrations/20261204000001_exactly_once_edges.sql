-- After a write whose outcome is unknown, LAPOR!'s backend may still commit
-- it (PHP runs on after the gateway answered 504): no lookup and no resend
-- of that step before this instant. Survives dead, Retry and rescue.
ALTER TABLE outbox ADD COLUMN lookup_not_before timestamptz;

-- Copies on LAPOR! of one local complaint or follow-up that we could not
-- prevent (a backend slower than the lookup delay). The first id is the one
-- linked locally; the others are for LAPOR!'s admins to archive.
CREATE TABLE upstream_duplicates (
    id           bigserial PRIMARY KEY,
    complaint_id bigint NOT NULL REFERENCES complaints (id),
    -- NULL: copies of the complaint itself.
    followup_id  bigint REFERENCES followups (id),
    lapor_ids    bigint[] NOT NULL CHECK (cardinality(lapor_ids) >= 2),
    found_at     timestamptz NOT NULL,
    UNIQUE NULLS NOT DISTINCT (complaint_id, followup_id)
);

-- A follow-up's first attempt, for matching it with what LAPOR! lists.
CREATE INDEX outbox_followup_idx ON outbox (followup_id) WHERE followup_id IS NOT NULL;
