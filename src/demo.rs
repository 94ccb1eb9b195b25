//! `lapor-bridge demo`: the simulator with mild faults, the daemon and its
//! dashboard, against a throw-away database `lapor_bridge_demo` on the
//! configured PostgreSQL, seeded with sample complaints and upstream activity.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::RngExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::app::Daemon;
use crate::clock::DatabaseClock;
use crate::config::Settings;
use crate::simulator::{self, SimulatorConfig};
use crate::submit_document::{SubmitDocument, SubmitReporter};

pub const DEMO_DATABASE: &str = "lapor_bridge_demo";

/// The advisory lock a running demo holds on its database.
const DEMO_LOCK: i64 = 7_305_872_900;

/// The faults LAPOR! shows most of the time in the demo.
static MILD_FAULTS: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
    json!({"error_rate": 0.05, "html_error_rate": 0.02, "drop_after_commit_rate": 0.02,
           "latency_ms": [10, 60]})
});

/// The seeded complaint LAPOR! never verifies during the demo: its
/// follow-up waits (sync state pending) with the reason shown.
const UNVERIFIED: &str = "PLG-DEMO-0012";

pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal();
    crate::lapor::client::install_crypto_provider();

    // A second demo refuses before it touches the first one's database:
    // the port first, then a lock the running demo holds for its lifetime.
    refuse_taken_port(&settings)?;
    let (options, target, demo_lock) = claim_database(&settings).await?;
    settings.database.url = SecretString::from(options.to_url_lossy().to_string());

    let sim = simulator::spawn(SimulatorConfig::default()).await?;
    let http = reqwest::Client::new();
    let root = sim.root_url();
    http.post(format!("{root}/_sim/faults"))
        .json(&*MILD_FAULTS)
        .send()
        .await
        .context("configuring the simulator's faults")?;

    let token = format!("demo-{:032x}", rand::rng().random::<u128>());
    configure(&mut settings, &sim, &token);

    let daemon = Daemon::start(
        settings,
        Arc::new(DatabaseClock::default()),
        shutdown.clone(),
        true,
    )
    .await?;
    let bridge = daemon.bridge.clone();
    seed(&bridge).await?;
    let activity_root = root.clone();
    let activity_stop = shutdown.clone();
    tokio::spawn(async move { upstream_activity(http, activity_root, activity_stop).await });
    let city_bridge = bridge.clone();
    let city_stop = shutdown.clone();
    tokio::spawn(async move { city_activity(city_bridge, city_stop).await });

    print_banner(&daemon, &sim, &root, &token, &target);
    daemon.wait().await;
    sim.shutdown();
    let _ = demo_lock.close().await;
    Ok(())
}

/// Refuses when the configured listen port is taken (another demo, or
/// `run`).
fn refuse_taken_port(settings: &Settings) -> anyhow::Result<()> {
    let listen = settings.bridge.listen;
    if listen.port() != 0 {
        drop(std::net::TcpListener::bind(listen).map_err(|e| {
            anyhow::anyhow!(
                "{listen} is taken ({e}): is another `lapor-bridge demo` (or `run`) running? \
                 Stop it first, or set BRIDGE_LISTEN to another port"
            )
        })?);
    }
    Ok(())
}

/// The demo's own database, emptied: refused when another demo holds its
/// lock. The returned connection holds the lock for the demo's lifetime.
async fn claim_database(
    settings: &Settings,
) -> anyhow::Result<(PgConnectOptions, crate::db::Target, sqlx::PgConnection)> {
    let options = crate::db::connect_options(&settings.database)?.database(DEMO_DATABASE);
    crate::db::ensure_database(&options).await?;
    let target = crate::db::Target::of(&options);
    let mut demo_lock = sqlx::PgConnection::connect_with(&options).await?;
    let mine = crate::store::jobs::lock(&mut demo_lock, DEMO_LOCK, false).await?;
    if !mine {
        anyhow::bail!(
            "another `lapor-bridge demo` is running on {target}: stop it first (its database \
             is left as it is)"
        );
    }
    let pool = crate::db::pool(options.clone(), 2).await?;
    crate::db::drop_schema(&pool).await?;
    pool.close().await;
    Ok((options, target, demo_lock))
}

/// The daemon's settings for the demo: the simulator as LAPOR!, `token` as
/// the admin token, quick retries, and a throw-away reporter key.
fn configure(settings: &mut Settings, sim: &simulator::RunningSimulator, token: &str) {
    settings.lapor.base_url = sim.base_url();
    settings.lapor.api_token = SecretString::from("api-token");
    settings.lapor.instansi_token = SecretString::from("instansi-token");
    settings.bridge.admin_token = Some(SecretString::from(token.to_string()));
    settings.bridge.poll_interval_secs = 10;
    settings.bridge.retry_base_ms = 500;
    settings.bridge.retry_max_ms = 5_000;
    settings.bridge.max_attempts = 20;
    settings.bridge.rate_limit_per_sec = 20;
    // A throw-away key: the demo database is emptied at every start.
    let (_, pii_key) = crate::pii::PiiKey::generate();
    settings.pii.key = Some(SecretString::from(pii_key));
    settings.pii.old_keys.clear();
}

