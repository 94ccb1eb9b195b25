//! `lapor-bridge doctor` against the simulator: what passes on a LAPOR! that
//! speaks the contract, and what each misconfiguration or missing piece
//! answers; and that it never writes. `lapor-bridge healthcheck` too.

use std::collections::BTreeSet;
use std::process::Command;

use lapor_bridge::config::Settings;
use lapor_bridge::doctor::{Outcome, Report};
use lapor_bridge::lapor::AuthHeader;
use lapor_bridge::simulator::{self, RunningSimulator, SimulatorConfig};
use secrecy::SecretString;
use serde_json::{Value, json};

mod common;

fn settings_for(sim: &RunningSimulator) -> Settings {
    let mut s = Settings::default();
    s.lapor.base_url = sim.base_url();
    s.lapor.api_token = SecretString::from("api-token");
    s.lapor.instansi_token = SecretString::from("instansi-token");
    s.bridge.http_timeout_ms = 5_000;
    s.bridge.rate_limit_per_sec = 0;
    s
}

async fn sim_post(sim: &RunningSimulator, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.root_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn sim_get(sim: &RunningSimulator, path: &str) -> Value {
    common::get_json(&reqwest::Client::new(), format!("{}{path}", sim.root_url())).await
}

/// A simulator with one complaint in the inbox, with a follow-up.
async fn seeded() -> RunningSimulator {
    lapor_bridge::lapor::client::install_crypto_provider();
    let sim = simulator::spawn(SimulatorConfig::default()).await.unwrap();
    let created = sim_post(
        &sim,
        "/_sim/complaints",
        json!({"title": "Lampu jalan padam", "content": "Sejak seminggu lampu padam.",
               "disposition_id": 101}),
    )
    .await;
    let id = created["complaint_id"].as_i64().unwrap();
    sim_post(
        &sim,
        &format!("/_sim/complaints/{id}/followups"),
        json!({"content": "Mohon segera", "institution_id": null}),
    )
    .await;
    sim
}

fn outcome(report: &Report, name: &str) -> Outcome {
    report
        .check(name)
        .unwrap_or_else(|| panic!("no check {name}"))
        .outcome
}

fn text(report: &Report, name: &str) -> (String, String) {
    let c = report.check(name).unwrap();
    (c.detail.clone(), c.set.clone().unwrap_or_default())
}

const CHECKS: [&str; 10] = [
    "tls",
    "tokens",
    "institution",
    "create_path",
    "list_created",
    "list_inbox",
    "complaint_detail",
    "followups",
    "status_names",
    "clock",
];

#[tokio::test]
async fn a_lapor_that_speaks_the_contract_passes_and_nothing_is_written() {
    let sim = seeded().await;
    let before = sim_get(&sim, "/_sim/complaints").await;
    let report = lapor_bridge::doctor::run(&settings_for(&sim))
        .await
        .unwrap();
    let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(names, CHECKS);
    // http:// is not TLS: said, not failed.
    assert_eq!(outcome(&report, "tls"), Outcome::Unknown);
    assert!(text(&report, "tls").0.contains("not TLS"), "{report:?}");
    for name in &CHECKS[1..] {
        assert_eq!(outcome(&report, name), Outcome::Pass, "{name}: {report:#?}");
    }
    assert!(report.ok);
    assert!(
        text(&report, "list_inbox").0.contains("total 1"),
        "{report:?}"
    );
    assert!(
        text(&report, "followups").0.contains("1 follow-up"),
        "{report:?}"
    );
    assert!(
        text(&report, "status_names").0.contains("Terverifikasi"),
        "{report:?}"
    );

    // Read calls only: LAPOR! holds what it held, and no write endpoint
    // answered anything but the create path's 405 to a GET.
    assert_eq!(sim_get(&sim, "/_sim/complaints").await, before);
    let stats = sim_get(&sim, "/_sim/stats").await;
    let endpoints: BTreeSet<&str> = stats["requests"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        endpoints,
        BTreeSet::from(["create", "detail", "followups", "institutions", "list"]),
        "{stats}"
    );
    assert_eq!(stats["requests"]["create"], json!({"405": 1}), "{stats}");
    sim.shutdown();
}

#[tokio::test]
async fn a_wrong_auth_header_names_the_one_to_set_and_the_rest_still_runs() {
    let sim = seeded().await;
    let mut settings = settings_for(&sim);
    settings.lapor.auth_header = AuthHeader::Auth;
    let report = lapor_bridge::doctor::run(&settings).await.unwrap();
    assert_eq!(outcome(&report, "tokens"), Outcome::Fail);
    let (detail, set) = text(&report, "tokens");
    assert!(
        detail.contains("`auth: <token>`") && detail.contains("Authorization"),
        "{detail}"
    );
    assert_eq!(
        set,
        "auth_header = \"Authorization\" in [lapor] (LAPOR_AUTH_HEADER=Authorization)"
    );
    // The checks go on with the header that works.
    for name in [
        "institution",
        "create_path",
        "list_created",
        "list_inbox",
        "complaint_detail",
    ] {
        assert_eq!(outcome(&report, name), Outcome::Pass, "{name}: {report:#?}");
    }
    assert!(!report.ok);

    // Tokens wrong in both forms: said, and nothing else is guessed.
    let mut settings = settings_for(&sim);
    settings.lapor.api_token = SecretString::from("not-the-token");
    let report = lapor_bridge::doctor::run(&settings).await.unwrap();
    assert_eq!(outcome(&report, "tokens"), Outcome::Fail);
    let (detail, set) = text(&report, "tokens");
    assert!(
        detail.contains("401") && detail.contains("both header forms"),
        "{detail}"
    );
    assert!(set.contains("LAPOR_API_TOKEN"), "{set}");
    assert!(!detail.contains("not-the-token") && !set.contains("not-the-token"));
    assert_eq!(outcome(&report, "list_created"), Outcome::Unknown);
    sim.shutdown();
}

#[tokio::test]
async fn an_html_error_page_is_named_with_the_base_url_to_check() {
    let sim = seeded().await;
    sim_post(&sim, "/_sim/faults", json!({"html_error_rate": 1.0})).await;
    let report = lapor_bridge::doctor::run(&settings_for(&sim))
        .await
        .unwrap();
    assert_eq!(outcome(&report, "tokens"), Outcome::Fail);
    let (detail, set) = text(&report, "tokens");
    assert!(
        detail.contains("HTML page") && detail.contains("502"),
        "{detail}"
    );
    assert!(set.contains("LAPOR_BASE_URL"), "{set}");
    assert_eq!(outcome(&report, "list_inbox"), Outcome::Unknown);
    assert!(!report.ok);
    sim.shutdown();
}

#[tokio::test]
async fn a_missing_list_endpoint_fails_both_listings() {
    let sim = seeded().await;
    sim_post(&sim, "/_sim/faults", json!({"missing_list_endpoint": true})).await;
    // The fault answers 404 before the tokens are looked at.
    let resp = reqwest::Client::new()
        .get(format!("{}/complaints?scope=inbox", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::NOT_FOUND);

    let report = lapor_bridge::doctor::run(&settings_for(&sim))
        .await
        .unwrap();
    for name in ["list_created", "list_inbox"] {
        assert_eq!(outcome(&report, name), Outcome::Fail, "{name}");
        let (detail, _) = text(&report, name);
        assert!(
            detail.contains("404") && detail.contains("no list endpoint"),
            "{detail}"
        );
    }
    assert_eq!(outcome(&report, "tokens"), Outcome::Pass);
    assert_eq!(outcome(&report, "complaint_detail"), Outcome::Unknown);
    assert!(!report.ok);

    // Switched off again, the listings answer.
    sim_post(&sim, "/_sim/faults", json!({})).await;
    let report = lapor_bridge::doctor::run(&settings_for(&sim))
        .await
        .unwrap();
    assert_eq!(outcome(&report, "list_inbox"), Outcome::Pass);
    sim.shutdown();
}

#[tokio::test]
async fn an_unknown_status_name_says_what_to_map_and_a_missing_create_path_what_to_set() {
    let sim = seeded().await;
    let all = sim_get(&sim, "/_sim/complaints").await;
    let id = all["data"][0]["id"].as_i64().unwrap();
    sim_post(
        &sim,
        &format!("/_sim/complaints/{id}/status"),
        json!({"status_name": "Menunggu Tanggapan", "force": true}),
    )
    .await;
    let mut settings = settings_for(&sim);
    settings.lapor.create_path = "/complaints/pengaduan".into();
    let report = lapor_bridge::doctor::run(&settings).await.unwrap();
    assert_eq!(outcome(&report, "status_names"), Outcome::Fail);
    let (detail, set) = text(&report, "status_names");
    assert!(detail.contains("Menunggu Tanggapan"), "{detail}");
    assert!(
        set.starts_with("[lapor.status_names] \"Menunggu Tanggapan\" = \"<unverified|"),
        "{set}"
    );
    assert_eq!(outcome(&report, "create_path"), Outcome::Fail);
    assert!(text(&report, "create_path").1.contains("create_path"));

    // Mapped, it passes.
    let mut settings = settings_for(&sim);
    settings
        .lapor
        .status_names
        .insert("Menunggu Tanggapan".into(), "in_process".into());
    let report = lapor_bridge::doctor::run(&settings).await.unwrap();
    assert_eq!(
        outcome(&report, "status_names"),
        Outcome::Pass,
        "{report:#?}"
    );
    sim.shutdown();
}

/// The binary with only the given environment.
fn bridge_command(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lapor-bridge"));
    cmd.env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[tokio::test]
async fn the_doctor_command_prints_each_check_and_exits_1_on_a_failure() {
    let sim = seeded().await;
    let base = sim.base_url();
    let env = |header: &'static str| {
        vec![
            ("LAPOR_BASE_URL", base.clone()),
            ("LAPOR_API_TOKEN", "api-token".to_string()),
            ("LAPOR_INSTANSI_TOKEN", "instansi-token".to_string()),
            ("LAPOR_AUTH_HEADER", header.to_string()),
        ]
    };
    let run = |vars: Vec<(&'static str, String)>, args: &'static [&'static str]| async move {
        tokio::task::spawn_blocking(move || {
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            bridge_command(&vars).args(args).output().unwrap()
        })
        .await
        .unwrap()
    };
    let out = run(env("Authorization"), &["doctor"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("PASS     tokens"), "{stdout}");
    assert!(stdout.contains("UNKNOWN  tls"), "{stdout}");

    let out = run(env("auth"), &["doctor", "--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let tokens = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tokens")
        .unwrap();
    assert_eq!(tokens["outcome"], "FAIL");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("instansi-token"));
    sim.shutdown();
}

#[tokio::test]
async fn healthcheck_exits_0_on_a_healthy_bridge_and_1_otherwise() {
    let app = common::spawn_app().await;
    let served = common::serve(
        &app,
        "i-0123456789abcdef",
        "o-0123456789abcdef",
        "a-0123456789abcdef",
    )
    .await;
    let addr = served.base.trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let check = |listen: String| async move {
        tokio::task::spawn_blocking(move || {
            bridge_command(&[("BRIDGE_LISTEN", &listen)])
                .arg("healthcheck")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    // As the container runs it: listening on every interface.
    let out = check(format!("0.0.0.0:{port}")).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    served.shutdown.cancel();
    // Nothing listens any more.
    assert!(
        common::eventually(std::time::Duration::from_secs(10), || {
            let addr = addr.clone();
            async move { check(addr).await.status.code() == Some(1) }
        })
        .await
    );
    app.finish().await;
}
