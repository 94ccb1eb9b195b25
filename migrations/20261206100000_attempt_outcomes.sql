-- The outcome of an attempt is one of the codes the bridge writes
-- (`domain::AttemptOutcome`), for deliveries to LAPOR! and to webhook
-- endpoints alike: a row the code cannot read would break the pages that
-- show a complaint's history. Existing rows are checked too.
ALTER TABLE outbox_attempts ADD CONSTRAINT outbox_attempts_outcome_check
    CHECK (outcome IN ('delivered', 'adopted', 'waiting', 'wait_over', 'retry', 'unknown', 'paused', 'dead', 'lease_lost', 'gone')) NOT VALID;
ALTER TABLE outbox_attempts VALIDATE CONSTRAINT outbox_attempts_outcome_check;
ALTER TABLE webhook_attempts ADD CONSTRAINT webhook_attempts_outcome_check
    CHECK (outcome IN ('delivered', 'adopted', 'waiting', 'wait_over', 'retry', 'unknown', 'paused', 'dead', 'lease_lost', 'gone')) NOT VALID;
ALTER TABLE webhook_attempts VALIDATE CONSTRAINT webhook_attempts_outcome_check;
