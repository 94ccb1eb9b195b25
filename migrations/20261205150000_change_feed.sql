-- The change feed: an append-only table of events, written by triggers in the
-- same transaction as the change they describe, read in (txid, id) order up
-- to the oldest transaction still running, so that a reader never skips an
-- event whose transaction commits after a later one's. Webhook endpoints and
-- their deliveries (one row per event and endpoint) live beside it.

CREATE TABLE events (
    id           bigserial PRIMARY KEY,
    -- The inserting transaction (epoch-extended, never wraps).
    txid         bigint NOT NULL DEFAULT txid_current(),
    type         text NOT NULL CHECK (type IN (
                     'complaint.linked', 'complaint.imported', 'complaint.status_changed',
                     'complaint.disposition_changed', 'followup.received', 'followup.posted',
                     'delivery.dead', 'complaint.conflict', 'sla.due_soon', 'sla.overdue')),
    complaint_id bigint NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    data         jsonb NOT NULL,
    -- Events that must happen once (an SLA deadline): a second insert is a no-op.
    once_key     text UNIQUE
);
CREATE INDEX events_position ON events (txid, id);
CREATE INDEX events_complaint ON events (complaint_id);

-- The cursor of an event: its transaction id and its id, opaque to readers.
CREATE FUNCTION event_cursor(p_txid bigint, p_id bigint) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$ SELECT p_txid::text || '-' || p_id::text $$;

-- Every event wakes listeners with its cursor, when it commits.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('lapor_bridge_events', lapor_bridge.event_cursor(NEW.txid, NEW.id));
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_notify();

-- What every event says of its complaint: never the reporter.
CREATE FUNCTION event_subject(c complaints) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('local_ref', c.local_ref, 'lapor_complaint_id', c.lapor_complaint_id)
$$;

CREATE FUNCTION event_emit(p_type text, p_complaint_id bigint, p_data jsonb) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO lapor_bridge.events (type, complaint_id, data) VALUES (p_type, p_complaint_id, p_data)
$$;

-- Complaints: linked, status, disposition, conflict. The first status and
-- disposition LAPOR! gives a complaint are part of its `complaint.linked`
-- or `complaint.imported` event, not changes.
CREATE FUNCTION complaint_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    subject jsonb := lapor_bridge.event_subject(NEW);
BEGIN
    IF OLD.lapor_complaint_id IS NULL AND NEW.lapor_complaint_id IS NOT NULL
       AND NEW.origin = 'local' THEN
        PERFORM lapor_bridge.event_emit('complaint.linked', NEW.id, subject || jsonb_build_object(
            'tracking_id', NEW.tracking_id,
            'status', NEW.status,
            'lapor_status_name', NEW.lapor_status_name));
    END IF;
    IF OLD.lapor_status_name IS NOT NULL
       AND (OLD.lapor_status_name IS DISTINCT FROM NEW.lapor_status_name
            OR OLD.status IS DISTINCT FROM NEW.status) THEN
        PERFORM lapor_bridge.event_emit('complaint.status_changed', NEW.id, subject || jsonb_build_object(
            'status', NEW.status,
            'lapor_status_name', NEW.lapor_status_name,
            'previous_status', OLD.status,
            'previous_lapor_status_name', OLD.lapor_status_name));
    END IF;
    IF OLD.lapor_disposition_id IS DISTINCT FROM NEW.lapor_disposition_id
       AND NOT (NEW.origin = 'lapor' AND OLD.lapor_disposition_id IS NULL) THEN
        PERFORM lapor_bridge.event_emit('complaint.disposition_changed', NEW.id, subject || jsonb_build_object(
            'disposition_id', NEW.lapor_disposition_id,
            'previous_disposition_id', OLD.lapor_disposition_id));
    END IF;
    IF NEW.conflict_reason IS NOT NULL
       AND OLD.conflict_reason IS DISTINCT FROM NEW.conflict_reason THEN
        PERFORM lapor_bridge.event_emit('complaint.conflict', NEW.id, subject || jsonb_build_object(
            'reason', NEW.conflict_reason));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER complaint_events AFTER UPDATE ON complaints
    FOR EACH ROW
    WHEN (OLD.lapor_complaint_id IS DISTINCT FROM NEW.lapor_complaint_id
          OR OLD.lapor_status_name IS DISTINCT FROM NEW.lapor_status_name
          OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.lapor_disposition_id IS DISTINCT FROM NEW.lapor_disposition_id
          OR OLD.conflict_reason IS DISTINCT FROM NEW.conflict_reason)
    EXECUTE FUNCTION complaint_events();

