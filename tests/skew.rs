//! Leases on the database's clock: two real daemons share one database, one
//! of them running with its clock 120 s ahead (`faketime`, Debian package
//! `faketime`). Nothing crashes, so nothing may be rescued, and every
//! complaint is filed once.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use lapor_bridge::simulator::{self, SimulatorConfig};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_lapor-bridge");

struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // Each daemon leads its own process group: `faketime` forks
            // the daemon and waits, so killing it alone would leave the
            // daemon running.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn metric(http: &reqwest::Client, port: u16, name: &str) -> Option<f64> {
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_clock_runs_ahead_rescues_no_live_lease() {
    assert!(
        Command::new("faketime").arg("--version").output().is_ok(),
        "this test needs faketime (Debian package `faketime`)"
    );
    lapor_bridge::lapor::client::install_crypto_provider();
    let db = TestDb::create().await;
    let sim = simulator::spawn(SimulatorConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    let settings = test_settings(&db.url, &sim.base_url());
    let pool = lapor_bridge::db::connect(&settings.database).await.unwrap();
    lapor_bridge::db::migrate(&pool).await.unwrap();
    let dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("skew-{}", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("lapor-bridge.toml");
    // Short leases, so that a replica 120 s ahead would see every lease of
    // the other one as long expired.
    std::fs::write(&config, "[bridge]\nlease_secs = 6\n").unwrap();
    // Every call is slow: leases are held across several heartbeats.
    http.post(format!("{}/_sim/faults", sim.root_url()))
        .json(&json!({"latency_ms": [4000, 4000]}))
        .send()
        .await
        .unwrap();

    let ports = [free_port(), free_port()];
    let mut daemons = Daemons(Vec::new());
    for (i, port) in ports.iter().enumerate() {
        let log = std::fs::File::create(dir.join(format!("daemon-{i}.log"))).unwrap();
        let mut cmd = if i == 1 {
            let mut c = Command::new("faketime");
            c.args(["-f", "+120s", BIN]);
            c
        } else {
            Command::new(BIN)
        };
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.arg("--config")
            .arg(&config)
            .arg("run")
            .env("DATABASE_URL", &db.url)
            .env("LAPOR_BASE_URL", sim.base_url())
            .env("LAPOR_API_TOKEN", "api-token")
            .env("LAPOR_INSTANSI_TOKEN", "instansi-token")
            .env("BRIDGE_LISTEN", format!("127.0.0.1:{port}"))
            .env("BRIDGE_PII_KEY", common::TEST_PII_KEY)
            .env("BRIDGE_CONCURRENCY", "4")
            .env("BRIDGE_HTTP_TIMEOUT_MS", "10000")
            .env("BRIDGE_POLL_INTERVAL_SECS", "3600")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        daemons.0.push(cmd.spawn().expect("start lapor-bridge run"));
    }
    for port in ports {
        assert!(
            eventually(Duration::from_secs(60), || async {
                http.get(format!("http://127.0.0.1:{port}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            })
            .await,
            "daemon on {port} never answered; logs in {}",
            dir.display()
        );
    }
    let bridge = lapor_bridge::bridge::Bridge::new(
        pool.clone(),
        settings,
        std::sync::Arc::new(lapor_bridge::clock::SystemClock),
    )
    .unwrap();
    // Enough for leases to be held across at least two maintenance ticks
    // (every 10 s) of the replica that runs ahead.
    for i in 0..40 {
        lapor_bridge::actions::submit(&bridge, &complaint_doc(&format!("PLG-SK-{i:02}")), "t")
            .await
            .unwrap();
    }
    let rescued = || async {
        let mut total = 0.0;
        for port in ports {
            total += metric(&http, port, "lapor_bridge_outbox_rescued_total")
                .await
                .expect("metrics answer");
        }
        total
    };
    let done = eventually(Duration::from_secs(120), || async {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.outbox WHERE state <> 'done'")
                .fetch_one(&pool)
                .await
                .unwrap();
        left == 0 || rescued().await > 0.0
    })
    .await;
    assert_eq!(rescued().await, 0.0, "a live lease was rescued");
    assert!(done, "every step finished; logs in {}", dir.display());
    let upstream = get_json(&http, format!("{}/_sim/complaints", sim.root_url())).await;
    assert_eq!(
        upstream["data"].as_array().map(Vec::len),
        Some(40),
        "each filed once"
    );
    drop(daemons);
    pool.close().await;
    sim.shutdown();
    db.drop_db().await;
}
