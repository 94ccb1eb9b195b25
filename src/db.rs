//! Connecting, creating the database when missing, and the embedded
//! migrations. Every object lives in schema `lapor_bridge`.

use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::config::DatabaseSettings;

pub const SCHEMA: &str = "lapor_bridge";

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    BadUrl(String),
    #[error("cannot reach PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot create database {name}: {source}")]
    Create {
        name: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// Connect options with `search_path` set to the bridge's schema.
pub fn connect_options(settings: &DatabaseSettings) -> Result<PgConnectOptions, DbError> {
    let url = settings.url.expose_secret();
    let mut options =
        PgConnectOptions::from_str(url).map_err(|e| DbError::BadUrl(e.to_string()))?;
    if !url_names_user(url) && std::env::var_os("PGUSER").is_none() {
        // libpq's rule: the operating-system user. Without one, `postgres`.
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres".into());
        options = options.username(&user);
    }
    Ok(options
        .options([("search_path", SCHEMA)])
        .application_name("lapor-bridge")
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2)))
}

/// Whether a URL has a user part (`postgres://user@host/db`).
fn url_names_user(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority.contains('@')
}

/// Creates the database named by the options when it does not exist.
pub async fn ensure_database(options: &PgConnectOptions) -> Result<(), DbError> {
    let name = options.get_database().unwrap_or("postgres").to_string();
    if sqlx::PgConnection::connect_with(options).await.is_ok() {
        return Ok(());
    }
    let admin = options.clone().database("postgres");
    let mut conn = sqlx::PgConnection::connect_with(&admin)
        .await
        .map_err(DbError::Connect)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // Identifiers cannot be bound; quote it.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let sql = format!("CREATE DATABASE {quoted}");
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
        {
            // Another replica may have created it at the same moment.
            let raced = e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "42P04" || c == "23505");
            if !raced {
                return Err(DbError::Create { name, source: e });
            }
        }
    }
    conn.close().await.ok();
    Ok(())
}

pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    let options = connect_options(settings)?;
    ensure_database(&options).await?;
    pool(options, settings.max_connections).await
}

pub async fn pool(options: PgConnectOptions, max_connections: u32) -> Result<PgPool, DbError> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(DbError::Connect)
}

/// Creates the schema and applies the embedded migrations. Safe to run twice
/// and from several replicas at once: the migrator holds an advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    let mut conn = pool.acquire().await?;
    // Serialise schema creation between replicas starting together.
    sqlx::query("SELECT pg_advisory_lock(7305872100)")
        .execute(&mut *conn)
        .await?;
    let created = sqlx::query("CREATE SCHEMA IF NOT EXISTS lapor_bridge")
        .execute(&mut *conn)
        .await;
    let migrated = match created {
        Ok(_) => MIGRATOR.run(&mut *conn).await.map_err(DbError::from),
        Err(e) => Err(e.into()),
    };
    sqlx::query("SELECT pg_advisory_unlock(7305872100)")
        .execute(&mut *conn)
        .await?;
    migrated
}

/// Whether every embedded migration is applied (for readiness).
pub async fn migrations_current(pool: &PgPool) -> Result<bool, DbError> {
    let applied: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM lapor_bridge._sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(pool)
    .await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .all(|m| applied.contains(&m.version)))
}

/// How far the database's clock is ahead of this machine's, measured over
/// one round trip (the midpoint of the local send and receive).
pub async fn clock_offset(conn: &mut sqlx::PgConnection) -> Result<chrono::Duration, sqlx::Error> {
    let sent = chrono::Utc::now();
    let database: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(conn)
        .await?;
    let received = chrono::Utc::now();
    let midpoint = sent + (received - sent) / 2;
    Ok(database - midpoint)
}
