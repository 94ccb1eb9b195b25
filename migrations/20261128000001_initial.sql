-- lapor-bridge schema. Every object lives in schema lapor_bridge; the
-- migrator runs with search_path = lapor_bridge.

CREATE TABLE complaints (
    id                      bigserial PRIMARY KEY,
    local_ref               text NOT NULL UNIQUE,
    origin                  text NOT NULL CHECK (origin IN ('local', 'lapor')),
    -- The submitted document (attachments by digest), for idempotent resubmits.
    submit_doc              jsonb,
    title                   text NOT NULL,
    content                 text NOT NULL,
    category_id             bigint,
    disposition_id          bigint,
    location_id             bigint,
    date_of_incident        date,
    is_anonymous            boolean NOT NULL DEFAULT false,
    is_secret               boolean NOT NULL DEFAULT false,
    reporter                jsonb,
    -- LAPOR! owns these.
    lapor_complaint_id      bigint UNIQUE,
    tracking_id             text,
    lapor_status_name       text,
    status                  text,
    lapor_disposition_id    bigint,
    lapor_created_at        timestamptz,
    lapor_updated_at        timestamptz,
    dispositioned_at        timestamptz,
    first_followup_by_us_at timestamptz,
    last_followup_at        timestamptz,
    closed_at               timestamptz,
    -- Set when an operator must decide (true conflict, unknown status name).
    conflict_reason         text,
    last_error              text,
    last_synced_at          timestamptz,
    next_seq                integer NOT NULL DEFAULT 1,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX complaints_open_idx ON complaints (id) WHERE closed_at IS NULL;

CREATE TABLE followups (
    id                bigserial PRIMARY KEY,
    complaint_id      bigint NOT NULL REFERENCES complaints (id),
    origin            text NOT NULL CHECK (origin IN ('local', 'lapor')),
    content           text NOT NULL,
    is_secret         boolean NOT NULL DEFAULT false,
    -- NULL: written by the reporter.
    institution_id    bigint,
    lapor_followup_id bigint,
    lapor_created_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (complaint_id, lapor_followup_id)
);
CREATE INDEX followups_complaint_idx ON followups (complaint_id);

CREATE TABLE attachments (
    id            bigserial PRIMARY KEY,
    complaint_id  bigint NOT NULL REFERENCES complaints (id),
    file_name     text NOT NULL,
    content       bytea NOT NULL,
    lapor_file_id bigint
);
CREATE INDEX attachments_complaint_idx ON attachments (complaint_id);

-- The hot queue: one row per step to deliver. Finished rows are pruned after
-- a retention period; outbox_attempts and audit_log keep the history.
CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    complaint_id     bigint NOT NULL REFERENCES complaints (id),
    seq              integer NOT NULL,
    step             text NOT NULL CHECK (step IN ('upload', 'create', 'followup', 'forward')),
    followup_id      bigint REFERENCES followups (id),
    payload          jsonb NOT NULL DEFAULT '{}',
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'running', 'done', 'dead', 'discarded')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    -- Fencing token: bumped by every claim and rescue; a completion must
    -- present the value it claimed with.
    fence            bigint NOT NULL DEFAULT 0,
    -- The last write may have been applied upstream: look it up first.
    needs_lookup     boolean NOT NULL DEFAULT false,
    first_attempt_at timestamptz,
    waiting_reason   text,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    UNIQUE (complaint_id, seq)
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_lease_idx ON outbox (lease_expires_at) WHERE state = 'running';
CREATE INDEX outbox_finished_idx ON outbox (finished_at) WHERE state IN ('done', 'discarded');

-- One row per delivery attempt, never updated.
CREATE TABLE outbox_attempts (
    id           bigserial PRIMARY KEY,
    outbox_id    bigint NOT NULL,
    complaint_id bigint NOT NULL REFERENCES complaints (id),
    step         text NOT NULL,
    attempt      integer NOT NULL,
    started_at   timestamptz NOT NULL,
    duration_ms  integer NOT NULL,
    http_status  integer,
    failure_kind text,
    message      text,
    outcome      text NOT NULL
);
CREATE INDEX outbox_attempts_complaint_idx ON outbox_attempts (complaint_id, id);

-- Append-only, hash-chained audit log.
CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL,
    actor     text NOT NULL,
    local_ref text,
    action    text NOT NULL,
    before    jsonb,
    after     jsonb,
    prev_hash text NOT NULL,
    hash      text NOT NULL
);
CREATE INDEX audit_log_ref_idx ON audit_log (local_ref, id);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- The canonical encoding that each entry's hash covers. Changing it breaks
-- every existing chain: never edit, only add a new version.
CREATE FUNCTION audit_canonical(
    p_prev_hash text, p_id bigint, p_at timestamptz, p_actor text, p_local_ref text,
    p_action text, p_before jsonb, p_after jsonb
) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_array(
        p_prev_hash, p_id,
        to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        p_actor, p_local_ref, p_action, p_before, p_after
    )::text
$$;

CREATE FUNCTION audit_hash(
    p_prev_hash text, p_id bigint, p_at timestamptz, p_actor text, p_local_ref text,
    p_action text, p_before jsonb, p_after jsonb
) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(
        lapor_bridge.audit_canonical(p_prev_hash, p_id, p_at, p_actor, p_local_ref,
                                     p_action, p_before, p_after), 'UTF8')), 'hex')
$$;

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;

-- Appends one entry, chained to the last. Serialised by a transaction-level
-- advisory lock so that concurrent writers never fork the chain.
CREATE FUNCTION audit_append(
    p_at timestamptz, p_actor text, p_local_ref text, p_action text,
    p_before jsonb, p_after jsonb
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_prev text;
    v_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7305872101);
    SELECT hash INTO v_prev FROM lapor_bridge.audit_log ORDER BY id DESC LIMIT 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    v_id := nextval(pg_get_serial_sequence('lapor_bridge.audit_log', 'id'));
    INSERT INTO lapor_bridge.audit_log (id, at, actor, local_ref, action, before, after, prev_hash, hash)
    VALUES (v_id, p_at, p_actor, p_local_ref, p_action, p_before, p_after, v_prev,
            lapor_bridge.audit_hash(v_prev, v_id, p_at, p_actor, p_local_ref, p_action, p_before, p_after));
    RETURN v_id;
END
$$;

-- Cursors of incremental pulls.
CREATE TABLE sync_cursors (
    name       text PRIMARY KEY,
    value      timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every pull and reconciliation run with its summary.
CREATE TABLE job_runs (
    id          bigserial PRIMARY KEY,
    job         text NOT NULL,
    trigger     text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    ok          boolean,
    summary     jsonb,
    error       text
);
CREATE INDEX job_runs_job_idx ON job_runs (job, id DESC);
