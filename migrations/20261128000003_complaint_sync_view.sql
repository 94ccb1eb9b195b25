-- Each complaint's sync state, derived from its unfinished outbox steps and
-- its conflict flag; never stored, so it cannot drift from the steps.
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
