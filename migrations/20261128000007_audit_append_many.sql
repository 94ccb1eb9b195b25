-- Appends several entries in order under one lock, chained like
-- audit_append: for writers that batch (the outbox's outcome writer).
CREATE FUNCTION audit_append_many(
    p_at timestamptz[], p_actor text[], p_local_ref text[], p_action text[],
    p_before jsonb[], p_after jsonb[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_prev text;
    v_hash text;
    v_id bigint;
    i integer;
BEGIN
    IF coalesce(array_length(p_action, 1), 0) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(7305872101);
    SELECT hash INTO v_prev FROM lapor_bridge.audit_log ORDER BY id DESC LIMIT 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    FOR i IN 1 .. array_length(p_action, 1) LOOP
        v_id := nextval(pg_get_serial_sequence('lapor_bridge.audit_log', 'id'));
        v_hash := lapor_bridge.audit_hash(v_prev, v_id, p_at[i], p_actor[i], p_local_ref[i],
                                          p_action[i], p_before[i], p_after[i]);
        INSERT INTO lapor_bridge.audit_log (id, at, actor, local_ref, action, before, after, prev_hash, hash)
        VALUES (v_id, p_at[i], p_actor[i], p_local_ref[i], p_action[i], p_before[i], p_after[i], v_prev, v_hash);
        v_prev := v_hash;
    END LOOP;
END
$$;