-- A complaint imported from LAPOR!'s inbox: written when its transaction
-- commits (a deferred trigger), so that it carries the status and
-- disposition the same transaction read.
CREATE FUNCTION complaint_imported_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c lapor_bridge.complaints;
BEGIN
    SELECT * INTO c FROM lapor_bridge.complaints WHERE id = NEW.id;
    IF FOUND THEN
        PERFORM lapor_bridge.event_emit('complaint.imported', c.id,
            lapor_bridge.event_subject(c) || jsonb_build_object(
                'tracking_id', c.tracking_id,
                'status', c.status,
                'lapor_status_name', c.lapor_status_name,
                'disposition_id', c.lapor_disposition_id));
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER complaint_imported_event AFTER INSERT ON complaints
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.origin = 'lapor')
    EXECUTE FUNCTION complaint_imported_event();

-- Follow-ups: received from LAPOR! (secret ones without their text), ours
-- posted (linked to their LAPOR! id).
CREATE FUNCTION followup_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c lapor_bridge.complaints;
BEGIN
    SELECT * INTO c FROM lapor_bridge.complaints WHERE id = NEW.complaint_id;
    PERFORM lapor_bridge.event_emit(
        CASE WHEN TG_OP = 'INSERT' THEN 'followup.received' ELSE 'followup.posted' END,
        NEW.complaint_id,
        lapor_bridge.event_subject(c) || jsonb_build_object(
            'followup_id', NEW.id,
            'lapor_followup_id', NEW.lapor_followup_id,
            'institution_id', NEW.institution_id,
            'is_secret', NEW.is_secret,
            'content', CASE WHEN NEW.is_secret THEN NULL ELSE NEW.content END,
            'created_at', coalesce(NEW.lapor_created_at, NEW.created_at)));
    RETURN NULL;
END
$$;
CREATE TRIGGER followup_received AFTER INSERT ON followups
    FOR EACH ROW WHEN (NEW.origin = 'lapor')
    EXECUTE FUNCTION followup_events();
CREATE TRIGGER followup_posted AFTER UPDATE ON followups
    FOR EACH ROW
    WHEN (NEW.origin = 'local' AND OLD.lapor_followup_id IS NULL
          AND NEW.lapor_followup_id IS NOT NULL)
    EXECUTE FUNCTION followup_events();

-- An outbox step dead-lettered. LAPOR!'s message stays out: it can echo
-- what was submitted, and events are kept for good (the reason is on the
-- step, for operators).
CREATE FUNCTION outbox_dead_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c lapor_bridge.complaints;
BEGIN
    SELECT * INTO c FROM lapor_bridge.complaints WHERE id = NEW.complaint_id;
    PERFORM lapor_bridge.event_emit('delivery.dead', NEW.complaint_id,
        lapor_bridge.event_subject(c) || jsonb_build_object(
            'outbox_id', NEW.id,
            'step', NEW.step,
            'followup_id', NEW.followup_id,
            'attempts', NEW.attempts));
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_dead_event AFTER UPDATE ON outbox
    FOR EACH ROW WHEN (NEW.state = 'dead' AND OLD.state IS DISTINCT FROM 'dead')
    EXECUTE FUNCTION outbox_dead_event();

-- For applications that share the database: the events every reader may
-- take, in order (`ORDER BY txid, seq`), resumable from the last
-- (txid, seq) read. Events of transactions still running, and of every
-- transaction that started writing after the oldest of them, show once
-- those commit.
CREATE VIEW changes AS
SELECT event_cursor(e.txid, e.id) AS cursor, 'evt_' || e.id AS id, e.type, e.at, e.data,
       e.complaint_id, e.txid, e.id AS seq
  FROM events e
 WHERE e.txid < txid_snapshot_xmin(txid_current_snapshot());

-- Webhook endpoints, from the configuration (by URL; the secret stays
-- there). `after_*`: the position up to which events were fanned out into
-- deliveries. A `410 Gone` disables an endpoint until an operator enables it.
CREATE TABLE webhook_endpoints (
    id              bigserial PRIMARY KEY,
    url             text NOT NULL UNIQUE,
    events          text[],
    after_txid      bigint NOT NULL,
    after_id        bigint NOT NULL,
    disabled_at     timestamptz,
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per event and endpoint: the webhook's own queue, claimed like the
-- outbox (lease, fence), in feed order per complaint per endpoint.
CREATE TABLE webhook_deliveries (
    id               bigserial PRIMARY KEY,
    endpoint_id      bigint NOT NULL REFERENCES webhook_endpoints (id),
    event_id         bigint NOT NULL REFERENCES events (id),
    event_txid       bigint NOT NULL,
    complaint_id     bigint NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'running', 'done', 'dead', 'discarded')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    fence            bigint NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries
    (endpoint_id, complaint_id, event_txid, event_id)
    WHERE state IN ('pending', 'running', 'dead');
CREATE INDEX webhook_deliveries_running ON webhook_deliveries (lease_expires_at)
    WHERE state = 'running';

-- One row per attempt, never updated.
CREATE TABLE webhook_attempts (
    id          bigserial PRIMARY KEY,
    delivery_id bigint NOT NULL,
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms integer NOT NULL,
    -- NULL: no HTTP answer (connection refused, timeout).
    http_status integer,
    message     text,
    outcome     text NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);
