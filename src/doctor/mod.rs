//! `lapor-bridge doctor`: first contact with a real LAPOR!. Read calls only
//! (every probe is a GET; nothing is created, followed up or forwarded),
//! each check answering PASS, FAIL or UNKNOWN with what to set when it
//! fails. The probes themselves live in `crate::lapor` (the wire format).

mod cert;

pub use cert::not_after;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::config::Settings;
use crate::lapor::AuthHeader;
use crate::lapor::client::{ClientBuildError, Probe, Seen};
use crate::lapor::types::{ComplaintSummary, Scope, SummaryPage};
use crate::lapor::{FailureKind, LaporClient, LaporError, Status, StatusName};
use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Pass,
    Fail,
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Unknown => "UNKNOWN",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
    /// What to set (or do) about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
}

/// Every check, in order; `ok` when none failed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub base_url: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

fn check(name: &'static str, outcome: Outcome, detail: impl Into<String>) -> Check {
    Check {
        name,
        outcome,
        detail: detail.into(),
        set: None,
    }
}

impl Check {
    fn set(mut self, what: impl Into<String>) -> Self {
        self.set = Some(what.into());
        self
    }
}

fn header_name(h: AuthHeader) -> &'static str {
    match h {
        AuthHeader::AuthorizationBearer => "Authorization",
        AuthHeader::Auth => "auth",
    }
}

fn header_form(h: AuthHeader) -> &'static str {
    match h {
        AuthHeader::AuthorizationBearer => "`Authorization: Bearer <token>`",
        AuthHeader::Auth => "`auth: <token>`",
    }
}

/// What went wrong in words, with the HTTP status when there was one.
fn describe(e: &LaporError, seen: &Seen) -> String {
    let status = seen
        .status
        .map(|s| format!("HTTP {s}: "))
        .unwrap_or_default();
    format!("{status}{}", e.message())
}

/// The probes' answers, for the TLS and clock checks.
#[derive(Default)]
struct Answers(Vec<Seen>);

impl Answers {
    fn keep<T>(&mut self, probe: &Probe<T>) {
        self.0.push(probe.seen.clone());
    }
}

/// Runs every check against the configured LAPOR!.
pub async fn run(settings: &Settings) -> Result<Report, ClientBuildError> {
    let lapor = &settings.lapor;
    let timeout = Duration::from_millis(settings.bridge.http_timeout_ms);
    let rate = settings.bridge.rate_limit_per_sec;
    let metrics = Arc::new(Metrics::default());
    let mut client = LaporClient::for_probes(lapor, timeout, rate, metrics.clone())?;
    let mut checks = Vec::new();
    let mut answers = Answers::default();

    // The tokens, through the institutions list.
    let institutions = client.probe_institutions().await;
    answers.keep(&institutions);
    let mut reachable = true;
    let tokens = match &institutions.result {
        Ok(list) => check(
            "tokens",
            Outcome::Pass,
            format!(
                "LAPOR! accepts the tokens ({} and `token`); {} institution(s) listed",
                header_form(lapor.auth_header),
                list.len()
            ),
        ),
        Err(LaporError::Unauthorized { status, .. }) => {
            let (found, alt) =
                other_header_check(lapor, *status, timeout, rate, &metrics, &mut answers).await?;
            match alt {
                Some(alt) => client = alt,
                None => reachable = false,
            }
            found
        }
        Err(e) => {
            reachable = false;
            unreachable_check(lapor, e, &institutions.seen)
        }
    };
    let tls_from_first = tls_failure(&institutions);
    checks.push(tokens);

    if !reachable {
        not_checked(&mut checks);
    } else {
        reachable_checks(settings, &client, &institutions, &mut answers, &mut checks).await;
    }
    checks.insert(0, tls_check(&lapor.base_url, &answers, tls_from_first));
    checks.push(clock_check(settings, &answers));
    Ok(Report {
        ok: checks.iter().all(|c| c.outcome != Outcome::Fail),
        base_url: lapor.base_url.clone(),
        checks,
    })
}

