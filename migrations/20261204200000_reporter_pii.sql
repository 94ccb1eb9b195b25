-- Reporter identity is personal data (UU 27/2022): it is kept only as AEAD
-- ciphertext that the bridge writes with BRIDGE_PII_KEY. SQL cannot encrypt
-- (it never holds the key), so plain text passes through one column only:
--
--   reporter_pending   plain text staged by submit_complaint() (and by this
--                      migration from the old `reporter` column); the daemon
--                      encrypts and clears it at start, before it serves, and
--                      then at once on the NOTIFY lapor_bridge_pii (and at
--                      least every minute). The HTTP API seals it in the
--                      submitting transaction, so its plain text never commits.
--   reporter_ciphertext  nonce (24 bytes) || XChaCha20-Poly1305 ciphertext,
--                      its associated data binding the complaint's local_ref.
--   reporter_key_id    first 8 hex digits of SHA-256 of the key.
--   reporter_erased_at / reporter_erasure  set when the identity was erased
--                      ('request' or 'retention'); the ciphertext is then NULL.

-- The view selects c.*, so it goes while the columns change.
DROP VIEW complaint_sync;

ALTER TABLE complaints
    ADD COLUMN reporter_pending    jsonb,
    ADD COLUMN reporter_ciphertext bytea,
    ADD COLUMN reporter_key_id     text,
    ADD COLUMN reporter_erased_at  timestamptz,
    ADD COLUMN reporter_erasure    text CHECK (reporter_erasure IN ('request', 'retention')),
    ADD CONSTRAINT complaints_reporter_key_id_check
        CHECK ((reporter_ciphertext IS NULL) = (reporter_key_id IS NULL)),
    ADD CONSTRAINT complaints_reporter_erased_check
        CHECK ((reporter_erased_at IS NULL) = (reporter_erasure IS NULL));

-- Complaints whose identity waits for encryption, and those the retention
-- task looks at.
CREATE INDEX complaints_reporter_pending_idx ON complaints (id) WHERE reporter_pending IS NOT NULL;
CREATE INDEX complaints_reporter_held_idx ON complaints (closed_at)
    WHERE reporter_ciphertext IS NOT NULL OR reporter_pending IS NOT NULL;