/// What the demo serves, on standard output. It may be a pipe that closes
/// (`demo | head`): written once, a closed pipe is no failure.
fn print_banner(
    daemon: &Daemon,
    sim: &simulator::RunningSimulator,
    root: &str,
    token: &str,
    target: &crate::db::Target,
) {
    let banner = format!(
        "\nlapor-bridge demo is running.\n  dashboard:  http://{}/\n  API token:  {token}   \
         (sign in to the dashboard with it, or send Authorization: Bearer <token>)\n  \
         LAPOR! simulator: {} (control: {root}/_sim)\n  database:   {target} (emptied at every \
         demo start)\nStop with ctrl-c.\n",
        daemon.addr,
        sim.base_url(),
    );
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(banner.as_bytes())
        .and_then(|()| stdout.flush());
}

const TOPICS: [(&str, &str); 6] = [
    (
        "Jalan berlubang di Jl. Sudirman",
        "Jalan berlubang cukup dalam di depan pasar, membahayakan pengendara motor pada malam hari.",
    ),
    (
        "Lampu jalan padam",
        "Lampu penerangan jalan di kawasan Ilir Barat padam sejak seminggu, warga khawatir keamanan.",
    ),
    (
        "Sampah menumpuk di TPS",
        "Sampah di TPS dekat sekolah belum diangkut selama empat hari dan menimbulkan bau.",
    ),
    (
        "Drainase tersumbat",
        "Saluran air tersumbat sehingga jalan tergenang setiap hujan deras turun di sore hari.",
    ),
    (
        "Pelayanan KTP lambat",
        "Pengurusan KTP elektronik di kecamatan memakan waktu lebih dari sebulan tanpa kejelasan.",
    ),
    (
        "Pohon tumbang",
        "Pohon tumbang menutup sebagian badan jalan dan belum ditangani petugas sejak kemarin.",
    ),
];

/// Sample complaint number `i`: `PLG-DEMO-<i>`, a topic, a reporter.
fn sample_complaint(i: usize) -> Value {
    let (title, content) = TOPICS[i % TOPICS.len()];
    SubmitDocument {
        local_ref: format!("PLG-DEMO-{i:04}"),
        title: title.into(),
        content: content.into(),
        category_id: 1 + (i % 5) as i64,
        disposition_id: None,
        location_id: None,
        date_of_incident: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default(),
        is_anonymous: None,
        is_secret: None,
        reporter: Some(SubmitReporter {
            name: Some(format!("Warga {i}")),
            phone: Some("08120000000".into()),
            ..SubmitReporter::default()
        }),
        attachments: None,
    }
    .to_json()
}