/// The API token refused in the configured header form: tries the other
/// form (also a read), which says which to set. The other form's client
/// when it works.
async fn other_header_check(
    lapor: &crate::lapor::LaporSettings,
    status: u16,
    timeout: Duration,
    rate: u32,
    metrics: &Arc<Metrics>,
    answers: &mut Answers,
) -> Result<(Check, Option<LaporClient>), ClientBuildError> {
    // The other header form, also a read: says which to set.
    let other = match lapor.auth_header {
        AuthHeader::AuthorizationBearer => AuthHeader::Auth,
        AuthHeader::Auth => AuthHeader::AuthorizationBearer,
    };
    let mut other_settings = lapor.clone();
    other_settings.auth_header = other;
    let alt = LaporClient::for_probes(&other_settings, timeout, rate, metrics.clone())?;
    let retry = alt.probe_institutions().await;
    answers.keep(&retry);
    if retry.result.is_ok() {
        let found = check(
            "tokens",
            Outcome::Fail,
            format!(
                "LAPOR! refused the API token in {} ({status}) and accepts it in {}; \
                 the checks below use {}",
                header_form(lapor.auth_header),
                header_form(other),
                header_form(other)
            ),
        )
        .set(format!(
            "auth_header = \"{}\" in [lapor] (LAPOR_AUTH_HEADER={})",
            header_name(other),
            header_name(other)
        ));
        return Ok((found, Some(alt)));
    }
    let empty = lapor.api_token.expose_secret().is_empty()
        || lapor.instansi_token.expose_secret().is_empty();
    Ok((
        check(
            "tokens",
            Outcome::Fail,
            format!(
                "LAPOR! refused the tokens ({status}) in both header forms{}",
                if empty { "; a token is empty" } else { "" }
            ),
        )
        .set(
            "LAPOR_API_TOKEN and LAPOR_INSTANSI_TOKEN: this account's tokens from \
             LAPOR!'s admin panel",
        ),
        None,
    ))
}

/// The institutions list failed for another reason than the tokens: an
/// HTML page, no such endpoint, no route, or an error.
fn unreachable_check(lapor: &crate::lapor::LaporSettings, e: &LaporError, seen: &Seen) -> Check {
    if seen.html {
        check(
            "tokens",
            Outcome::Fail,
            format!(
                "LAPOR! answered an HTML page where JSON was expected ({})",
                describe(e, seen)
            ),
        )
        .set(
            "LAPOR_BASE_URL: the API root (e.g. https://<lapor-api-host>/api), not the \
             website; or LAPOR! (or a proxy in front of it) is down: try again later",
        )
    } else if seen.status == Some(404) {
        check(
            "tokens",
            Outcome::Fail,
            format!(
                "no institutions endpoint under {} ({})",
                lapor.base_url,
                describe(e, seen)
            ),
        )
        .set("LAPOR_BASE_URL: the API root, under which /masters/institutions/external is")
    } else if seen.status.is_none() {
        check(
            "tokens",
            Outcome::Fail,
            format!("cannot reach LAPOR!: {}", e.message()),
        )
        .set("LAPOR_BASE_URL, and this machine's route to it (DNS, firewall, proxy)")
    } else {
        check(
            "tokens",
            Outcome::Fail,
            format!("the institutions list failed: {}", describe(e, seen)),
        )
    }
}

/// Every check that needs LAPOR! to accept the tokens, as not checked.
fn not_checked(checks: &mut Vec<Check>) {
    let why = "not checked: the tokens check failed";
    for name in [
        "institution",
        "create_path",
        "list_created",
        "list_inbox",
        "complaint_detail",
        "followups",
        "status_names",
    ] {
        checks.push(check(name, Outcome::Unknown, why));
    }
}

