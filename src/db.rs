//! Connecting, creating the database when missing, the embedded migrations
//! and the runtime role. Every object lives in schema `lapor_bridge`.
//!
//! Two roles: the schema owner runs `lapor-bridge migrate` (and may run
//! everything else); `lapor_bridge_runtime`, created and granted by
//! `migrate`, holds what `run` and the other commands need and may only read
//! and append the audit log and the change feed's events. Under a role that
//! does not own the schema no command attempts DDL: pending migrations stop
//! it with a message instead.

use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::config::DatabaseSettings;

pub const SCHEMA: &str = "lapor_bridge";

/// The role `run` needs (NOLOGIN; login roles are made members of it).
pub const RUNTIME_ROLE: &str = "lapor_bridge_runtime";

/// Creates the runtime role when the cluster has none (roles are shared by
/// every database of the cluster, so another database's `migrate` may create
/// it at the same moment), then grants it everything in the schema, which
/// covers the tables of every migration, and takes back what the audit log
/// must not allow. Run after every migration, by the schema owner.
const RUNTIME_GRANTS: &str = r#"
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lapor_bridge_runtime') THEN
        BEGIN
            CREATE ROLE lapor_bridge_runtime NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role lapor_bridge_runtime does not exist and % may not create it', current_user
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'create it once for the cluster as a superuser: CREATE ROLE lapor_bridge_runtime NOLOGIN';
        END;
    END IF;
    -- A role of that name made by someone else (one that can log in, or
    -- holds more than its grants) would be handed this database: refuse.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lapor_bridge_runtime'
                 AND (rolcanlogin OR rolsuper OR rolcreaterole OR rolcreatedb
                      OR rolbypassrls OR rolreplication)) THEN
        RAISE EXCEPTION 'role lapor_bridge_runtime can log in or holds attributes beyond its grants'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'it must be NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION: ALTER ROLE lapor_bridge_runtime ... as a superuser';
    END IF;
END
$$;
-- The append functions run with their owner's rights (migration
-- 20261204100000). Asserted again after every migration: a later
-- CREATE OR REPLACE of one of them would quietly make it SECURITY INVOKER.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'lapor_bridge'
                AND p.proname IN ('audit_append', 'audit_append_many') LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = lapor_bridge, pg_temp', f);
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;
GRANT USAGE ON SCHEMA lapor_bridge TO lapor_bridge_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA lapor_bridge TO lapor_bridge_runtime;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA lapor_bridge TO lapor_bridge_runtime;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA lapor_bridge TO lapor_bridge_runtime;
-- The audit log: read, and append through the SECURITY DEFINER functions
-- audit_append and audit_append_many only.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
    ON lapor_bridge.audit_log FROM lapor_bridge_runtime;
REVOKE ALL ON SEQUENCE lapor_bridge.audit_log_id_seq FROM lapor_bridge_runtime;
-- The change feed: read and appended (by the triggers that describe each
-- change), never rewritten.
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
    ON lapor_bridge.events FROM lapor_bridge_runtime;
-- The migrations' own record: read (for readiness), never written.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
    ON lapor_bridge._sqlx_migrations FROM lapor_bridge_runtime;
"#;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The database a command opened: host, port and name (never the user's
/// password), for the first line of every command's output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Target {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn of(options: &PgConnectOptions) -> Self {
        Self {
            name: options.get_database().unwrap_or("postgres").to_string(),
            host: options.get_host().to_string(),
            port: options.get_port(),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database {} on {}:{}", self.name, self.host, self.port)
    }
}

/// A PostgreSQL message without its position (`at character 12`, `at line
/// 3`), which means nothing to the person reading it.
pub fn pg_message(e: &sqlx::Error) -> String {
    let text = match e.as_database_error() {
        Some(d) => d.message().to_string(),
        None => match e {
            sqlx::Error::Io(io) => io.to_string(),
            sqlx::Error::PoolTimedOut => "no connection became free in time".to_string(),
            other => other.to_string(),
        },
    };
    strip_position(&text)
}

