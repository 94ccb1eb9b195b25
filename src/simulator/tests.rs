//! The simulator over real HTTP: `spawn` plus reqwest.

use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::lapor::timestamp;

struct Harness {
    sim: RunningSimulator,
    client: Client,
}

async fn start_with(config: SimulatorConfig) -> Harness {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = spawn(config).await.expect("simulator binds");
    let client = Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    Harness { sim, client }
}

async fn start() -> Harness {
    start_with(SimulatorConfig::default()).await
}

fn complaint_body(tag: &str) -> Value {
    json!({
        "title": "Jalan rusak di Jalan Sudirman",
        "content": "Jalan di depan pasar rusak parah sejak bulan lalu.",
        "category_id": 12,
        "disposition_id": 101,
        "date_of_incident": "2025-06-01",
        "is_anonymous": 0,
        "is_secret": 0,
        "tags_raw": format!("ref:{tag}"),
        "attachments": false,
    })
}

impl Harness {
    fn api(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    fn sim_url(&self, path: &str) -> String {
        format!("{}/_sim{}", self.sim.root_url(), path)
    }

    fn authed(&self, request: RequestBuilder) -> RequestBuilder {
        request
            .header("Authorization", "Bearer api-token")
            .header("token", "instansi-token")
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .authed(self.client.get(self.api(path)))
            .send()
            .await
            .expect("response");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .authed(self.client.post(self.api(path)))
            .json(body)
            .send()
            .await
            .expect("response");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn control(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.sim_url(path))
            .json(body)
            .send()
            .await
            .expect("response");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn control_get(&self, path: &str) -> Value {
        self.client
            .get(self.sim_url(path))
            .send()
            .await
            .expect("response")
            .json()
            .await
            .expect("json")
    }

    async fn create(&self, tag: &str) -> i64 {
        let (status, body) = self
            .post("/complaints/complaint", &complaint_body(tag))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["complaint_id"].as_i64().expect("complaint_id")
    }

    async fn followup(&self, complaint_id: i64, content: &str) -> (StatusCode, Value) {
        let form = Form::new()
            .text("complaint_id", complaint_id.to_string())
            .text("institution_from_id", "101")
            .text("institution_to_id", "1")
            .text("content", content.to_string())
            .text("is_secret", "0")
            .text("template_code", "")
            .text("rating", "0")
            .text("info_disposition", "");
        let response = self
            .authed(self.client.post(self.api("/complaints/followup/add")))
            .multipart(form)
            .send()
            .await
            .expect("response");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn count(&self) -> usize {
        self.control_get("/complaints").await["data"]
            .as_array()
            .map_or(0, Vec::len)
    }

    async fn faults(&self, set: Value) {
        let (status, body) = self.control("/faults", &set).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[test]
fn config_reads_the_environment_and_ignores_invalid_values() {
    let vars = |key: &str| match key {
        "LAPOR_API_TOKEN" => Some("a".to_string()),
        "LAPOR_AUTH_HEADER" => Some("auth".to_string()),
        "LAPOR_INSTITUTION_ID" => Some("nope".to_string()),
        _ => None,
    };
    let config = SimulatorConfig::from_vars(vars);
    assert_eq!(config.api_token, "a");
    assert_eq!(config.instansi_token, "instansi-token");
    assert_eq!(config.auth_header, AuthHeader::Auth);
    assert_eq!(config.institution_id, 101);
    let config =
        SimulatorConfig::from_vars(|key| (key == "LAPOR_AUTH_HEADER").then(|| "Bogus".to_string()));
    assert_eq!(config.auth_header, AuthHeader::AuthorizationBearer);
}

#[tokio::test]
async fn missing_or_wrong_tokens_are_401_and_both_bases_work() {
    let h = start().await;
    let url = h.api("/masters/institutions/external");
    let response = h.client.get(&url).send().await.expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"success": false, "message": "Unauthenticated."})
    );
    let wrong = h
        .client
        .get(&url)
        .header("Authorization", "Bearer api-token")
        .header("token", "other")
        .send()
        .await
        .expect("response");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let no_prefix = h
        .client
        .get(&url)
        .header("auth", "api-token")
        .header("token", "instansi-token")
        .send()
        .await
        .expect("response");
    assert_eq!(no_prefix.status(), StatusCode::UNAUTHORIZED);

    let (status, body) = h
        .get("/masters/institutions/external?page=1&page_size=1000")
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["results"]["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(names.contains(&"Pemerintah Kota Palembang"));
    assert!(names.contains(&"Admin LAPOR!"));
    assert_eq!(body["results"]["meta"]["page_size"], 1000);

    let root = h
        .authed(h.client.get(format!(
            "{}/masters/institutions/external",
            h.sim.root_url()
        )))
        .send()
        .await
        .expect("response");
    assert_eq!(root.status(), StatusCode::OK);
    h.sim.shutdown();
}

#[tokio::test]
async fn the_auth_header_is_configurable() {
    let h = start_with(SimulatorConfig {
        auth_header: AuthHeader::Auth,
        ..SimulatorConfig::default()
    })
    .await;
    let response = h
        .client
        .get(h.api("/masters/institutions/external"))
        .header("auth", "api-token")
        .header("token", "instansi-token")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = h.get("/masters/institutions/external").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_complaint_lives_through_verification_follow_up_and_forward() {
    let h = start().await;
    // Upload: images and docs are split by extension.
    let form = Form::new()
        .part(
            "attachments[]",
            Part::bytes(vec![1u8; 100]).file_name("foto.JPG"),
        )
        .part(
            "attachments[]",
            Part::bytes(vec![2u8; 100]).file_name("surat.pdf"),
        );
    let response = h
        .authed(h.client.post(h.api("/complaints/complaint/file")))
        .multipart(form)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::CREATED);
    let uploads: Value = response.json().await.expect("json");
    let image = uploads["results"]["images"][0]["id"]
        .as_i64()
        .expect("image");
    let doc = uploads["results"]["docs"][0]["id"].as_i64().expect("doc");
    assert_eq!(uploads["results"]["docs"][0]["file_name"], "surat.pdf");

    let mut body = complaint_body("PLG-2025-000123");
    body["attachments"] = json!(format!("[{image},{doc}]."));
    body["category_id"] = json!("12");
    let (status, created) = h.post("/complaints/complaint-lmw", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["message"], "Laporan berhasil dibuat");
    let id = created["complaint_id"].as_i64().expect("id");
    let tracking = created["tracking_id"]
        .as_str()
        .expect("tracking")
        .to_string();

    let (status, detail) = h.get(&format!("/complaints/{id}/complaint")).await;
    assert_eq!(status, StatusCode::OK);
    let data = &detail["results"]["data"];
    assert_eq!(data["tracking_id"], tracking.as_str());
    assert_eq!(data["status_code"], 1);
    assert_eq!(data["status_name"], "Belum Terverifikasi");
    assert_eq!(data["disposition_name"], "Pemerintah Kota Palembang");
    assert_eq!(data["tags_raw"], "ref:PLG-2025-000123");
    assert_eq!(data["category_id"], 12);
    let created_at = data["created_at"].as_str().expect("created_at");
    assert!(
        timestamp::parse_datetime(created_at).is_ok(),
        "{created_at}"
    );
    let logs = detail["results"]["data_logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["status_old"], Value::Null);
    assert_eq!(logs[0]["status_new"]["name"], "Belum Terverifikasi");

    // Not yet verified: 409.
    let (status, _) = h.followup(id, "Sedang kami tinjau.").await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Forward is not allowed from 1 either.
    let forward =
        json!({"is_request": 1, "reason": 102, "reason_description": "x", "not_authority": 1});
    let (status, _) = h
        .post(&format!("/complaints/process/{id}/reject"), &forward)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let before =
        h.control_get(&format!("/complaints/{id}")).await["data"]["updated_at_utc"].clone();
    let (status, body) = h
        .control(
            &format!("/complaints/{id}/status"),
            &json!({"status_name": "terverifikasi"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status_code"], 2);
    let after = h.control_get(&format!("/complaints/{id}")).await["data"]["updated_at_utc"].clone();
    assert_ne!(before, after);

    let (status, body) = h.followup(id, "Sedang kami tinjau.").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = body["results"]["data"]["id"].as_i64().expect("followup id");
    let (_, detail) = h.get(&format!("/complaints/{id}/complaint")).await;
    assert_eq!(detail["results"]["data"]["status_code"], 3);
    assert_eq!(detail["results"]["data"]["status_name"], "Dalam Proses");
    // 3 → 3 stays.
    let (status, _) = h.followup(id, "Perbaikan dijadwalkan.").await;
    assert_eq!(status, StatusCode::CREATED);

    // The reporter answers upstream.
    let (status, _) = h
        .control(
            &format!("/complaints/{id}/followups"),
            &json!({"content": "Terima kasih", "institution_id": null}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, followups) = h.get(&format!("/complaints/{id}/followups")).await;
    assert_eq!(status, StatusCode::OK);
    let list = followups["results"]["data"].as_array().expect("followups");
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["id"], first);
    assert_eq!(list[0]["institution"]["id"], 101);
    assert_eq!(list[2]["institution"], Value::Null);
    let at = list[0]["created_at"].as_str().expect("created_at");
    assert!(timestamp::parse_followup_datetime(at).is_ok(), "{at}");

    // Forward: disposition moves, status back to 2, a log entry.
    let (status, body) = h
        .post(&format!("/complaints/process/{id}/reject"), &forward)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, detail) = h.get(&format!("/complaints/{id}/complaint")).await;
    assert_eq!(detail["results"]["data"]["disposition_id"], 102);
    assert_eq!(detail["results"]["data"]["status_code"], 2);
    let logs = detail["results"]["data_logs"].as_array().expect("logs");
    let last = logs.last().expect("log");
    assert_eq!(last["institution_from"]["id"], 101);
    assert_eq!(last["institution_to"]["id"], 102);

    // Disallowed and unknown transitions; a forced raw name.
    let status_url = format!("/complaints/{id}/status");
    let (status, _) = h
        .control(&status_url, &json!({"status_name": "Selesai"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = h
        .control(&status_url, &json!({"status_name": "Menunggu Tanggapan"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = h
        .control(
            &status_url,
            &json!({"status_name": "Menunggu Tanggapan", "force": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, detail) = h.get(&format!("/complaints/{id}/complaint")).await;
    assert_eq!(detail["results"]["data"]["status_code"], 0);
    assert_eq!(
        detail["results"]["data"]["status_name"],
        "Menunggu Tanggapan"
    );

    let (status, body) = h.get("/complaints/999999999/complaint").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Data tidak ditemukan");
    let (status, _) = h.get("/complaints/abc/followups").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = h.get("/no/such/endpoint").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["success"], false);

    let all = h.control_get("/complaints").await;
    let c = &all["data"][0];
    assert_eq!(c["created_via_api"], true);
    assert_eq!(c["attachments"], json!([image, doc]));
    assert_eq!(c["followups"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn create_validates_every_field() {
    let h = start().await;
    let body = json!({
        "title": "",
        "content": "pendek",
        "category_id": "dua belas",
        "disposition_id": 999,
        "date_of_incident": "01-06-2025",
        "is_anonymous": 2,
        "tags_raw": "x".repeat(256),
        "attachments": "[1,2",
    });
    let (status, body) = h.post("/complaints/complaint", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = body["errors"].as_object().expect("errors");
    for field in [
        "title",
        "content",
        "category_id",
        "disposition_id",
        "date_of_incident",
        "is_anonymous",
        "is_secret",
        "tags_raw",
        "attachments",
    ] {
        assert!(errors.contains_key(field), "{field}: {body}");
    }
    let mut long = complaint_body("x");
    long["title"] = json!("é".repeat(151));
    let (status, body) = h.post("/complaints/complaint", &long).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["title"].is_array());
    long["title"] = json!("é".repeat(150));
    long["attachments"] = json!("[]");
    long["is_secret"] = json!("1");
    let (status, _) = h.post("/complaints/complaint", &long).await;
    assert_eq!(status, StatusCode::CREATED);
    // Unknown upload ids.
    let mut unknown = complaint_body("x");
    unknown["attachments"] = json!("[424242]");
    let (status, _) = h.post("/complaints/complaint", &unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let response = h
        .authed(h.client.post(h.api("/complaints/complaint")))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json error body");
    assert_eq!(body["success"], false);
}

#[tokio::test]
async fn uploads_over_10_mib_are_413() {
    let h = start().await;
    let form = Form::new().part(
        "attachments[]",
        Part::bytes(vec![0u8; 10 * 1024 * 1024 + 1]).file_name("besar.pdf"),
    );
    let response = h
        .authed(h.client.post(h.api("/complaints/complaint/file")))
        .multipart(form)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn lists_page_by_updated_at_and_scope() {
    let h = start().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(h.create(&format!("L{i}")).await);
    }
    let (_, citizen) = h
        .control(
            "/complaints",
            &json!({"title": "Lampu jalan mati", "content": "Lampu mati", "disposition_id": 101}),
        )
        .await;
    let citizen_id = citizen["complaint_id"].as_i64().expect("id");
    let (_, other) = h
        .control("/complaints", &json!({"disposition_id": 102}))
        .await;
    assert!(other["tracking_id"].is_string());

    let (status, page) = h.get("/complaints?scope=created&page=1&page_size=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["results"]["meta"]["total"], 5);
    let ids: Vec<i64> = page["results"]["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    assert_eq!(ids, created[..2]);
    let (_, page3) = h.get("/complaints?scope=created&page=3&page_size=2").await;
    assert_eq!(page3["results"]["data"].as_array().map(Vec::len), Some(1));

    // Inbox: dispositioned to 101, whoever created it.
    let (_, inbox) = h.get("/complaints?scope=inbox&page_size=100").await;
    assert_eq!(inbox["results"]["meta"]["total"], 6);
    let (_, body) = h.get("/complaints?scope=created&page_size=100").await;
    let ids: Vec<i64> = body["results"]["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    assert!(!ids.contains(&citizen_id));

    // A change moves a complaint to the latest second (ties by id: several
    // changes may share a second); updated_from is inclusive.
    let (status, _) = h
        .control(
            &format!("/complaints/{}/status", created[0]),
            &json!({"status_name": "Terverifikasi"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = h.get("/complaints?scope=created").await;
    let data = body["results"]["data"].as_array().expect("data");
    let keys: Vec<(String, i64)> = data
        .iter()
        .map(|c| {
            let at = c["updated_at"].as_str().unwrap_or_default().to_string();
            (at, c["id"].as_i64().unwrap_or_default())
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let changed = data
        .iter()
        .find(|c| c["id"] == created[0])
        .expect("changed complaint listed");
    let from = changed["updated_at"]
        .as_str()
        .expect("updated_at")
        .to_string();
    assert_eq!(Some(&from), keys.iter().map(|(at, _)| at).max());
    let (status, body) = h
        .get(&format!(
            "/complaints?scope=created&updated_from={}",
            from.replace(' ', "%20")
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = body["results"]["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    assert!(ids.contains(&created[0]));
    let (_, body) = h
        .get("/complaints?scope=created&updated_from=2099-01-01%2000:00:00")
        .await;
    assert_eq!(body["results"]["meta"]["total"], 0);

    for bad in [
        "/complaints?scope=created&page_size=101",
        "/complaints?scope=everything",
        "/complaints",
        "/complaints?scope=created&updated_from=2025-06-01T00:00:00Z",
        "/complaints?scope=created&page=0",
    ] {
        let (status, _) = h.get(bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn error_and_html_faults_do_not_apply_the_request() {
    let h = start().await;
    h.faults(json!({"error_rate": 1.0})).await;
    let current = h.control_get("/faults").await;
    assert_eq!(current["error_status"], 503);
    let (status, body) = h.post("/complaints/complaint", &complaint_body("e")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["success"], false);

    h.faults(json!({"error_rate": 1.0, "error_status": 500}))
        .await;
    let (status, _) = h.get("/complaints?scope=created").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    h.faults(json!({"html_error_rate": 1.0})).await;
    let response = h
        .authed(h.client.post(h.api("/complaints/complaint")))
        .json(&complaint_body("h"))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(response.text().await.expect("text").contains("<html>"));

    // The control surface is never faulted.
    assert_eq!(h.count().await, 0);
    h.faults(json!({})).await;
    h.create("ok").await;
    assert_eq!(h.count().await, 1);

    let stats = h.control_get("/stats").await;
    assert_eq!(stats["requests"]["create"]["503"], 1);
    assert_eq!(stats["requests"]["create"]["502"], 1);
    assert_eq!(stats["requests"]["create"]["201"], 1);
    assert_eq!(stats["requests"]["list"]["500"], 1);

    let (status, _) = h.control("/faults", &json!({"error_rate": 2})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = h.control("/faults", &json!({"eror_rate": 0.5})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, _) = h.control("/reset", &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.count().await, 0);
    assert_eq!(
        h.control_get("/stats").await,
        json!({"requests": {}, "in_flight": 0})
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let h = start().await;
    h.faults(json!({"rate_limit_per_sec": 2})).await;
    let mut limited = None;
    for _ in 0..6 {
        let response = h
            .authed(h.client.get(h.api("/masters/institutions/external")))
            .send()
            .await
            .expect("response");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("a 429 within 6 requests at 2/s");
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = h.get("/masters/institutions/external").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_bodies_are_truncated_json_and_writes_are_not_applied() {
    let h = start().await;
    let id = h.create("m").await;
    h.faults(json!({"malformed_rate": 1.0})).await;
    let response = h
        .authed(h.client.get(h.api(&format!("/complaints/{id}/complaint"))))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("text");
    assert!(text.starts_with('{'), "{text}");
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    let response = h
        .authed(h.client.post(h.api("/complaints/complaint")))
        .json(&complaint_body("m2"))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("text");
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(h.count().await, 1);
}

#[tokio::test]
async fn drop_after_commit_applies_then_closes_the_connection() {
    let h = start().await;
    h.faults(json!({"drop_after_commit_rate": 1.0})).await;
    let result = h
        .authed(h.client.post(h.api("/complaints/complaint")))
        .json(&complaint_body("d"))
        .send()
        .await;
    let error = result.expect_err("no response");
    // hyper: IncompleteMessage, the connection closed without an answer.
    assert!(error.is_request() && !error.is_status(), "{error:?}");
    assert_eq!(h.count().await, 1);
    let all = h.control_get("/complaints").await;
    assert_eq!(all["data"][0]["tags_raw"], "ref:d");
    // The simulator keeps serving.
    h.faults(json!({})).await;
    let (status, _) = h.get("/complaints?scope=created").await;
    assert_eq!(status, StatusCode::OK);
    let stats = h.control_get("/stats").await;
    assert_eq!(stats["requests"]["create"]["dropped"], 1);
}

#[tokio::test]
async fn timeouts_hold_then_answer_504_without_applying() {
    let h = start().await;
    h.faults(json!({"timeout_rate": 1.0, "timeout_hold_ms": 200}))
        .await;
    let started = Instant::now();
    let response = h
        .authed(h.client.post(h.api("/complaints/complaint")))
        .json(&complaint_body("t"))
        .send()
        .await
        .expect("response");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(h.count().await, 0);
    assert_eq!(h.control_get("/faults").await["timeout_hold_ms"], 200);
}

#[tokio::test]
async fn latency_delays_requests() {
    let h = start().await;
    h.faults(json!({"latency_ms": [150, 200]})).await;
    let started = Instant::now();
    let (status, _) = h.get("/masters/institutions/external").await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn shutdown_releases_held_requests_and_stops_serving() {
    let h = start().await;
    h.faults(json!({"timeout_rate": 1.0})).await;
    let client = h.client.clone();
    let url = h.api("/masters/institutions/external");
    let held = tokio::spawn(async move {
        client
            .get(url)
            .header("Authorization", "Bearer api-token")
            .header("token", "instansi-token")
            .send()
            .await
            .map(|r| r.status())
    });
    // The held request is on the wire before the server stops.
    let until = Instant::now() + Duration::from_secs(5);
    while h.control_get("/stats").await["in_flight"] != 1 {
        assert!(Instant::now() < until, "the request never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    h.sim.shutdown();
    let status = held.await.expect("task");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status.ok(), Some(StatusCode::GATEWAY_TIMEOUT));
}

/// A rough throughput check: `cargo test --release --lib simulator::tests::throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, not a check"]
async fn throughput() {
    let h = std::sync::Arc::new(start().await);
    let started = Instant::now();
    let total = 20_000usize;
    let workers = 64usize;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..total / workers {
                let id = h.create(&format!("T{w}-{i}")).await;
                let (status, _) = h.get(&format!("/complaints/{id}/complaint")).await;
                assert_eq!(status, StatusCode::OK);
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker");
    }
    let elapsed = started.elapsed();
    let requests = 2 * (total / workers) * workers;
    eprintln!(
        "{requests} requests in {elapsed:?}: {:.0}/s",
        requests as f64 / elapsed.as_secs_f64()
    );
    let (_, body) = h.get("/complaints?scope=created&page_size=100").await;
    assert_eq!(
        body["results"]["meta"]["total"].as_u64(),
        Some(((total / workers) * workers) as u64)
    );
}