/// The checks after the tokens were accepted: institution, create path,
/// both listings, one complaint's detail and follow-ups, status names.
async fn reachable_checks(
    settings: &Settings,
    client: &LaporClient,
    institutions: &Probe<Vec<crate::lapor::types::Institution>>,
    answers: &mut Answers,
    checks: &mut Vec<Check>,
) {
    checks.push(institution_check(settings, client, institutions).await);
    let create = client.probe_create_path().await;
    answers.keep(&create);
    checks.push(create_path_check(client, &create));

    let mut names: Vec<String> = Vec::new();
    let mut first_id = None;
    for (name, scope) in [
        ("list_created", Scope::Created),
        ("list_inbox", Scope::Inbox),
    ] {
        let probe = client.probe_list(scope, 5).await;
        answers.keep(&probe);
        if let Ok(page) = &probe.result {
            names.extend(page.items.iter().map(|s| s.status_name.clone()));
            first_id = first_id.or(page.items.first().map(|s| s.id));
        }
        checks.push(list_check(name, scope, &probe));
    }
    match first_id {
        None => {
            let why = "no complaint listed to read (neither listing shows one)";
            checks.push(check("complaint_detail", Outcome::Unknown, why));
            checks.push(check("followups", Outcome::Unknown, why));
        }
        Some(id) => complaint_checks(client, id, &mut names, answers, checks).await,
    }
    checks.push(status_names_check(client, &names));
}

/// One listed complaint's detail and follow-ups; the status names seen go
/// to `names`.
async fn complaint_checks(
    client: &LaporClient,
    id: i64,
    names: &mut Vec<String>,
    answers: &mut Answers,
    checks: &mut Vec<Check>,
) {
    let detail = client.probe_complaint(id).await;
    answers.keep(&detail);
    checks.push(match &detail.result {
        Ok(d) => {
            names.push(d.status_name.clone());
            for log in &d.logs {
                names.extend(log.status_old.iter().cloned());
                names.extend(log.status_new.iter().cloned());
            }
            check(
                "complaint_detail",
                Outcome::Pass,
                format!(
                    "complaint {id} reads: status {:?}, disposition {}, {} log entr(ies)",
                    d.status_name,
                    d.disposition_id
                        .map_or_else(|| "-".to_string(), |i| i.to_string()),
                    d.logs.len()
                ),
            )
        }
        Err(e) => shape_failure("complaint_detail", id, e, &detail.seen),
    });
    let followups = client.probe_followups(id).await;
    answers.keep(&followups);
    checks.push(match &followups.result {
        Ok(list) => check(
            "followups",
            Outcome::Pass,
            format!("complaint {id}: {} follow-up(s) read", list.len()),
        ),
        Err(e) => shape_failure("followups", id, e, &followups.seen),
    });
}

/// A connection that failed on the certificate.
fn tls_failure<T>(probe: &Probe<T>) -> Option<String> {
    match &probe.result {
        Err(e) if probe.seen.status.is_none() => {
            let m = e.message().to_lowercase();
            (m.contains("certificate") || m.contains("tls") || m.contains("handshake"))
                .then(|| e.message().to_string())
        }
        _ => None,
    }
}

fn tls_check(base_url: &str, answers: &Answers, failure: Option<String>) -> Check {
    if !base_url.starts_with("https://") {
        return check(
            "tls",
            Outcome::Unknown,
            format!("not TLS: LAPOR_BASE_URL is {base_url}"),
        );
    }
    if let Some(message) = failure {
        return check(
            "tls",
            Outcome::Fail,
            format!("the certificate chain does not verify: {message}"),
        )
        .set(
            "nothing in the bridge: LAPOR!'s certificate must chain to a root this machine \
             trusts (its system store); check the host name in LAPOR_BASE_URL",
        );
    }
    let Some(der) = answers.0.iter().find_map(|s| s.peer_certificate.as_ref()) else {
        return check("tls", Outcome::Unknown, "no TLS answer came from LAPOR!");
    };
    match not_after(der) {
        Some(until) => {
            let days = (until - Utc::now()).num_days();
            check(
                "tls",
                Outcome::Pass,
                format!(
                    "the certificate chain verifies; the certificate expires {} ({days} days){}",
                    until.format("%Y-%m-%d"),
                    if days < 14 { ": soon" } else { "" }
                ),
            )
        }
        None => check(
            "tls",
            Outcome::Pass,
            "the certificate chain verifies; its expiry could not be read",
        ),
    }
}

