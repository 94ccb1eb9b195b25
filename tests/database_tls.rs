//! TLS to PostgreSQL: `DATABASE_URL=...?sslmode=require` connects over TLS
//! (the test server has `ssl = on`).

mod common;

use common::*;
use lapor_bridge::config::Settings;
use secrecy::SecretString;

#[tokio::test]
async fn the_database_is_reached_over_tls_with_sslmode_require() {
    lapor_bridge::lapor::client::install_crypto_provider();
    let db = TestDb::create().await;
    let mut settings = Settings::default();
    settings.database.url = SecretString::from(format!("{}?sslmode=require", db.url));
    let pool = lapor_bridge::db::connect(&settings.database).await.unwrap();
    lapor_bridge::db::migrate(&pool).await.unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ssl, "the connection is encrypted");
    pool.close().await;
    db.drop_db().await;
}
