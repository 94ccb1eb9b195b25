-- The outbox is a hot queue: every step is inserted, updated a few times and
-- pruned. Vacuum it by row count rather than by a share of its (small) size,
-- and leave room on each page for updates that stay on the page (HOT).
ALTER TABLE outbox SET (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.0,
    autovacuum_vacuum_threshold = 2000,
    autovacuum_analyze_scale_factor = 0.0,
    autovacuum_analyze_threshold = 2000
);
