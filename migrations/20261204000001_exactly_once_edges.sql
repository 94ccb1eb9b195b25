-- After a write whose outcome is unknown, LAPOR!'s backend may still commit
-- it (PHP runs on after the gateway answered 504): no lookup and no resend
-- of that step before this instant. Survives dead, Retry and rescue, and
-- stays after the step is done (a copy that lands later is told from a
-- follow-up somebody else posted by it).
ALTER TABLE outbox ADD COLUMN lookup_not_before timestamptz;
-- When a write of this step first left for LAPOR! (not merely claimed): an
-- upstream follow-up created before it cannot be this one.
ALTER TABLE outbox ADD COLUMN first_sent_at timestamptz;

-- Copies on LAPOR! of one local complaint or follow-up that we could not
-- prevent (a backend slower than the lookup delay). The first id is the one
-- linked locally; the others are for LAPOR!'s admins to archive.
CREATE TABLE upstream_duplicates (
    id           bigserial PRIMARY KEY,
    complaint_id bigint NOT NULL REFERENCES complaints (id),
    -- NULL: copies of the complaint itself.
    followup_id  bigint REFERENCES followups (id),
    lapor_ids    bigint[] NOT NULL CHECK (cardinality(lapor_ids) >= 2),
    found_at     timestamptz NOT NULL
);
-- One row per local item (PostgreSQL 11 has no NULLS NOT DISTINCT).
CREATE UNIQUE INDEX upstream_duplicates_item_idx
    ON upstream_duplicates (complaint_id, (coalesce(followup_id, 0)));

-- A follow-up's first attempt, for matching it with what LAPOR! lists.
CREATE INDEX outbox_followup_idx ON outbox (followup_id) WHERE followup_id IS NOT NULL;
