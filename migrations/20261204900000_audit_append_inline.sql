-- The append functions compute each entry's hash with PostgreSQL's built-in
-- functions in their own body. Calling lapor_bridge.audit_hash (a SQL
-- function that calls another) from PL/pgSQL parsed and planned
-- audit_canonical's body again for every entry, most of the chain's cost
-- under load. The encoding is audit_canonical's, version 1, unchanged:
-- every existing hash stays valid (`audit verify` recomputes it the same
-- way). The sequence is resolved once per call, not once per entry.
-- Attributes are restated: CREATE OR REPLACE resets them (ownership and
-- grants stay).
CREATE OR REPLACE FUNCTION audit_append(
    p_at timestamptz, p_actor text, p_local_ref text, p_action text,
    p_before jsonb, p_after jsonb
) RETURNS bigint LANGUAGE plpgsql
SECURITY DEFINER SET search_path = lapor_bridge, pg_temp SET lock_timeout = '15s'
AS $$
DECLARE
    v_prev text;
    v_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7305872101);
    SELECT hash INTO v_prev FROM lapor_bridge.audit_log ORDER BY id DESC LIMIT 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    v_id := nextval('lapor_bridge.audit_log_id_seq'::regclass);
    INSERT INTO lapor_bridge.audit_log (id, at, actor, local_ref, action, before, after, prev_hash, hash)
    VALUES (v_id, p_at, p_actor, p_local_ref, p_action, p_before, p_after, v_prev,
            pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
                pg_catalog.jsonb_build_array(
                    v_prev, v_id,
                    pg_catalog.to_char(pg_catalog.timezone('UTC', p_at),
                                       'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                    p_actor, p_local_ref, p_action, p_before, p_after)::text,
                'UTF8')), 'hex'));
    RETURN v_id;
END
$$;

CREATE OR REPLACE FUNCTION audit_append_many(
    p_at timestamptz[], p_actor text[], p_local_ref text[], p_action text[],
    p_before jsonb[], p_after jsonb[]
) RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = lapor_bridge, pg_temp SET lock_timeout = '15s'
AS $$
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
        v_id := nextval('lapor_bridge.audit_log_id_seq'::regclass);
        v_hash := pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
            pg_catalog.jsonb_build_array(
                v_prev, v_id,
                pg_catalog.to_char(pg_catalog.timezone('UTC', p_at[i]),
                                   'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                p_actor[i], p_local_ref[i], p_action[i], p_before[i], p_after[i])::text,
            'UTF8')), 'hex');
        INSERT INTO lapor_bridge.audit_log (id, at, actor, local_ref, action, before, after, prev_hash, hash)
        VALUES (v_id, p_at[i], p_actor[i], p_local_ref[i], p_action[i], p_before[i], p_after[i], v_prev, v_hash);
        v_prev := v_hash;
    END LOOP;
END
$$;