fn strip_position(text: &str) -> String {
    let mut out = text.to_string();
    for marker in [" at line ", " at character ", " at or near "] {
        if let Some(i) = out.find(marker) {
            let rest = &out[i + marker.len()..];
            let numeric = rest.chars().next().is_some_and(|c| c.is_ascii_digit());
            if numeric {
                let end = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(out.len(), |j| i + marker.len() + j);
                out.replace_range(i..end, "");
            }
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    BadUrl(String),
    #[error("cannot reach PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot reach PostgreSQL at {}:{}: {}; check the host and port in DATABASE_URL", .target.host, .target.port, pg_message(.source))]
    Unreachable {
        target: Target,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "{target} does not exist: check the name in DATABASE_URL, or create it with `lapor-bridge migrate`"
    )]
    NoDatabase { target: Target },
    #[error("PostgreSQL at {}:{} has no role {role}: check the user in DATABASE_URL", .target.host, .target.port)]
    NoRole { target: Target, role: String },
    #[error("PostgreSQL at {}:{} refused the login of role {role} ({message}): check the user and password in DATABASE_URL", .target.host, .target.port)]
    LoginRefused {
        target: Target,
        role: String,
        message: String,
    },
    #[error(
        "{target} has no lapor_bridge schema: is DATABASE_URL the bridge's database? If it is, run `lapor-bridge migrate` first"
    )]
    NoSchema { target: Target },
    #[error(
        "{target} has an older schema ({count} migration(s) pending): run `lapor-bridge migrate` first"
    )]
    Outdated { target: Target, count: usize },
    #[error("cannot create database {name}: {source}")]
    Create {
        name: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "database {name} does not exist and role {role} may not create it: \
         run `lapor-bridge migrate` as the schema owner first"
    )]
    Missing { name: String, role: String },
    #[error(
        "role {role} does not own schema lapor_bridge and may not apply migrations: \
         run `lapor-bridge migrate` as the schema owner"
    )]
    NotOwner { role: String },
    #[error(
        "{count} migration(s) pending (first {first}) and role {role} may not apply them: \
         run `lapor-bridge migrate` as the schema owner, then start again"
    )]
    Pending {
        count: usize,
        first: i64,
        role: String,
    },
    #[error(
        "role {role} may not read schema lapor_bridge: run `lapor-bridge migrate` as the \
         schema owner (it grants lapor_bridge_runtime what the bridge needs)"
    )]
    NoRights { role: String },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {}", pg_message(.0))]
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

/// Creates the database named by the options when it does not exist and the
/// role may create databases; a role that may not gets [`DbError::Missing`]
/// and no DDL is attempted.
pub async fn ensure_database(options: &PgConnectOptions) -> Result<(), DbError> {
    let name = options.get_database().unwrap_or("postgres").to_string();
    match sqlx::PgConnection::connect_with(options).await {
        Ok(conn) => {
            conn.close().await.ok();
            return Ok(());
        }
        // 3D000: the database does not exist. Anything else is for the pool
        // to report.
        Err(e) if sql_state(&e).as_deref() == Some("3D000") => {}
        Err(e) => return Err(DbError::Connect(e)),
    }
    let admin = options.clone().database("postgres");
    let mut conn = sqlx::PgConnection::connect_with(&admin)
        .await
        .map_err(DbError::Connect)?;
    let (exists, may_create, role): (bool, bool, String) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1),
                (SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user),
                current_user::text",
    )
    .bind(&name)
    .fetch_one(&mut conn)
    .await?;
    if !exists && !may_create {
        conn.close().await.ok();
        return Err(DbError::Missing { name, role });
    }
    if !exists {
        // Identifiers cannot be bound; quote it.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let sql = format!("CREATE DATABASE {quoted}");
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
        {
            // Another replica may have created it at the same moment.
            let raced = sql_state(&e).is_some_and(|c| c == "42P04" || c == "23505");
            if !raced {
                return Err(DbError::Create { name, source: e });
            }
        }
    }
    conn.close().await.ok();
    Ok(())
}