async fn institution_check(
    settings: &Settings,
    client: &LaporClient,
    first: &Probe<Vec<crate::lapor::types::Institution>>,
) -> Check {
    let own = settings.lapor.institution_id;
    let list = match &first.result {
        Ok(list) => list.clone(),
        Err(_) => match client.probe_institutions().await.result {
            Ok(list) => list,
            Err(e) => {
                return check(
                    "institution",
                    Outcome::Unknown,
                    format!("the institutions list failed: {}", e.message()),
                );
            }
        },
    };
    match list.iter().find(|i| i.id == own) {
        Some(i) => check(
            "institution",
            Outcome::Pass,
            format!("LAPOR_INSTITUTION_ID {own} is {:?}", i.name),
        ),
        None => check(
            "institution",
            Outcome::Fail,
            format!(
                "LAPOR_INSTITUTION_ID {own} is not among the {} institution(s) LAPOR! lists",
                list.len()
            ),
        )
        .set("LAPOR_INSTITUTION_ID: this city's id in LAPOR!'s institutions list"),
    }
}

fn create_path_check(client: &LaporClient, probe: &Probe<()>) -> Check {
    let path = client.create_path();
    match probe.seen.status {
        Some(405) => check(
            "create_path",
            Outcome::Pass,
            format!(
                "{path} exists (a GET answers 405: it takes POST); not called, doctor never writes"
            ),
        ),
        Some(404) => check(
            "create_path",
            Outcome::Fail,
            format!("nothing at {path} (a GET answers 404)"),
        )
        .set(
            "create_path in [lapor]: the create path of this account type \
             (integrators have used \"/complaints/complaint-lmw\")",
        ),
        Some(status) => check(
            "create_path",
            Outcome::Unknown,
            format!(
                "{path} answers {status} to a GET; whether a POST creates is not checked \
                 (doctor never writes)"
            ),
        ),
        None => check(
            "create_path",
            Outcome::Unknown,
            match &probe.result {
                Err(e) => format!("no answer: {}", e.message()),
                Ok(()) => "no answer".to_string(),
            },
        ),
    }
}

/// Ordered as the contract says: `updated_at` ascending, then id.
fn ordered(items: &[ComplaintSummary]) -> bool {
    items
        .windows(2)
        .all(|w| (w[0].updated_at, w[0].id) <= (w[1].updated_at, w[1].id))
}

fn list_check(name: &'static str, scope: Scope, probe: &Probe<SummaryPage>) -> Check {
    let what = format!("GET /complaints?scope={}", scope.as_str());
    match &probe.result {
        Ok(page) if !ordered(&page.items) => check(
            name,
            Outcome::Fail,
            format!(
                "{what} answers, but not ordered by updated_at ascending: the pull and \
                 the lookups of lost creates page on that order"
            ),
        ),
        Ok(page) => check(
            name,
            Outcome::Pass,
            format!(
                "{what} pages with results.meta: page {}, page_size {}{}, total {}; {} item(s) on page 1",
                page.page,
                page.page_size,
                if page.page_size == 5 {
                    String::new()
                } else {
                    " (asked for 5)".to_string()
                },
                page.total,
                page.items.len()
            ),
        ),
        Err(e) if probe.seen.status == Some(404) => check(
            name,
            Outcome::Fail,
            format!(
                "{what} answers 404: this LAPOR! has no list endpoint (it is ASSUMED in the \
                 wire contract); without it the bridge cannot import the inbox nor look up a \
                 create whose answer was lost ({})",
                e.message()
            ),
        )
        .set(
            "nothing in the configuration covers it: ask LAPOR! for this account's listing \
             endpoint and report it to the bridge's maintainers",
        ),
        Err(e) => check(
            name,
            Outcome::Fail,
            format!("{what} failed: {}", describe(e, &probe.seen)),
        ),
    }
}

