-- The change feed's complaint trigger on the drain's path, cheaper: it
-- inserts its events itself instead of calling `event_emit` and
-- `event_subject`, SQL functions that PostgreSQL parses and plans again on
-- every call (with the PL/pgSQL call around them, a fifth of PostgreSQL's
-- time in a drain went to the per-row triggers). PL/pgSQL keeps the plan
-- of its own INSERT for the session. The trigger stays per row with its
-- WHEN filter, so an update that changes none of the fields it describes
-- (last_synced_at, next_seq, the sealed reporter) costs nothing; the events
-- are the same, in the same order within a complaint (linked, status,
-- disposition, conflict), with the same subject as `event_subject` gives.

CREATE OR REPLACE FUNCTION complaint_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    subject jsonb := jsonb_build_object('local_ref', NEW.local_ref,
                                        'lapor_complaint_id', NEW.lapor_complaint_id);
BEGIN
    IF OLD.lapor_complaint_id IS NULL AND NEW.lapor_complaint_id IS NOT NULL
       AND NEW.origin = 'local' THEN
        INSERT INTO lapor_bridge.events (type, complaint_id, data)
        VALUES ('complaint.linked', NEW.id, subject || jsonb_build_object(
            'tracking_id', NEW.tracking_id,
            'status', NEW.status,
            'lapor_status_name', NEW.lapor_status_name));
    END IF;
    IF OLD.lapor_status_name IS NOT NULL
       AND (OLD.lapor_status_name IS DISTINCT FROM NEW.lapor_status_name
            OR OLD.status IS DISTINCT FROM NEW.status) THEN
        INSERT INTO lapor_bridge.events (type, complaint_id, data)
        VALUES ('complaint.status_changed', NEW.id, subject || jsonb_build_object(
            'status', NEW.status,
            'lapor_status_name', NEW.lapor_status_name,
            'previous_status', OLD.status,
            'previous_lapor_status_name', OLD.lapor_status_name));
    END IF;
    IF OLD.lapor_disposition_id IS DISTINCT FROM NEW.lapor_disposition_id
       AND NOT (NEW.origin = 'lapor' AND OLD.lapor_disposition_id IS NULL) THEN
        INSERT INTO lapor_bridge.events (type, complaint_id, data)
        VALUES ('complaint.disposition_changed', NEW.id, subject || jsonb_build_object(
            'disposition_id', NEW.lapor_disposition_id,
            'previous_disposition_id', OLD.lapor_disposition_id));
    END IF;
    IF NEW.conflict_reason IS NOT NULL
       AND OLD.conflict_reason IS DISTINCT FROM NEW.conflict_reason THEN
        INSERT INTO lapor_bridge.events (type, complaint_id, data)
        VALUES ('complaint.conflict', NEW.id, subject || jsonb_build_object(
            'reason', NEW.conflict_reason));
    END IF;
    RETURN NULL;
END
$$;