fn sql_state(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

/// Connects, creating the database when it is missing and the role may:
/// for `migrate` and `demo` only.
pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    let options = connect_options(settings)?;
    ensure_database(&options)
        .await
        .map_err(|e| explain(e, &options))?;
    pool(options, settings.max_connections).await
}

/// Connects to a database that must exist: every command but `migrate` and
/// `demo`. A missing database, role or server is said in words, naming
/// DATABASE_URL.
pub async fn open(settings: &DatabaseSettings) -> Result<(PgPool, Target), DbError> {
    let options = connect_options(settings)?;
    let target = Target::of(&options);
    match sqlx::PgConnection::connect_with(&options).await {
        Ok(conn) => {
            conn.close().await.ok();
        }
        Err(e) => return Err(explain(DbError::Connect(e), &options)),
    }
    let pool = pool(options.clone(), settings.max_connections)
        .await
        .map_err(|e| explain(e, &options))?;
    Ok((pool, target))
}

/// A connection failure in words: which server, database or role.
fn explain(e: DbError, options: &PgConnectOptions) -> DbError {
    let DbError::Connect(source) = e else {
        return e;
    };
    let target = Target::of(options);
    let role = options.get_username().to_string();
    match sql_state(&source).as_deref() {
        Some("3D000") => DbError::NoDatabase { target },
        Some("28000") if pg_message(&source).contains("does not exist") => {
            DbError::NoRole { target, role }
        }
        Some("28000" | "28P01") => DbError::LoginRefused {
            target,
            role,
            message: pg_message(&source),
        },
        _ => DbError::Unreachable { target, source },
    }
}

/// For `run`, which upgrades an older schema but never lays one down where
/// none was: a database without any of the bridge's migrations is refused
/// (a typo in DATABASE_URL, or another application's database).
pub async fn require_some_schema(pool: &PgPool, target: &Target) -> Result<(), DbError> {
    let role = current_role(pool).await?;
    let Some(pending) = pending_migrations(pool).await? else {
        return Err(DbError::NoRights { role });
    };
    let total = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .count();
    if pending.len() == total {
        return Err(DbError::NoSchema {
            target: target.clone(),
        });
    }
    Ok(())
}

/// For commands that read and write the bridge's data but may not change
/// the schema: the schema must be there and current.
pub async fn require_current_schema(pool: &PgPool, target: &Target) -> Result<(), DbError> {
    let role = current_role(pool).await?;
    match pending_migrations(pool).await? {
        Some(pending) if pending.is_empty() => Ok(()),
        Some(pending) => {
            let schema: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'lapor_bridge')",
            )
            .fetch_one(pool)
            .await?;
            let total = MIGRATOR
                .iter()
                .filter(|m| m.migration_type.is_up_migration())
                .count();
            if !schema || pending.len() == total {
                Err(DbError::NoSchema {
                    target: target.clone(),
                })
            } else {
                Err(DbError::Outdated {
                    target: target.clone(),
                    count: pending.len(),
                })
            }
        }
        None => Err(DbError::NoRights { role }),
    }
}

pub async fn pool(options: PgConnectOptions, max_connections: u32) -> Result<PgPool, DbError> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await
        .map_err(|e| explain(DbError::Connect(e), &options))
}

/// Whether the connected role may apply migrations: it has the rights of the
/// schema's owner, or there is no schema yet and it may create one.
pub async fn may_migrate(pool: &PgPool) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(
                    (SELECT pg_has_role(nspowner, 'USAGE') FROM pg_namespace
                      WHERE nspname = 'lapor_bridge'),
                    has_database_privilege(current_database(), 'CREATE'))",
    )
    .fetch_one(pool)
    .await?)
}

async fn current_role(pool: &PgPool) -> Result<String, DbError> {
    Ok(sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(pool)
        .await?)
}

