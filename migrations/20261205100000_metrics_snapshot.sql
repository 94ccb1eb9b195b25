-- The gauges that `/metrics` serves: one row, taken by one replica at a time
-- (an advisory lock) every 30 s, so that a scrape reads this row instead of
-- counting tables, and every replica serves the same numbers.
CREATE TABLE metrics_snapshot (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    taken_at timestamptz NOT NULL,
    gauges jsonb NOT NULL
);
