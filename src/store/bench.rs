//! SQL of `lapor-bridge bench`: what it measures in the bench database and
//! the tracked complaints it seeds there.

use sqlx::PgPool;

/// The outbox's size as the soak samples it: rows, bytes on disk, and dead
/// tuples not vacuumed yet.
pub async fn outbox_size(pool: &PgPool) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM lapor_bridge.outbox),
                pg_total_relation_size('lapor_bridge.outbox'),
                (SELECT n_dead_tup FROM pg_stat_user_tables
                  WHERE schemaname = 'lapor_bridge' AND relname = 'outbox')",
    )
    .fetch_one(pool)
    .await
}

/// How many outbox steps are dead.
pub async fn dead_steps(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.outbox WHERE state = 'dead'")
        .fetch_one(pool)
        .await
}

/// How many steps of the kind (`LIKE` pattern, `%`: any) are pending or
/// running.
pub async fn unfinished_steps(pool: &PgPool, step: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.outbox
          WHERE state IN ('pending', 'running') AND step LIKE $1",
    )
    .bind(step)
    .fetch_one(pool)
    .await
}

/// p50, p99 and max of enqueue-to-delivered time in ms of the done steps of
/// one kind whose complaint's reference is `LIKE` `refs`; `None` when no
/// such step was delivered.
pub async fn step_latency(
    pool: &PgPool,
    refs: &str,
    step: &str,
) -> Result<(Option<f64>, Option<f64>, Option<f64>), sqlx::Error> {
    sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms)::float8
           FROM (SELECT (extract(epoch FROM (o.finished_at - o.created_at)) * 1000)::float8 AS ms
                   FROM lapor_bridge.outbox o JOIN lapor_bridge.complaints c ON c.id = o.complaint_id
                  WHERE c.local_ref LIKE $1 AND o.step = $2 AND o.state = 'done') t",
    )
    .bind(refs)
    .bind(step)
    .fetch_one(pool)
    .await
}

/// How many complaints the database holds.
pub async fn complaint_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.complaints")
        .fetch_one(pool)
        .await
}

/// Marks these complaints verified, as LAPOR! shows them, so their
/// follow-ups go at once.
pub async fn mark_verified(pool: &PgPool, local_refs: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lapor_bridge.complaints SET status = 'verified', lapor_status_name = 'Terverifikasi'
          WHERE local_ref = ANY($1)",
    )
    .bind(local_refs)
    .execute(pool)
    .await?;
    Ok(())
}

/// `n` local complaints `<prefix>i`, each linked to LAPOR! id `first + i`
/// with LAPOR!'s fields as the simulator seeded them (unverified,
/// dispositioned to `institution_id`).
pub async fn seed_tracked(
    pool: &PgPool,
    prefix: &str,
    first: i64,
    n: i64,
    institution_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO lapor_bridge.complaints
             (local_ref, origin, title, content, category_id, lapor_complaint_id, tracking_id,
              lapor_status_name, status, lapor_disposition_id)
         SELECT $4 || i, 'local', 'Seeded complaint ' || i, 'seeded', 1, $1 + i, '',
                'Belum Terverifikasi', 'unverified', $3
           FROM generate_series(0, $2 - 1) AS i",
    )
    .bind(first)
    .bind(n)
    .bind(institution_id)
    .bind(prefix)
    .execute(pool)
    .await?;
    Ok(())
}
