//! The simulator's in-memory LAPOR!: complaints, their logs and follow-ups,
//! uploads and institutions. Pure data and rules, no HTTP: every operation
//! runs under one short lock taken by the handlers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::lapor::{Status, StatusName, StatusTable, timestamp};

/// LAPOR!'s own administration, the sender of verification and disposition.
pub const ADMIN_ID: i64 = 1;

/// Largest accepted upload, per file.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// The institutions every simulator knows; the configured one is added.
const INSTITUTIONS: [(i64, &str); 5] = [
    (ADMIN_ID, "Admin LAPOR!"),
    (101, "Pemerintah Kota Palembang"),
    (102, "Pemerintah Provinsi Sumatera Selatan"),
    (103, "Kementerian Pekerjaan Umum dan Perumahan Rakyat"),
    (104, "Kepolisian Daerah Sumatera Selatan"),
];

/// A complaint's status: one of LAPOR!'s names, or a raw name injected by a
/// test through the control surface (status code 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimStatus {
    Known(Status),
    Raw(String),
}

impl SimStatus {
    pub fn parse(name: &str) -> Self {
        match StatusTable::default().map(name) {
            StatusName::Known(status) => SimStatus::Known(status),
            StatusName::Unknown(raw) => SimStatus::Raw(raw),
        }
    }

    pub fn code(&self) -> i64 {
        match self {
            SimStatus::Known(status) => status.sim_code(),
            SimStatus::Raw(_) => 0,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            SimStatus::Known(status) => status.lapor_name(),
            SimStatus::Raw(name) => name,
        }
    }