fn shape_failure(name: &'static str, id: i64, e: &LaporError, seen: &Seen) -> Check {
    let malformed = matches!(
        e,
        LaporError::Retryable {
            kind: FailureKind::Malformed,
            ..
        }
    );
    let c = check(
        name,
        Outcome::Fail,
        format!("complaint {id}: {}", describe(e, seen)),
    );
    if malformed {
        c.set("nothing to set: LAPOR!'s document differs from the wire contract; report the field named")
    } else {
        c
    }
}

fn status_names_check(client: &LaporClient, names: &[String]) -> Check {
    let mut seen: Vec<&str> = names.iter().map(|n| n.trim()).collect();
    seen.sort_unstable();
    seen.dedup();
    if seen.is_empty() {
        return check(
            "status_names",
            Outcome::Unknown,
            "no status name seen (no complaint listed)",
        );
    }
    let unknown: Vec<&str> = seen
        .iter()
        .copied()
        .filter(|n| matches!(client.statuses().map(n), StatusName::Unknown(_)))
        .collect();
    if unknown.is_empty() {
        return check(
            "status_names",
            Outcome::Pass,
            format!("every name seen is mapped: {}", seen.join(", ")),
        );
    }
    let choices: Vec<&str> = Status::ALL.iter().map(|s| s.canonical()).collect();
    let lines: Vec<String> = unknown
        .iter()
        .map(|n| format!("{n:?} = \"<{}>\"", choices.join("|")))
        .collect();
    check(
        "status_names",
        Outcome::Fail,
        format!(
            "LAPOR! uses status name(s) the mapping does not know: {} (complaints under them \
             are flagged for an operator)",
            unknown.join(", ")
        ),
    )
    .set(format!("[lapor.status_names] {}", lines.join("; ")))
}

fn clock_check(settings: &Settings, answers: &Answers) -> Check {
    let mut offsets: Vec<i64> = answers
        .0
        .iter()
        .filter_map(|s| Some((s.date? - s.received_at?).num_seconds()))
        .collect();
    if offsets.is_empty() {
        return check("clock", Outcome::Unknown, "no answer carried a Date header");
    }
    offsets.sort_unstable();
    let offset = offsets[offsets.len() / 2];
    let tolerance = settings.lapor.clock_tolerance_secs as i64;
    let words = match offset {
        0 => "LAPOR!'s clock agrees with this machine's (to the second)".to_string(),
        o if o > 0 => format!("LAPOR!'s clock is {o} s ahead of this machine's"),
        o => format!("LAPOR!'s clock is {} s behind this machine's", -o),
    };
    if offset.abs() <= tolerance {
        check(
            "clock",
            Outcome::Pass,
            format!("{words} (Date header; tolerance {tolerance} s)"),
        )
    } else {
        check("clock", Outcome::Fail, format!("{words} (Date header)")).set(format!(
            "fix the clock that is wrong (NTP), or clock_tolerance_secs = {} in [lapor]",
            offset.abs() + 30
        ))
    }
}

/// The report as lines for a terminal.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "lapor-bridge doctor: LAPOR! at {} (read calls only)\n",
        report.base_url
    );
    for c in &report.checks {
        out.push_str(&format!(
            "{:<8} {:<17} {}\n",
            c.outcome.as_str(),
            c.name,
            c.detail
        ));
        if let Some(set) = &c.set {
            out.push_str(&format!("{:<8} {:<17} set: {set}\n", "", ""));
        }
    }
    let failed = report
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .count();
    out.push_str(&if failed == 0 {
        "no check failed\n".to_string()
    } else {
        format!("{failed} check(s) failed\n")
    });
    out
}