async fn seed(bridge: &crate::bridge::Bridge) -> anyhow::Result<()> {
    for i in 1..=30 {
        let mut doc = sample_complaint(i);
        // One complaint goes to an institution LAPOR! does not know: a
        // permanent failure for the dead-letter page.
        doc["disposition_id"] = json!(if i == 7 { 999_999 } else { 101 });
        doc["is_anonymous"] = json!(i % 9 == 0);
        doc["is_secret"] = json!(i % 11 == 0);
        doc["reporter"]["email"] = json!("warga@example.org");
        actions_submit(bridge, &doc).await?;
        if i % 3 == 0 {
            crate::actions::add_followup(
                bridge,
                &format!("PLG-DEMO-{i:04}"),
                "Laporan sedang ditindaklanjuti oleh dinas terkait.",
                false,
                "demo",
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    Ok(())
}

/// The city's side after the seed: a new complaint every five seconds,
/// every other one with a follow-up, so that the pending and retrying
/// states show during LAPOR!'s disruptions (see `upstream_activity`).
async fn city_activity(bridge: crate::bridge::Bridge, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    for i in 1.. {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let doc = sample_complaint(100 + i);
        let local_ref = format!("PLG-DEMO-{:04}", 100 + i);
        if let Err(e) = actions_submit(&bridge, &doc).await {
            tracing::warn!(error = %e, "demo: submitting a complaint failed");
            continue;
        }
        if i % 2 == 0
            && let Err(e) = crate::actions::add_followup(
                &bridge,
                &local_ref,
                "Petugas sudah dijadwalkan ke lokasi.",
                false,
                "demo",
            )
            .await
        {
            tracing::warn!(error = %e, "demo: adding a follow-up failed");
        }
    }
}

async fn actions_submit(bridge: &crate::bridge::Bridge, doc: &Value) -> anyhow::Result<()> {
    crate::actions::submit(bridge, doc, "demo")
        .await
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("seeding {}: {e}", doc["local_ref"]))
}

/// Complaints citizens filed on lapor.go.id: three new ones, and history
/// so that deadlines show at once.
async fn file_upstream_history(http: &reqwest::Client, root: &str) {
    for i in 0..3 {
        let _ = http
            .post(format!("{root}/_sim/complaints"))
            .json(&json!({"title": format!("Pengaduan warga dari LAPOR! #{}", i + 1),
                          "content": "Warga melaporkan kerusakan fasilitas umum melalui lapor.go.id.",
                          "disposition_id": 101, "category_id": 3}))
            .send()
            .await;
    }
    // History, so that deadlines show at once: complaints filed weeks ago
    // (their follow-up and completion deadlines passed), one of them closed.
    for (days_ago, title, close) in [
        (75, "Jembatan penyeberangan rusak", false),
        (12, "Air PDAM tidak mengalir", false),
        (40, "Parkir liar di trotoar", true),
    ] {
        let created = http
            .post(format!("{root}/_sim/complaints"))
            .json(&json!({"title": title, "days_ago": days_ago,
                          "content": "Pengaduan lama yang diajukan warga melalui lapor.go.id.",
                          "disposition_id": 101, "category_id": 2}))
            .send()
            .await;
        let id = match created {
            Ok(resp) => resp
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["complaint_id"].as_i64()),
            Err(_) => None,
        };
        if let (true, Some(id)) = (close, id) {
            let _ = http
                .post(format!("{root}/_sim/complaints/{id}/status"))
                .json(&json!({"status_name": "Selesai", "force": true}))
                .send()
                .await;
        }
    }
}

/// Every two minutes LAPOR! is disrupted for twenty seconds (most requests
/// fail), starting ten seconds in: deliveries retry, then catch up.
async fn disrupt(http: &reqwest::Client, root: &str, round: u32) {
    let faults = match round % 24 {
        2 => Some(json!({"error_rate": 0.6, "html_error_rate": 0.1, "latency_ms": [10, 60]})),
        6 => Some(MILD_FAULTS.clone()),
        _ => None,
    };
    if let Some(faults) = faults {
        let _ = http
            .post(format!("{root}/_sim/faults"))
            .json(&faults)
            .send()
            .await;
    }
}

/// What LAPOR!'s admin and reporters do to listed complaint `n` in `round`.
async fn act_on(http: &reqwest::Client, root: &str, round: u32, n: usize, c: &Value) {
    let Some(id) = c["id"].as_i64() else {
        return;
    };
    let status = c["status_name"].as_str().unwrap_or_default();
    // LAPOR!'s admin has not got to this one yet: its follow-up waits.
    if crate::lapor::types::carries_ref(c["tags_raw"].as_str().unwrap_or(""), UNVERIFIED) {
        return;
    }
    let next = match (status, (n as u32 + round) % 4) {
        ("Belum Terverifikasi", 0..=2) => Some("Terverifikasi"),
        ("Dalam Proses", 0) if round > 4 => Some("Selesai"),
        _ => None,
    };
    if let Some(next) = next {
        let _ = http
            .post(format!("{root}/_sim/complaints/{id}/status"))
            .json(&json!({"status_name": next}))
            .send()
            .await;
    }
    // One complaint gets a status name the bridge does not know: a
    // conflict for an operator.
    if round == 4 && n == 1 {
        let _ = http
            .post(format!("{root}/_sim/complaints/{id}/status"))
            .json(&json!({"status_name": "Menunggu Tanggapan Pelapor", "force": true}))
            .send()
            .await;
    }
    if round == 3 && n.is_multiple_of(5) {
        let _ = http
            .post(format!("{root}/_sim/complaints/{id}/followups"))
            .json(&json!({"content": "Terima kasih, mohon segera ditangani.", "institution_id": null}))
            .send()
            .await;
    }
}

/// LAPOR!'s side: the admin verifies complaints, citizens file new ones on
/// lapor.go.id, reporters answer, some complaints close.
async fn upstream_activity(
    http: reqwest::Client,
    root: String,
    stop: tokio_util::sync::CancellationToken,
) {
    file_upstream_history(&http, &root).await;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut round = 0u32;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        round += 1;
        disrupt(&http, &root, round).await;
        let Ok(resp) = http.get(format!("{root}/_sim/complaints")).send().await else {
            continue;
        };
        let Ok(all) = resp.json::<Value>().await else {
            continue;
        };
        let items = all["data"].as_array().cloned().unwrap_or_default();
        for (n, c) in items.iter().enumerate() {
            act_on(&http, &root, round, n, c).await;
        }
        if round == 6 {
            let _ = http
                .post(format!("{root}/_sim/complaints"))
                .json(&json!({"title": "Pengaduan baru dari lapor.go.id",
                              "content": "Trotoar rusak di depan kantor kelurahan, mohon diperbaiki.",
                              "disposition_id": 101, "category_id": 2}))
                .send()
                .await;
        }
    }
}