-- Which reporter fields carry a value: what the idempotency document keeps.
CREATE FUNCTION submit_reporter_fields(r jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_agg(k ORDER BY k), '[]'::jsonb)
      FROM jsonb_each(r) AS e(k, v)
     WHERE jsonb_typeof(v) = 'string' AND btrim(v #>> '{}') <> ''
$$;

-- The reporter as staged for encryption: trimmed strings, no empty fields;
-- NULL when nothing is left.
CREATE FUNCTION submit_reporter_staged(r jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT nullif(coalesce(jsonb_object_agg(k, btrim(v #>> '{}')), '{}'::jsonb), '{}'::jsonb)
      FROM jsonb_each(r) AS e(k, v)
     WHERE jsonb_typeof(v) = 'string' AND btrim(v #>> '{}') <> ''
$$;

-- The one check of a submitted reporter object; adds to `errors`.
-- nik: the 16 digits of a Nomor Induk Kependudukan as Dukcapil issues it:
-- province code (digits 1-2), regency and district (3-6), birth date
-- DDMMYY (7-12, women add 40 to the day), serial (13-16, not 0000).
CREATE FUNCTION submit_reporter_errors(errors jsonb, r jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k       text;
    v       text;
    v_day   integer;
    v_month integer;
    limits  jsonb := '{"name": 200, "phone": 32, "email": 254, "nik": 16, "address": 500}';
BEGIN
    FOR k IN SELECT jsonb_object_keys(r) LOOP
        IF NOT limits ? k THEN
            errors := lapor_bridge.submit_errors_add(errors, 'reporter.' || k, 'unknown field');
            CONTINUE;
        END IF;
        IF jsonb_typeof(r -> k) = 'null' THEN
            CONTINUE;
        END IF;
        IF jsonb_typeof(r -> k) <> 'string'
           OR char_length(btrim(r ->> k)) > (limits ->> k)::integer THEN
            errors := lapor_bridge.submit_errors_add(errors, 'reporter.' || k,
                format('must be a string of at most %s characters', limits ->> k));
            CONTINUE;
        END IF;
        v := btrim(r ->> k);
        IF v = '' THEN
            CONTINUE;
        END IF;
        -- Line breaks and tabs only in an address.
        IF (k <> 'address' AND v ~ '[[:cntrl:]]')
           OR (k = 'address' AND v ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]') THEN
            errors := lapor_bridge.submit_errors_add(errors, 'reporter.' || k, 'must not contain control characters');
        ELSIF k = 'email' AND v !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' THEN
            errors := lapor_bridge.submit_errors_add(errors, 'reporter.email', 'not an email address');
        ELSIF k = 'phone' AND regexp_replace(v, '[ -]', '', 'g') !~ '^\+?[0-9]{8,15}$' THEN
            errors := lapor_bridge.submit_errors_add(errors, 'reporter.phone',
                'not a phone number: 8-15 digits, optionally a leading + and spaces or dashes');
        ELSIF k = 'nik' THEN
            IF v !~ '^[0-9]{16}$' THEN
                errors := lapor_bridge.submit_errors_add(errors, 'reporter.nik', 'must be exactly 16 digits');
            ELSIF NOT substr(v, 1, 2) = ANY (ARRAY['11', '12', '13', '14', '15', '16', '17', '18', '19',
                    '21', '31', '32', '33', '34', '35', '36', '51', '52', '53', '61', '62', '63',
                    '64', '65', '71', '72', '73', '74', '75', '76', '81', '82', '91', '92', '93',
                    '94', '95', '96']) THEN
                errors := lapor_bridge.submit_errors_add(errors, 'reporter.nik',
                    'digits 1-2 are not an Indonesian province code');
            ELSE
                v_day := substr(v, 7, 2)::integer;
                v_month := substr(v, 9, 2)::integer;
                IF v_day > 40 THEN
                    v_day := v_day - 40;
                END IF;
                IF v_day NOT BETWEEN 1 AND 31 OR v_month NOT BETWEEN 1 AND 12 THEN
                    errors := lapor_bridge.submit_errors_add(errors, 'reporter.nik',
                        'digits 7-12 are not a birth date DDMMYY');
                ELSIF substr(v, 13, 4) = '0000' THEN
                    errors := lapor_bridge.submit_errors_add(errors, 'reporter.nik',
                        'digits 13-16 (serial) cannot be 0000');
                END IF;
            END IF;
        END IF;
    END LOOP;
    RETURN errors;
END
$$;

-- Plain text from before this migration waits in reporter_pending for the
-- daemon (`lapor-bridge run` encrypts it before it serves; so does
-- `lapor-bridge pii rotate`); the idempotency documents keep field names only.
UPDATE complaints SET reporter_pending = submit_reporter_staged(reporter)
 WHERE jsonb_typeof(reporter) = 'object';
UPDATE complaints SET submit_doc = jsonb_set(submit_doc, '{reporter}',
        submit_reporter_fields(submit_doc -> 'reporter'))
 WHERE jsonb_typeof(submit_doc -> 'reporter') = 'object';
ALTER TABLE complaints DROP COLUMN reporter;

-- The view as before, over the new columns.
CREATE VIEW complaint_sync AS
SELECT c.*,
       CASE
           WHEN coalesce(s.dead, 0) > 0 THEN 'dead'
           WHEN c.conflict_reason IS NOT NULL THEN 'conflict'
           WHEN coalesce(s.retrying, 0) > 0 THEN 'retrying'
           WHEN coalesce(s.open, 0) > 0 THEN 'pending'
           ELSE 'synced'
       END AS sync_state,
       coalesce(s.open, 0) + coalesce(s.dead, 0) AS pending_ops,
       s.step_error
  FROM lapor_bridge.complaints c
  LEFT JOIN LATERAL (
       SELECT count(*) FILTER (WHERE o.state IN ('pending', 'running')) AS open,
              count(*) FILTER (WHERE o.state = 'dead') AS dead,
              count(*) FILTER (WHERE o.state IN ('pending', 'running')
                                 AND (o.attempts > 0 OR o.needs_lookup)) AS retrying,
              (array_agg(o.last_error ORDER BY o.seq)
                   FILTER (WHERE o.last_error IS NOT NULL
                             AND o.state IN ('pending', 'running', 'dead')))[1] AS step_error
         FROM lapor_bridge.outbox o
        WHERE o.complaint_id = c.id AND o.state IN ('pending', 'running', 'dead')) s ON true;

-- Submissions stage the reporter for encryption instead of storing it.
CREATE OR REPLACE FUNCTION submit_complaint(doc jsonb) RETURNS jsonb
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
    v_reporter  jsonb;
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
            errors := lapor_bridge.submit_reporter_errors(errors, doc -> 'reporter');
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
    -- The reporter's values are personal data: only which fields were given
    -- is kept for idempotency.
    IF jsonb_typeof(doc -> 'reporter') = 'object' THEN
        v_stored := jsonb_set(v_stored, '{reporter}',
            lapor_bridge.submit_reporter_fields(doc -> 'reporter'));
        v_reporter := lapor_bridge.submit_reporter_staged(doc -> 'reporter');
    END IF;

    INSERT INTO lapor_bridge.complaints (local_ref, origin, submit_doc, title, content,
        category_id, disposition_id, location_id, date_of_incident, is_anonymous, is_secret,
        reporter_pending)
    VALUES (v_ref, 'local', v_stored, v_title, v_content,
        (doc ->> 'category_id')::bigint,
        (doc ->> 'disposition_id')::bigint,
        (doc ->> 'location_id')::bigint,
        v_date,
        coalesce((doc ->> 'is_anonymous') IN ('true', '1'), false),
        coalesce((doc ->> 'is_secret') IN ('true', '1'), false),
        v_reporter)
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
    IF v_reporter IS NOT NULL THEN
        PERFORM pg_notify('lapor_bridge_pii', '');
    END IF;
    RETURN jsonb_build_object('local_ref', v_ref, 'created', true);
END
$$;