/// Creates the schema, applies the embedded migrations and grants the
/// runtime role its rights. Safe to run twice and from several replicas at
/// once: the migrator holds an advisory lock. Only for the schema owner
/// ([`DbError::NotOwner`] otherwise, before any DDL).
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    if !may_migrate(pool).await? {
        return Err(DbError::NotOwner {
            role: current_role(pool).await?,
        });
    }
    let mut conn = pool.acquire().await?;
    // Serialise schema creation between replicas starting together.
    sqlx::query("SELECT pg_advisory_lock(7305872100)")
        .execute(&mut *conn)
        .await?;
    let migrated = async {
        sqlx::query("CREATE SCHEMA IF NOT EXISTS lapor_bridge")
            .execute(&mut *conn)
            .await?;
        MIGRATOR.run(&mut *conn).await?;
        sqlx::raw_sql(RUNTIME_GRANTS).execute(&mut *conn).await?;
        Ok::<(), DbError>(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock(7305872100)")
        .execute(&mut *conn)
        .await?;
    migrated
}

/// Drops the schema and everything in it: the throw-away databases of
/// `demo` and `bench` start empty.
pub async fn drop_schema(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("DROP SCHEMA IF EXISTS lapor_bridge CASCADE")
        .execute(pool)
        .await?;
    Ok(())
}

/// For `run` and every command but `migrate`: the schema owner applies the
/// migrations (as `migrate` would); any other role applies nothing and is
/// refused with [`DbError::Pending`] while migrations are pending.
pub async fn migrate_or_check(pool: &PgPool) -> Result<(), DbError> {
    match migrate(pool).await {
        Err(DbError::NotOwner { role }) => match pending_migrations(pool).await? {
            Some(pending) if pending.is_empty() => Ok(()),
            Some(pending) => Err(DbError::Pending {
                count: pending.len(),
                first: pending[0],
                role,
            }),
            None => Err(DbError::NoRights { role }),
        },
        other => other,
    }
}

/// The embedded migrations the database has not applied, in order; `None`
/// when the role may not read the migrations' record.
pub async fn pending_migrations(pool: &PgPool) -> Result<Option<Vec<i64>>, DbError> {
    // The catalog, not the table's name: a role without USAGE on the schema
    // must learn that, not fail on the lookup.
    let table: Option<(bool,)> = sqlx::query_as(
        "SELECT has_table_privilege(c.oid, 'SELECT')
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'lapor_bridge' AND c.relname = '_sqlx_migrations'",
    )
    .fetch_optional(pool)
    .await?;
    let applied: Vec<i64> = match table {
        None => Vec::new(),
        Some((false,)) => return Ok(None),
        Some((true,)) => {
            let readable: bool =
                sqlx::query_scalar("SELECT has_schema_privilege('lapor_bridge', 'USAGE')")
                    .fetch_one(pool)
                    .await?;
            if !readable {
                return Ok(None);
            }
            sqlx::query_scalar(
                "SELECT version FROM lapor_bridge._sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(pool)
            .await?
        }
    };
    Ok(Some(
        MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect(),
    ))
}

/// Whether every embedded migration is applied (for readiness).
pub async fn migrations_current(pool: &PgPool) -> Result<bool, DbError> {
    Ok(pending_migrations(pool)
        .await?
        .is_some_and(|p| p.is_empty()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_left_out_of_messages() {
        assert_eq!(
            strip_position("syntax error at line 3 near x"),
            "syntax error near x"
        );
        assert_eq!(strip_position("bad input at character 12"), "bad input");
        assert_eq!(strip_position("nothing to strip"), "nothing to strip");
    }

    #[test]
    fn the_target_names_host_port_and_database_never_the_password() {
        let settings = DatabaseSettings {
            url: secrecy::SecretString::from(
                "postgres://u:hunter2@db.example:6543/city".to_string(),
            ),
            ..DatabaseSettings::default()
        };
        let target = Target::of(&connect_options(&settings).unwrap());
        let text = target.to_string();
        assert_eq!(text, "database city on db.example:6543");
        assert!(!serde_json::to_string(&target).unwrap().contains("hunter2"));
    }
}
