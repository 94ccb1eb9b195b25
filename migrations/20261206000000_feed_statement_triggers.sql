-- The change feed's busiest triggers run once per statement instead of once
-- per row: the outcome writer links a whole batch of created complaints in
-- one UPDATE, and a trigger per row (a PL/pgSQL call, an SQL function
-- planned for each event, a NOTIFY per event) was a fifth of PostgreSQL's
-- time in a drain. The events are the same, in the same order within a
-- complaint (linked, status, disposition, conflict), written by one INSERT
-- from the statement's transition tables.

DROP TRIGGER complaint_events ON complaints;
DROP FUNCTION complaint_events();

CREATE FUNCTION complaint_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lapor_bridge.events (type, complaint_id, data)
    SELECT e.type, e.complaint_id, e.data
      FROM (
        SELECT n.id AS complaint_id, 1 AS ord, 'complaint.linked' AS type,
               lapor_bridge.event_subject(n) || jsonb_build_object(
                   'tracking_id', n.tracking_id,
                   'status', n.status,
                   'lapor_status_name', n.lapor_status_name) AS data
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE o.lapor_complaint_id IS NULL AND n.lapor_complaint_id IS NOT NULL
           AND n.origin = 'local'
        UNION ALL
        SELECT n.id, 2, 'complaint.status_changed',
               lapor_bridge.event_subject(n) || jsonb_build_object(
                   'status', n.status,
                   'lapor_status_name', n.lapor_status_name,
                   'previous_status', o.status,
                   'previous_lapor_status_name', o.lapor_status_name)
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE o.lapor_status_name IS NOT NULL
           AND (o.lapor_status_name IS DISTINCT FROM n.lapor_status_name
                OR o.status IS DISTINCT FROM n.status)
        UNION ALL
        SELECT n.id, 3, 'complaint.disposition_changed',
               lapor_bridge.event_subject(n) || jsonb_build_object(
                   'disposition_id', n.lapor_disposition_id,
                   'previous_disposition_id', o.lapor_disposition_id)
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE o.lapor_disposition_id IS DISTINCT FROM n.lapor_disposition_id
           AND NOT (n.origin = 'lapor' AND o.lapor_disposition_id IS NULL)
        UNION ALL
        SELECT n.id, 4, 'complaint.conflict',
               lapor_bridge.event_subject(n) || jsonb_build_object('reason', n.conflict_reason)
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE n.conflict_reason IS NOT NULL
           AND o.conflict_reason IS DISTINCT FROM n.conflict_reason
      ) e
     ORDER BY e.complaint_id, e.ord;
    RETURN NULL;
END
$$;
CREATE TRIGGER complaint_events AFTER UPDATE ON complaints
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_events();

-- One notification per statement that wrote events, carrying the newest
-- one's cursor: listeners read from their own cursor when woken.
DROP TRIGGER events_notify ON events;
DROP FUNCTION events_notify();

CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    newest text;
BEGIN
    SELECT lapor_bridge.event_cursor(e.txid, e.id) INTO newest
      FROM new_events e ORDER BY e.txid DESC, e.id DESC LIMIT 1;
    IF newest IS NOT NULL THEN
        PERFORM pg_notify('lapor_bridge_events', newest);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