    fn color(&self) -> &'static str {
        match self {
            SimStatus::Known(Status::Unverified) => "#999",
            SimStatus::Known(Status::Verified) => "#2a2",
            SimStatus::Known(Status::InProcess) => "#07c",
            SimStatus::Known(Status::Completed) => "#393",
            SimStatus::Known(Status::Rejected) => "#c33",
            SimStatus::Known(Status::Archived) => "#666",
            SimStatus::Known(Status::Postponed) => "#fa0",
            SimStatus::Raw(_) => "#000",
        }
    }

    fn json(&self) -> Value {
        json!({"name": self.name(), "color": self.color()})
    }

    /// The transitions LAPOR! allows through its own workflow (forwarding is
    /// separate). A raw, unknown status may move anywhere known; moving to a
    /// raw status needs `force`.
    pub fn may_become(&self, to: &SimStatus) -> bool {
        use Status::*;
        match (self, to) {
            (SimStatus::Raw(_), SimStatus::Known(_)) => true,
            (_, SimStatus::Raw(_)) => false,
            (SimStatus::Known(from), SimStatus::Known(to)) => matches!(
                (from, to),
                (Unverified, Verified)
                    | (Unverified, Rejected)
                    | (Unverified, Archived)
                    | (Unverified, Postponed)
                    | (Postponed, Unverified)
                    | (Verified, InProcess)
                    | (InProcess, InProcess)
                    | (InProcess, Completed)
                    | (Completed, InProcess)
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub id: i64,
    pub file_name: String,
    pub extension: String,
}

impl Attachment {
    fn json(&self) -> Value {
        json!({
            "path": format!(
                "https://files.lapor.sim/attachments/{}/{}?signature=sim",
                self.id, self.file_name
            ),
            "file_name": self.file_name,
            "extension": self.extension,
        })
    }
}

pub fn extension_of(file_name: &str) -> String {
    std::path::Path::new(file_name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

pub fn is_image(extension: &str) -> bool {
    matches!(extension, "jpg" | "jpeg" | "png")
}

#[derive(Debug, Clone)]
pub struct Followup {
    pub id: i64,
    pub content: String,
    pub is_secret: i64,
    /// `None`: written by the reporter.
    pub institution_id: Option<i64>,
    pub institution_to_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone)]
pub struct LogEntry {
    pub institution_from: i64,
    pub institution_to: i64,
    pub status_old: Option<SimStatus>,
    pub status_new: SimStatus,
    pub content: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Complaint {
    pub id: i64,
    pub tracking_id: String,
    pub title: String,
    pub content: String,
    pub category_id: i64,
    pub disposition_id: i64,
    pub location_id: Option<i64>,
    pub channel: Option<i64>,
    pub date_of_incident: Option<NaiveDate>,
    pub is_anonymous: i64,
    pub is_secret: i64,
    pub tags_raw: Option<String>,
    pub attachments: Vec<i64>,
    pub status: SimStatus,
    /// Created by the caller's account through the API (`scope=created`).
    pub created_via_api: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub logs: Vec<LogEntry>,
    pub followups: Vec<Followup>,
}

/// The fields of a new complaint, validated by the caller.
#[derive(Debug, Clone)]
pub struct NewComplaint {
    pub title: String,
    pub content: String,
    pub category_id: i64,
    pub disposition_id: i64,
    pub location_id: Option<i64>,
    pub channel: Option<i64>,
    pub date_of_incident: Option<NaiveDate>,
    pub is_anonymous: i64,
    pub is_secret: i64,
    pub tags_raw: Option<String>,
    pub attachments: Vec<i64>,
}

/// A new follow-up, validated by the caller.
#[derive(Debug, Clone)]
pub struct NewFollowup {
    pub content: String,
    pub is_secret: i64,
    pub institution_id: Option<i64>,
    pub institution_to_id: Option<i64>,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    NotFound,
    Conflict(String),
    /// One field is invalid (answered as 422).
    Invalid(&'static str, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Inbox,
    Created,
}

/// Which check `add_followup` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowupOrigin {
    /// `POST /complaints/followup/add`: 409 unless verified and open.
    Api,
    /// The control surface: an upstream event, any status.
    Upstream,
}

#[derive(Debug)]
pub struct State {
    own_institution: i64,
    institutions: BTreeMap<i64, String>,
    complaints: HashMap<i64, Complaint>,
    /// `(updated_at seconds, id)`: the list order, the second being what
    /// clients see.
    by_updated: BTreeSet<(i64, i64)>,
    uploads: HashMap<i64, Attachment>,
    // Ids keep counting across resets so that no id is ever reused.
    next_complaint: i64,
    next_upload: i64,
    next_followup: i64,
}

fn later_than(previous: DateTime<Utc>) -> DateTime<Utc> {
    let now = Utc::now();
    if now > previous {
        now
    } else {
        previous + chrono::Duration::microseconds(1)
    }
}

impl State {
    pub fn new(own_institution: i64) -> Self {
        let mut institutions: BTreeMap<i64, String> = INSTITUTIONS
            .iter()
            .map(|(id, name)| (*id, (*name).to_string()))
            .collect();
        institutions
            .entry(own_institution)
            .or_insert_with(|| format!("Instansi {own_institution}"));
        Self {
            own_institution,
            institutions,
            complaints: HashMap::new(),
            by_updated: BTreeSet::new(),
            uploads: HashMap::new(),
            next_complaint: 100_001,
            next_upload: 9_001,
            next_followup: 701,
        }
    }

    /// Empty state; institutions stay, ids keep counting.
    pub fn reset(&mut self) {
        self.complaints.clear();
        self.by_updated.clear();
        self.uploads.clear();
    }

    pub fn own_institution(&self) -> i64 {
        self.own_institution
    }

    pub fn institution_exists(&self, id: i64) -> bool {
        self.institutions.contains_key(&id)
    }

    fn institution_name(&self, id: i64) -> String {
        self.institutions
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("Instansi {id}"))
    }

    fn institution_json(&self, id: i64) -> Value {
        json!({"id": id, "name": self.institution_name(id)})
    }

    pub fn institutions_page(&self, page: usize, page_size: usize) -> Value {
        let skip = page.saturating_sub(1).saturating_mul(page_size);
        let data: Vec<Value> = self
            .institutions
            .iter()
            .skip(skip)
            .take(page_size)
            .map(|(id, name)| json!({"id": id, "name": name}))
            .collect();
        json!({
            "success": true,
            "results": {
                "data": data,
                "meta": {"page": page, "page_size": page_size, "total": self.institutions.len()},
            },
        })
    }

    // ----- uploads -------------------------------------------------------

    pub fn add_upload(&mut self, file_name: String) -> Attachment {
        let id = self.next_upload;
        self.next_upload += 1;
        let attachment = Attachment {
            id,
            extension: extension_of(&file_name),
            file_name,
        };
        self.uploads.insert(id, attachment.clone());
        attachment
    }

    pub fn upload(&self, id: i64) -> Option<&Attachment> {
        self.uploads.get(&id)
    }

    // ----- complaints ----------------------------------------------------

    fn insert(&mut self, complaint: Complaint) {
        self.by_updated
            .insert((complaint.updated_at.timestamp(), complaint.id));
        self.complaints.insert(complaint.id, complaint);
    }

    /// Applies `change` to one complaint and bumps its `updated_at`.
    fn change<T>(
        &mut self,
        id: i64,
        change: impl FnOnce(&mut Complaint, DateTime<Utc>) -> Result<T, SimError>,
    ) -> Result<T, SimError> {
        let complaint = self.complaints.get_mut(&id).ok_or(SimError::NotFound)?;
        let before = complaint.updated_at;
        let now = later_than(before);
        let out = change(complaint, now)?;
        complaint.updated_at = now;
        self.by_updated.remove(&(before.timestamp(), id));
        self.by_updated.insert((now.timestamp(), id));
        Ok(out)
    }

    fn new_complaint(&mut self, new: NewComplaint, status: SimStatus, via_api: bool) -> Complaint {
        let id = self.next_complaint;
        self.next_complaint += 1;
        let now = Utc::now();
        Complaint {
            id,
            tracking_id: (4_700_000 + id).to_string(),
            title: new.title,
            content: new.content,
            category_id: new.category_id,
            disposition_id: new.disposition_id,
            location_id: new.location_id,
            channel: new.channel,
            date_of_incident: new.date_of_incident,
            is_anonymous: new.is_anonymous,
            is_secret: new.is_secret,
            tags_raw: new.tags_raw,
            attachments: new.attachments,
            status,
            created_via_api: via_api,
            created_at: now,
            updated_at: now,
            logs: Vec::new(),
            followups: Vec::new(),
        }
    }

    /// A complaint created by the caller's account: status 1.
    pub fn create_from_api(&mut self, new: NewComplaint) -> (i64, String) {
        let mut complaint = self.new_complaint(new, SimStatus::Known(Status::Unverified), true);
        complaint.logs.push(LogEntry {
            institution_from: self.own_institution,
            institution_to: ADMIN_ID,
            status_old: None,
            status_new: complaint.status.clone(),
            content: "Laporan dibuat oleh {{institution_from}}".into(),
            created_at: complaint.created_at,
        });
        let out = (complaint.id, complaint.tracking_id.clone());
        self.insert(complaint);
        out
    }

    /// A citizen's complaint, verified and dispositioned by the admin: status 2.
    /// `filed_ago`: filed (and dispositioned) that long before now, for
    /// history (the demo's overdue complaints).
    pub fn create_citizen(
        &mut self,
        new: NewComplaint,
        filed_ago: chrono::Duration,
    ) -> (i64, String) {
        let mut complaint = self.new_complaint(new, SimStatus::Known(Status::Verified), false);
        complaint.created_at -= filed_ago;
        complaint.updated_at -= filed_ago;
        let at = complaint.created_at;
        complaint.logs.push(LogEntry {
            institution_from: ADMIN_ID,
            institution_to: ADMIN_ID,
            status_old: None,
            status_new: SimStatus::Known(Status::Unverified),
            content: "Laporan diterima dari masyarakat".into(),
            created_at: at,
        });
        complaint.logs.push(LogEntry {
            institution_from: ADMIN_ID,
            institution_to: complaint.disposition_id,
            status_old: Some(SimStatus::Known(Status::Unverified)),
            status_new: SimStatus::Known(Status::Verified),
            content: "Laporan didisposisikan dari {{institution_from}} ke {{institution_to}}"
                .into(),
            created_at: at,
        });
        let out = (complaint.id, complaint.tracking_id.clone());
        self.insert(complaint);
        out
    }

    pub fn get(&self, id: i64) -> Option<&Complaint> {
        self.complaints.get(&id)
    }

    /// An upstream status change (the control surface). `force` allows any
    /// transition, including to a raw name; `disposition` sets the
    /// disposition at the same time (useful with 1→2).
    pub fn set_status(
        &mut self,
        id: i64,
        to: SimStatus,
        force: bool,
        disposition: Option<i64>,
    ) -> Result<(), SimError> {
        if let Some(target) = disposition
            && !self.institution_exists(target)
        {
            return Err(SimError::Invalid(
                "disposition_id",
                "The selected disposition id is invalid.".into(),
            ));
        }
        self.change(id, |c, now| {
            if !force && !c.status.may_become(&to) {
                return Err(SimError::Conflict(format!(
                    "Status {} tidak dapat diubah menjadi {}",
                    c.status.name(),
                    to.name()
                )));
            }
            let disposed = disposition.is_some_and(|d| d != c.disposition_id);
            if let Some(target) = disposition {
                c.disposition_id = target;
            }
            let content = if disposed || (c.status.code() == 1 && to.code() == 2) {
                "Laporan didisposisikan dari {{institution_from}} ke {{institution_to}}"
            } else {
                "Status laporan diubah dari {{status_old}} menjadi {{status_new}}"
            };
            c.logs.push(LogEntry {
                institution_from: ADMIN_ID,
                institution_to: c.disposition_id,
                status_old: Some(c.status.clone()),
                status_new: to.clone(),
                content: content.into(),
                created_at: now,
            });
            c.status = to;
            Ok(())
        })
    }

    /// Whether a follow-up may be added, without adding it.
    pub fn check_followup(
        &self,
        id: i64,
        institution_id: Option<i64>,
        origin: FollowupOrigin,
    ) -> Result<(), SimError> {
        if let Some(institution) = institution_id
            && !self.institution_exists(institution)
        {
            let field = match origin {
                FollowupOrigin::Api => "institution_from_id",
                FollowupOrigin::Upstream => "institution_id",
            };
            return Err(SimError::Invalid(
                field,
                format!("The selected {} is invalid.", field.replace('_', " ")),
            ));
        }
        let complaint = self.complaints.get(&id).ok_or(SimError::NotFound)?;
        if origin == FollowupOrigin::Api
            && let SimStatus::Known(status) = &complaint.status
        {
            if status.awaits_verification() {
                return Err(SimError::Conflict("Laporan belum diverifikasi".into()));
            }
            if status.is_closed() {
                return Err(SimError::Conflict("Laporan sudah ditutup".into()));
            }
        }
        Ok(())
    }

    /// Adds a follow-up; the first one from the dispositioned institution
    /// moves status 2 to 3.
    pub fn add_followup(
        &mut self,
        id: i64,
        new: NewFollowup,
        origin: FollowupOrigin,
    ) -> Result<i64, SimError> {
        self.check_followup(id, new.institution_id, origin)?;
        let followup_id = self.next_followup;
        self.next_followup += 1;
        self.change(id, |c, now| {
            let from_disposition = new.institution_id == Some(c.disposition_id);
            if from_disposition && c.status == SimStatus::Known(Status::Verified) {
                c.logs.push(LogEntry {
                    institution_from: c.disposition_id,
                    institution_to: c.disposition_id,
                    status_old: Some(c.status.clone()),
                    status_new: SimStatus::Known(Status::InProcess),
                    content: "Laporan ditindaklanjuti oleh {{institution_from}}".into(),
                    created_at: now,
                });
                c.status = SimStatus::Known(Status::InProcess);
            }
            c.followups.push(Followup {
                id: followup_id,
                content: new.content,
                is_secret: new.is_secret,
                institution_id: new.institution_id,
                institution_to_id: new.institution_to_id,
                created_at: now,
                attachments: new.attachments,
            });
            Ok(followup_id)
        })
    }

    /// Dates a follow-up back by `by` (the control surface's `seconds_ago`).
    pub fn backdate_followup(&mut self, id: i64, followup_id: i64, by: chrono::Duration) {
        if let Some(f) = self
            .complaints
            .get_mut(&id)
            .and_then(|c| c.followups.iter_mut().find(|f| f.id == followup_id))
        {
            f.created_at -= by;
        }
    }

    /// "Bukan wewenang": the disposition moves to `target`, status back to 2.
    pub fn forward(&mut self, id: i64, target: i64, description: &str) -> Result<(), SimError> {
        if !self.institution_exists(target) {
            return Err(SimError::Invalid(
                "reason",
                "The selected reason is invalid.".into(),
            ));
        }
        self.change(id, |c, now| {
            if !matches!(
                c.status,
                SimStatus::Known(Status::Verified) | SimStatus::Known(Status::InProcess)
            ) {
                return Err(SimError::Conflict(format!(
                    "Laporan berstatus {} tidak dapat diteruskan",
                    c.status.name()
                )));
            }
            let mut content =
                "Laporan diteruskan dari {{institution_from}} ke {{institution_to}}".to_string();
            if !description.trim().is_empty() {
                content.push_str(": ");
                content.push_str(description.trim());
            }
            c.logs.push(LogEntry {
                institution_from: c.disposition_id,
                institution_to: target,
                status_old: Some(c.status.clone()),
                status_new: SimStatus::Known(Status::Verified),
                content,
                created_at: now,
            });
            c.disposition_id = target;
            c.status = SimStatus::Known(Status::Verified);
            Ok(())
        })
    }

    /// One page of summaries, ordered by `updated_at` (seconds) then id, and
    /// the total number of matches. `updated_from` is inclusive, in seconds.
    pub fn list(
        &self,
        scope: Scope,
        updated_from: Option<i64>,
        page: usize,
        page_size: usize,
    ) -> (Vec<Value>, usize) {
        let skip = page.saturating_sub(1).saturating_mul(page_size);
        let mut total = 0usize;
        let mut data = Vec::new();
        let start = (updated_from.unwrap_or(i64::MIN), i64::MIN);
        for (_, id) in self.by_updated.range(start..) {
            let Some(c) = self.complaints.get(id) else {
                continue;
            };
            let matches = match scope {
                Scope::Inbox => c.disposition_id == self.own_institution,
                Scope::Created => c.created_via_api,
            };
            if !matches {
                continue;
            }
            if total >= skip && data.len() < page_size {
                data.push(self.summary_json(c));
            }
            total += 1;
        }
        (data, total)
    }

    // ----- JSON views ----------------------------------------------------

    fn summary_json(&self, c: &Complaint) -> Value {
        json!({
            "id": c.id,
            "tracking_id": c.tracking_id,
            "title": c.title,
            "status_code": c.status.code(),
            "status_name": c.status.name(),
            "disposition_id": c.disposition_id,
            "tags_raw": c.tags_raw,
            "created_at": timestamp::format_datetime(c.created_at),
            "updated_at": timestamp::format_datetime(c.updated_at),
        })
    }

    fn data_json(&self, c: &Complaint) -> Value {
        json!({
            "id": c.id,
            "tracking_id": c.tracking_id,
            "title": c.title,
            "content": c.content,
            "category_id": c.category_id,
            "status_code": c.status.code(),
            "status_name": c.status.name(),
            "disposition_id": c.disposition_id,
            "disposition_name": self.institution_name(c.disposition_id),
            "is_anonymous": c.is_anonymous,
            "is_secret": c.is_secret,
            "tags_raw": c.tags_raw,
            "created_at": timestamp::format_datetime(c.created_at),
            "updated_at": timestamp::format_datetime(c.updated_at),
        })
    }

    fn log_json(&self, log: &LogEntry) -> Value {
        json!({
            "institution_from": self.institution_json(log.institution_from),
            "institution_to": self.institution_json(log.institution_to),
            "status_old": log.status_old.as_ref().map(SimStatus::json),
            "status_new": log.status_new.json(),
            "content": log.content,
            "created_at": timestamp::format_datetime(log.created_at),
        })
    }

    fn followup_json(&self, f: &Followup) -> Value {
        json!({
            "id": f.id,
            "content": f.content,
            "is_secret": f.is_secret,
            "institution": f.institution_id.map(|id| self.institution_json(id)),
            "created_at": timestamp::format_followup_datetime(f.created_at),
            "attachments": f.attachments.iter().map(Attachment::json).collect::<Vec<_>>(),
        })
    }

    /// `GET /complaints/{id}/complaint`.
    pub fn detail_json(&self, id: i64) -> Option<Value> {
        let c = self.complaints.get(&id)?;
        let logs: Vec<Value> = c.logs.iter().map(|l| self.log_json(l)).collect();
        Some(json!({
            "success": true,
            "results": {"data": self.data_json(c), "data_logs": logs},
        }))
    }

    /// `GET /complaints/{id}/followups`, oldest first.
    pub fn followups_json(&self, id: i64) -> Option<Value> {
        let c = self.complaints.get(&id)?;
        let data: Vec<Value> = c.followups.iter().map(|f| self.followup_json(f)).collect();
        Some(json!({"success": true, "results": {"data": data}}))
    }

    /// Everything about one complaint, for the control surface.
    pub fn full_json(&self, c: &Complaint) -> Value {
        let mut followups = Vec::with_capacity(c.followups.len());
        for f in &c.followups {
            let mut value = self.followup_json(f);
            if let Some(object) = value.as_object_mut() {
                object.insert("institution_id".into(), json!(f.institution_id));
                object.insert("institution_to_id".into(), json!(f.institution_to_id));
                object.insert("created_at_utc".into(), json!(f.created_at.to_rfc3339()));
            }
            followups.push(value);
        }
        json!({
            "id": c.id,
            "tracking_id": c.tracking_id,
            "title": c.title,
            "content": c.content,
            "category_id": c.category_id,
            "status_code": c.status.code(),
            "status_name": c.status.name(),
            "disposition_id": c.disposition_id,
            "disposition_name": self.institution_name(c.disposition_id),
            "location_id": c.location_id,
            "channel": c.channel,
            "date_of_incident": c.date_of_incident.map(timestamp::format_date),
            "is_anonymous": c.is_anonymous,
            "is_secret": c.is_secret,
            "tags_raw": c.tags_raw,
            "attachments": c.attachments,
            "created_via_api": c.created_via_api,
            "created_at": timestamp::format_datetime(c.created_at),
            "updated_at": timestamp::format_datetime(c.updated_at),
            "created_at_utc": c.created_at.to_rfc3339(),
            "updated_at_utc": c.updated_at.to_rfc3339(),
            "followups": followups,
            "data_logs": c.logs.iter().map(|l| self.log_json(l)).collect::<Vec<_>>(),
        })
    }

    /// Every complaint, by id.
    pub fn all_json(&self) -> Vec<Value> {
        let mut ids: Vec<i64> = self.complaints.keys().copied().collect();
        ids.sort_unstable();
        ids.iter()
            .filter_map(|id| self.complaints.get(id))
            .map(|c| self.full_json(c))
            .collect()
    }
}
