-- Why a step waits is stored as a code, told in words (and in the reader's
-- language) where it is shown; the instant it waits for is the step's own
-- (next_attempt_at, lookup_not_before). A step that waits for LAPOR! (its
-- verification, the lookup delay after an unknown outcome, a Retry-After)
-- is `pending`; only a step whose last attempt failed is `retrying`.
UPDATE outbox SET waiting_reason = CASE
        WHEN waiting_reason LIKE 'waiting for LAPOR! to verify%' THEN 'verification'
        WHEN waiting_reason LIKE 'LAPOR! may still apply%' THEN 'lookup_delay'
        WHEN waiting_reason LIKE 'LAPOR! rejected the tokens%' THEN 'tokens_rejected'
        ELSE 'lookup_delay' END
 WHERE waiting_reason IS NOT NULL;
ALTER TABLE outbox ADD CONSTRAINT outbox_waiting_reason_check
    CHECK (waiting_reason IN ('verification', 'lookup_delay', 'retry_after', 'tokens_rejected'));

DROP VIEW complaint_sync;
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
       s.step_error,
       s.waiting[1] AS waiting_reason,
       s.waiting_until[1] AS waiting_until
  FROM lapor_bridge.complaints c
  LEFT JOIN LATERAL (
       SELECT count(*) FILTER (WHERE o.state IN ('pending', 'running')) AS open,
              count(*) FILTER (WHERE o.state = 'dead') AS dead,
              -- The last attempt failed and nothing but the backoff holds
              -- the step: a step that waits (for LAPOR!, or for its tokens
              -- while delivery is paused) is pending, with its reason.
              count(*) FILTER (WHERE o.state IN ('pending', 'running')
                                 AND o.last_error IS NOT NULL
                                 AND o.waiting_reason IS NULL) AS retrying,
              (array_agg(o.last_error ORDER BY o.seq)
                   FILTER (WHERE o.last_error IS NOT NULL
                             AND o.state IN ('pending', 'running', 'dead')))[1] AS step_error,
              array_agg(o.waiting_reason ORDER BY o.seq)
                   FILTER (WHERE o.waiting_reason IS NOT NULL AND o.state = 'pending') AS waiting,
              array_agg(greatest(o.next_attempt_at, o.lookup_not_before) ORDER BY o.seq)
                   FILTER (WHERE o.waiting_reason IS NOT NULL AND o.state = 'pending') AS waiting_until
         FROM lapor_bridge.outbox o
        WHERE o.complaint_id = c.id AND o.state IN ('pending', 'running', 'dead')) s ON true;
