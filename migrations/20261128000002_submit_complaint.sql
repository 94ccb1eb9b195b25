-- lapor_bridge.submit_complaint(doc jsonb): the one implementation of
-- "submit a local complaint", for the HTTP API and for applications sharing
-- the database. It runs in the caller's transaction: the complaint and its
-- outbox rows commit or roll back with it.
--
-- Errors: SQLSTATE 'LB422' with DETAIL a JSON object {field: [messages]};
--         SQLSTATE 'LB409' when local_ref exists with another document.
-- Returns {"local_ref": ..., "created": true|false}.
-- It takes no lock beyond its own rows, so a long caller transaction blocks
-- nobody else; the audit log records the complaint when the bridge delivers it.

CREATE FUNCTION submit_errors_add(errors jsonb, field text, message text)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT errors || jsonb_build_object(field,
        coalesce(errors -> field, '[]'::jsonb) || to_jsonb(message))
$$;

CREATE FUNCTION submit_is_int(v jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT v IS NOT NULL AND jsonb_typeof(v) = 'number'
       AND (v #>> '{}') ~ '^-?[0-9]{1,18}$'
$$;

CREATE FUNCTION submit_complaint(doc jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    errors      jsonb := '{}';
    allowed     text[] := ARRAY['local_ref', 'title', 'content', 'category_id',
                    'disposition_id', 'location_id', 'date_of_incident', 'is_anonymous',
                    'is_secret', 'reporter', 'attachments'];
    k           text;
    v_ref       text;
    v_title     text;
    v_content   text;
    v_date      date;
    v_flag      text;
    v_att       jsonb;
    v_bytes     bytea;
    v_stored    jsonb;
    v_existing  jsonb;
    v_id        bigint;
    v_seq       integer := 1;
    i           integer := 0;
BEGIN
    IF doc IS NULL OR jsonb_typeof(doc) <> 'object' THEN
        RAISE EXCEPTION 'invalid complaint' USING ERRCODE = 'LB422',
            DETAIL = '{"body": ["must be a JSON object"]}';
    END IF;

    FOR k IN SELECT jsonb_object_keys(doc) LOOP
        IF NOT k = ANY (allowed) THEN
            errors := lapor_bridge.submit_errors_add(errors, k, 'unknown field');
        END IF;
    END LOOP;

    -- local_ref
    IF jsonb_typeof(doc -> 'local_ref') IS DISTINCT FROM 'string' THEN
        errors := lapor_bridge.submit_errors_add(errors, 'local_ref', 'required string');
    ELSE
        v_ref := doc ->> 'local_ref';
        IF v_ref !~ '^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$' THEN
            errors := lapor_bridge.submit_errors_add(errors, 'local_ref',
                '1-64 characters: letters, digits, . _ / -');
        ELSIF v_ref LIKE 'LAPOR-%' THEN
            errors := lapor_bridge.submit_errors_add(errors, 'local_ref',
                'the prefix LAPOR- is reserved for complaints from LAPOR!');
        END IF;
    END IF;

    -- title and content, as LAPOR! checks them
    IF jsonb_typeof(doc -> 'title') IS DISTINCT FROM 'string' THEN
        errors := lapor_bridge.submit_errors_add(errors, 'title', 'required string');
    ELSE
        v_title := btrim(doc ->> 'title');
        IF char_length(v_title) < 1 OR char_length(v_title) > 150 THEN
            errors := lapor_bridge.submit_errors_add(errors, 'title', 'must be 1-150 characters');
        END IF;
    END IF;
    IF jsonb_typeof(doc -> 'content') IS DISTINCT FROM 'string' THEN
        errors := lapor_bridge.submit_errors_add(errors, 'content', 'required string');
    ELSE
        v_content := btrim(doc ->> 'content');
        IF char_length(v_content) < 10 OR char_length(v_content) > 20000 THEN
            errors := lapor_bridge.submit_errors_add(errors, 'content', 'must be 10-20000 characters');
        END IF;
    END IF;

    IF NOT lapor_bridge.submit_is_int(doc -> 'category_id') THEN
        errors := lapor_bridge.submit_errors_add(errors, 'category_id', 'required integer');
    END IF;
    IF doc ? 'disposition_id' AND jsonb_typeof(doc -> 'disposition_id') <> 'null'
       AND NOT lapor_bridge.submit_is_int(doc -> 'disposition_id') THEN
        errors := lapor_bridge.submit_errors_add(errors, 'disposition_id', 'must be an integer');
    END IF;
    IF doc ? 'location_id' AND jsonb_typeof(doc -> 'location_id') <> 'null'
       AND NOT lapor_bridge.submit_is_int(doc -> 'location_id') THEN
        errors := lapor_bridge.submit_errors_add(errors, 'location_id', 'must be an integer');
    END IF;

    IF jsonb_typeof(doc -> 'date_of_incident') IS DISTINCT FROM 'string'
       OR (doc ->> 'date_of_incident') !~ '^\d{4}-\d{2}-\d{2}$' THEN
        errors := lapor_bridge.submit_errors_add(errors, 'date_of_incident', 'required date YYYY-MM-DD');
    ELSE
        BEGIN
            v_date := to_date(doc ->> 'date_of_incident', 'YYYY-MM-DD');
            IF to_char(v_date, 'YYYY-MM-DD') <> doc ->> 'date_of_incident' THEN
                errors := lapor_bridge.submit_errors_add(errors, 'date_of_incident', 'not a calendar date');
            END IF;
        EXCEPTION WHEN OTHERS THEN
            errors := lapor_bridge.submit_errors_add(errors, 'date_of_incident', 'not a calendar date');
        END;
    END IF;

    FOREACH v_flag IN ARRAY ARRAY['is_anonymous', 'is_secret'] LOOP
        IF doc ? v_flag AND jsonb_typeof(doc -> v_flag) <> 'boolean'
           AND NOT (doc -> v_flag) IN ('0'::jsonb, '1'::jsonb) THEN
            errors := lapor_bridge.submit_errors_add(errors, v_flag, 'must be true or false');
        END IF;
    END LOOP;

    IF doc ? 'reporter' AND jsonb_typeof(doc -> 'reporter') <> 'null' THEN
        IF jsonb_typeof(doc -> 'reporter') <> 'object' THEN
            errors := lapor_bridge.submit_errors_add(errors, 'reporter', 'must be an object');
        ELSE
            FOR k IN SELECT jsonb_object_keys(doc -> 'reporter') LOOP
                IF NOT k = ANY (ARRAY['name', 'phone', 'email']) THEN
                    errors := lapor_bridge.submit_errors_add(errors, 'reporter.' || k, 'unknown field');
                ELSIF jsonb_typeof(doc -> 'reporter' -> k) NOT IN ('string', 'null')
                      OR char_length(doc -> 'reporter' ->> k) > 200 THEN
                    errors := lapor_bridge.submit_errors_add(errors, 'reporter.' || k, 'must be a string of at most 200 characters');
                END IF;
            END LOOP;
            IF jsonb_typeof(doc -> 'reporter' -> 'email') = 'string'
               AND (doc -> 'reporter' ->> 'email') !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' THEN
                errors := lapor_bridge.submit_errors_add(errors, 'reporter.email', 'not an email address');
            END IF;
        END IF;
    END IF;

    IF doc ? 'attachments' AND jsonb_typeof(doc -> 'attachments') <> 'null' THEN
        IF jsonb_typeof(doc -> 'attachments') <> 'array' THEN
            errors := lapor_bridge.submit_errors_add(errors, 'attachments', 'must be a list');
        ELSIF jsonb_array_length(doc -> 'attachments') > 10 THEN
            errors := lapor_bridge.submit_errors_add(errors, 'attachments', 'at most 10 files');
        ELSE
            FOR v_att IN SELECT * FROM jsonb_array_elements(doc -> 'attachments') LOOP
                IF jsonb_typeof(v_att -> 'file_name') IS DISTINCT FROM 'string'
                   OR char_length(v_att ->> 'file_name') NOT BETWEEN 1 AND 200
                   OR (v_att ->> 'file_name') ~ '[/\\]' THEN
                    errors := lapor_bridge.submit_errors_add(errors, format('attachments[%s].file_name', i),
                        'required file name of 1-200 characters without slashes');
                END IF;
                IF jsonb_typeof(v_att -> 'content_base64') IS DISTINCT FROM 'string' THEN
                    errors := lapor_bridge.submit_errors_add(errors, format('attachments[%s].content_base64', i),
                        'required base64 string');
                ELSIF char_length(v_att ->> 'content_base64') > 14000000 THEN
                    errors := lapor_bridge.submit_errors_add(errors, format('attachments[%s].content_base64', i),
                        'file larger than 10 MiB');
                ELSE
                    BEGIN
                        v_bytes := decode(v_att ->> 'content_base64', 'base64');
                        IF length(v_bytes) > 10 * 1024 * 1024 THEN
                            errors := lapor_bridge.submit_errors_add(errors, format('attachments[%s].content_base64', i),
                                'file larger than 10 MiB');
                        END IF;
                    EXCEPTION WHEN OTHERS THEN
                        errors := lapor_bridge.submit_errors_add(errors, format('attachments[%s].content_base64', i),
                            'not valid base64');
                    END;
                END IF;
                i := i + 1;
            END LOOP;
        END IF;
    END IF;

    IF errors <> '{}'::jsonb THEN
        RAISE EXCEPTION 'invalid complaint' USING ERRCODE = 'LB422', DETAIL = errors::text;
    END IF;

    -- What is kept for idempotency: the document with each attachment's
    -- content replaced by its digest.
    v_stored := doc;
    IF jsonb_typeof(doc -> 'attachments') = 'array' THEN
        v_stored := jsonb_set(v_stored, '{attachments}', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                'file_name', a ->> 'file_name',
                'sha256', encode(sha256(decode(a ->> 'content_base64', 'base64')), 'hex'))
                ORDER BY ord), '[]'::jsonb)
            FROM jsonb_array_elements(doc -> 'attachments') WITH ORDINALITY AS t(a, ord)));
    END IF;

    INSERT INTO lapor_bridge.complaints (local_ref, origin, submit_doc, title, content,
        category_id, disposition_id, location_id, date_of_incident, is_anonymous, is_secret,
        reporter)
    VALUES (v_ref, 'local', v_stored, v_title, v_content,
        (doc ->> 'category_id')::bigint,
        (doc ->> 'disposition_id')::bigint,
        (doc ->> 'location_id')::bigint,
        v_date,
        coalesce((doc ->> 'is_anonymous') IN ('true', '1'), false),
        coalesce((doc ->> 'is_secret') IN ('true', '1'), false),
        CASE WHEN jsonb_typeof(doc -> 'reporter') = 'object' THEN doc -> 'reporter' END)
    ON CONFLICT (local_ref) DO NOTHING
    RETURNING id INTO v_id;

    IF v_id IS NULL THEN
        SELECT submit_doc INTO v_existing FROM lapor_bridge.complaints WHERE local_ref = v_ref;
        IF v_existing IS DISTINCT FROM v_stored THEN
            RAISE EXCEPTION 'local_ref % already holds another complaint', v_ref
                USING ERRCODE = 'LB409';
        END IF;
        RETURN jsonb_build_object('local_ref', v_ref, 'created', false);
    END IF;

    IF jsonb_typeof(doc -> 'attachments') = 'array' AND jsonb_array_length(doc -> 'attachments') > 0 THEN
        INSERT INTO lapor_bridge.attachments (complaint_id, file_name, content)
        SELECT v_id, a ->> 'file_name', decode(a ->> 'content_base64', 'base64')
        FROM jsonb_array_elements(doc -> 'attachments') WITH ORDINALITY AS t(a, ord)
        ORDER BY ord;
        INSERT INTO lapor_bridge.outbox (complaint_id, seq, step) VALUES (v_id, v_seq, 'upload');
        v_seq := v_seq + 1;
    END IF;
    INSERT INTO lapor_bridge.outbox (complaint_id, seq, step) VALUES (v_id, v_seq, 'create');
    UPDATE lapor_bridge.complaints SET next_seq = v_seq + 1 WHERE id = v_id;

    PERFORM pg_notify('lapor_bridge_outbox', '');
    RETURN jsonb_build_object('local_ref', v_ref, 'created', true);
END
$$;
