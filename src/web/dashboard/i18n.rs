//! Every string of the dashboard, in Bahasa Indonesia (the default) and
//! English. One table: a key missing a language does not compile.

use crate::domain::{AttemptOutcome, StepKind, StepState, SyncState};
use axum::http::HeaderMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Id,
    En,
}

impl Lang {
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "id" => Some(Lang::Id),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    pub fn other(self) -> Self {
        match self {
            Lang::Id => Lang::En,
            Lang::En => Lang::Id,
        }
    }

    /// `?lang=` first, then the `lang` cookie, else Bahasa Indonesia.
    pub fn of_request(query: Option<&str>, headers: &HeaderMap) -> Self {
        query_lang(query)
            .or_else(|| super::cookie(headers, "lang").and_then(|c| Lang::parse(&c)))
            .unwrap_or_default()
    }
}

/// The language a request asks for with `?lang=`, if any.
pub fn query_lang(query: Option<&str>) -> Option<Lang> {
    query?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "lang")
        .and_then(|(_, v)| Lang::parse(v))
}

macro_rules! strings {
    ($($key:ident => $id:expr, $en:expr;)*) => {
        /// A key of the string table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum K { $($key),* }

        /// The text of `key` in `lang`.
        pub fn t(lang: Lang, key: K) -> &'static str {
            match key {
                $(K::$key => match lang { Lang::Id => $id, Lang::En => $en },)*
            }
        }
    };
}

strings! {
    // Navigation and layout
    NavOverview => "Ringkasan", "Overview";
    NavComplaints => "Pengaduan", "Complaints";
    NavDead => "Gagal terkirim", "Dead letters";
    NavReconciliation => "Rekonsiliasi", "Reconciliation";
    NavAudit => "Audit", "Audit";
    Logout => "Keluar", "Log out";
    SwitchLang => "English", "Bahasa Indonesia";
    SignedInAs => "Masuk sebagai", "Signed in as";
    // Login
    LoginTitle => "Masuk ke dasbor", "Sign in to the dashboard";
    LoginToken => "Token akses", "Access token";
    LoginSubmit => "Masuk", "Sign in";
    LoginHelp => "Gunakan token API yang diberikan administrator. Sesi berlaku 12 jam.",
        "Use the API token your administrator gave you. A session lasts 12 hours.";
    LoginWrong => "Token tidak dikenal.", "Unknown token.";
    LoginNoPages => "Peran token ini tidak memiliki halaman dasbor.",
        "This token's role has no dashboard pages.";
    // Errors
    Forbidden => "Akses ditolak", "Forbidden";
    ForbiddenRole => "Peran Anda tidak boleh membuka halaman ini.",
        "Your role may not open this page.";
    ForbiddenCsrf => "Permintaan ditolak: formulir tidak sah atau berasal dari situs lain. Muat ulang halaman lalu coba lagi.",
        "Request refused: the form is invalid or came from another site. Reload the page and try again.";
    NotFound => "Tidak ditemukan", "Not found";
    NotFoundText => "Halaman atau data yang diminta tidak ada.",
        "The page or record you asked for does not exist.";
    BadRequest => "Permintaan tidak valid", "Bad request";
    BadQuery => "Alamat halaman memuat parameter yang tidak dikenal atau tidak valid.",
        "The page's address holds an unknown or invalid parameter.";
    InternalError => "Terjadi kesalahan", "Something went wrong";
    InternalErrorText => "Kesalahan internal; lihat log bridge.",
        "Internal error; see the bridge's log.";
    // Overview
    SyncStates => "Status sinkronisasi", "Sync states";
    Count => "Jumlah", "Count";
    Backlog => "Antrean kirim", "Delivery backlog";
    BacklogDepth => "Langkah yang belum selesai (menunggu dan berjalan)", "Waiting steps (pending + running)";
    OldestWaiting => "Umur langkah tertua yang menunggu", "Age of the oldest waiting step";
    DeadLetters => "Gagal terkirim", "Dead letters";
    LaporHealth => "LAPOR!", "LAPOR!";
    TokenHealth => "Token LAPOR!", "LAPOR! token";
    TokenOk => "diterima", "accepted";
    TokenRejected => "DITOLAK — pengiriman dijeda sampai token diperbaiki",
        "REJECTED — delivery paused until the token is fixed";
    Reachability => "Keterjangkauan", "Reachability";
    Reachable => "terjangkau", "reachable";
    Unreachable => "bermasalah", "failing";
    NoContactYet => "belum ada permintaan", "no request yet";
    LastAnswer => "jawaban terakhir", "last answer";
    LastPull => "Tarik data terakhir", "Last pull";
    LastReconcile => "Rekonsiliasi terakhir", "Last reconciliation";
    NeverRun => "belum pernah", "never";
    Running => "sedang berjalan", "running";
    OverdueSla => "Pengaduan melewati tenggat SLA", "Complaints past an SLA deadline";
    Nothing => "tidak ada", "none";
    Succeeded => "berhasil", "ok";
    Failed => "gagal", "failed";
    Partial => "sebagian", "partial";
    ComplaintsFailed => "pengaduan tidak terbaca", "complaint(s) could not be read";
    ViewAll => "Lihat semua", "View all";
    // Complaint list
    Filter => "Saring", "Filter";
    Search => "Cari", "Search";
    SearchRef => "Nomor referensi / nomor pelacakan", "Reference / tracking id";
    Any => "semua", "any";
    Yes => "ya", "yes";
    No => "tidak", "no";
    Reference => "Referensi", "Reference";
    Title => "Judul", "Title";
    Status => "Status", "Status";
    SyncState => "Status sinkronisasi", "Sync state";
    Overdue => "Lewat tenggat", "Overdue";
    NextDeadline => "Tenggat berikutnya", "Next deadline";
    Created => "Dibuat", "Created";
    NoRows => "Tidak ada data.", "Nothing here.";
    Page => "Halaman", "Page";
    Of => "dari", "of";
    Previous => "Sebelumnya", "Previous";
    Next => "Berikutnya", "Next";
    OverdueScanCapped => "Saringan tenggat hanya memeriksa pengaduan terbaru berikut:",
        "The overdue filter only checks this many of the newest complaints:";
    Unknown => "tidak dikenal", "unknown";
    // Complaint page
    Complaint => "Pengaduan", "Complaint";
    Origin => "Asal", "Origin";
    OriginLocal => "lokal", "local";
    OriginLapor => "LAPOR!", "LAPOR!";
    LaporId => "ID LAPOR!", "LAPOR! id";
    TrackingId => "Nomor pelacakan", "Tracking id";
    LaporStatusName => "Status di LAPOR!", "Status on LAPOR!";
    PendingOps => "Langkah belum selesai", "Unfinished steps";
    LastError => "Kesalahan terakhir", "Last error";
    LastSynced => "Terakhir tersinkron", "Last synced";
    ConflictReason => "Alasan konflik", "Conflict reason";
    Disposition => "Disposisi", "Disposition";
    Content => "Isi", "Content";
    Anonymous => "Anonim", "Anonymous";
    Secret => "Rahasia", "Secret";
    Reporter => "Pelapor", "Reporter";
    ReporterName => "Nama", "Name";
    ReporterPhone => "Telepon", "Phone";
    ReporterEmail => "Email", "Email";
    ReporterNik => "NIK", "NIK";
    ReporterAddress => "Alamat", "Address";
    ReporterMasked => "Disamarkan: hanya admin yang melihat pelapor pengaduan anonim atau rahasia.",
        "Masked: only admins see the reporter of an anonymous or secret complaint.";
    ReporterMaskedRole => "Disamarkan: peran Anda tidak melihat identitas pelapor.",
        "Masked: your role does not see the reporter's identity.";
    ReporterShownAudited => "Identitas pelapor ditampilkan; tampilan ini tercatat di log audit (pii_viewed).",
        "Reporter identity shown; this view is recorded in the audit log (pii_viewed).";
    ReporterErased => "Identitas pelapor telah dihapus", "Reporter identity erased";
    ReporterSealing => "Identitas pelapor sedang dienkripsi.", "Reporter identity is being encrypted.";
    ReporterUnreadable => "Identitas pelapor tidak dapat dibuka dengan kunci yang terpasang.",
        "Reporter identity does not open with the configured keys.";
    EraseReporter => "Hapus identitas pelapor", "Erase reporter identity";
    EraseHelp => "Identitas pelapor (nama, telepon, email, NIK, alamat) dihapus permanen dan tidak dapat dikembalikan. Pengaduan tetap ada. Alasan dicatat di log audit.",
        "The reporter's identity (name, phone, email, NIK, address) is erased for good and cannot be restored. The complaint stays. The reason is recorded in the audit log.";
    EraseReason => "Alasan (mis. permintaan subjek data, tanggal)", "Reason (e.g. data subject's request, date)";
    EraseConfirm => "Saya mengerti bahwa penghapusan ini permanen", "I understand that this erasure is permanent";
    EraseMissing => "Isi alasan dan centang konfirmasi.", "Fill in the reason and tick the confirmation.";
    FlashErased => "Identitas pelapor dihapus.", "Reporter identity erased.";
    FlashAlreadyErased => "Identitas pelapor sudah dihapus sebelumnya.", "Reporter identity was already erased.";
    Sla => "SLA", "SLA";
    FollowUpDue => "Tindak lanjut paling lambat", "Follow-up due";
    AutoCloseExpected => "Perkiraan tutup otomatis", "Expected auto-close";
    CompletionDue => "Selesai paling lambat", "Completion due";
    DeadlineFollowUp => "tindak lanjut", "follow-up";
    DeadlineAutoClose => "tutup otomatis", "auto-close";
    DeadlineCompletion => "penyelesaian", "completion";
    Steps => "Langkah kirim", "Delivery steps (outbox)";
    Step => "Langkah", "Step";
    State => "Keadaan", "State";
    Attempts => "Percobaan", "Attempts";
    NextAttempt => "Percobaan berikutnya", "Next attempt";
    Timeline => "Linimasa", "Timeline";
    Time => "Waktu", "Time";
    Kind => "Jenis", "Kind";
    Details => "Rincian", "Details";
    KindAttempt => "percobaan kirim", "delivery attempt";
    KindFollowup => "tindak lanjut", "follow-up";
    KindStatusChange => "perubahan status", "status change";
    KindAudit => "audit", "audit";
    SecretContent => "(isi rahasia tidak ditampilkan)", "(secret content not shown)";
    ByReporter => "pelapor", "reporter";
    Institution => "instansi", "institution";
    // Dead letters
    Retry => "Kirim ulang", "Retry";
    Discard => "Buang", "Discard";
    DiscardConfirm => "yakin, buang permanen", "yes, discard for good";
    FlashUnconfirmed => "Tidak dibuang: centang konfirmasi dulu (membuang bersifat final).",
        "Not discarded: tick the confirmation first (discarding is final).";
    Actions => "Tindakan", "Actions";
    DeadHelp => "Langkah yang berhenti dicoba. Perbaiki penyebabnya, lalu kirim ulang; atau buang jika tidak perlu dikirim.",
        "Steps that are no longer tried. Fix the cause, then retry; or discard when they need not be sent.";
    WebhookDead => "Webhook ke aplikasi kota yang gagal terkirim", "Webhook deliveries to the city's application that failed";
    WebhookDeadHelp => "Peristiwa umpan perubahan yang tidak diterima endpoint. Peristiwa berikutnya dari aduan yang sama menunggu di belakangnya.", "Change-feed events the endpoint did not accept. Later events of the same complaint wait behind them.";
    Event => "Peristiwa", "Event";
    FlashWebhookDone => "Pengiriman webhook diperbarui.", "Webhook delivery updated.";
    FlashRetried => "Langkah dikirim ulang. Keadaan sekarang", "Step queued again. Current state";
    FlashDiscarded => "Langkah dibuang. Keadaan sekarang", "Step discarded. Current state";
    FlashConflict => "Tindakan tidak dilakukan: langkah ini tidak lagi dalam keadaan yang memungkinkan.",
        "Nothing done: the step is no longer in a state that allows it.";
    FlashNotFound => "Langkah tidak ditemukan.", "No such step.";
    Finished => "Selesai", "Finished";
    // Reconciliation
    Runs => "Riwayat tarik data dan rekonsiliasi", "Pull and reconciliation runs";
    Job => "Pekerjaan", "Job";
    JobPull => "tarik data", "pull";
    JobReconcile => "rekonsiliasi", "reconciliation";
    Trigger => "Pemicu", "Trigger";
    Started => "Mulai", "Started";
    Duration => "Durasi", "Duration";
    Result => "Hasil", "Result";
    Checked => "Diperiksa", "Checked";
    Imported => "Diimpor", "Imported";
    Drift => "Selisih per jenis", "Drift by kind";
    Repaired => "Diperbaiki", "Repaired";
    Conflicts => "Konflik", "Conflicts";
    Errors => "Kesalahan", "Errors";
    AllJobs => "semua pekerjaan", "all jobs";
    // Audit
    AuditLog => "Log audit", "Audit log";
    Export => "Ekspor", "Export";
    Since => "Sejak", "Since";
    Until => "Sampai", "Until";
    ExportHelp => "Tanggal dalam WIB (sampai: tidak termasuk); kosongkan untuk semua.",
        "Dates in WIB (until: exclusive); leave empty for everything.";
    Verify => "Verifikasi rantai hash", "Verify the hash chain";
    VerifyOk => "Rantai audit utuh. Entri diperiksa", "The audit chain is intact. Entries checked";
    VerifyBroken => "Rantai audit RUSAK. Entri pertama yang tidak cocok", "The audit chain is BROKEN. First entry that does not match";
    VerifyCheckpoints => "checkpoint diperiksa", "checkpoints checked";
    VerifyCheckpointMismatch => "Log audit TIDAK COCOK dengan checkpoint: entri dihapus atau ditulis ulang. Checkpoint pertama yang gagal",
        "The audit log does NOT MATCH its checkpoints: entries were removed or rewritten. First failing checkpoint";
    VerifyCheckpointsUnreadable => "Berkas checkpoint tidak dapat dibaca; tidak ada yang dapat dijamin",
        "The checkpoint file cannot be read; nothing is vouched for";
    CheckpointsDownload => "Checkpoint (JSONL)", "Checkpoints (JSONL)";
    Actor => "Pelaku", "Actor";
    Action => "Aksi", "Action";
    Before => "Sebelum", "Before";
    Changes => "Perubahan", "Changes";
    After => "Sesudah", "After";
    // Step kinds
    StepUpload => "unggah lampiran", "upload attachments";
    StepCreate => "kirim pengaduan", "create complaint";
    StepFollowup => "kirim tindak lanjut", "send follow-up";
    StepForward => "teruskan ke instansi lain", "forward";
    // Attempt outcomes
    OutDelivered => "terkirim", "delivered";
    OutAdopted => "sudah ada di LAPOR!, ditautkan", "found on LAPOR!, linked";
    OutRetry => "gagal, akan dicoba lagi", "failed, will retry";
    OutUnknown => "hasil tidak diketahui, diperiksa dulu sebelum dikirim ulang", "outcome unknown, looked up before any resend";
    OutWaiting => "mulai menunggu", "started waiting";
    OutWaitOver => "selesai menunggu", "stopped waiting";
    OutPaused => "dijeda: token ditolak", "paused: tokens rejected";
    OutDead => "gagal, tidak dicoba lagi", "failed, not tried again";
    OutLeaseLost => "diambil alih pekerja lain", "taken over by another worker";
    // Run triggers
    TrigSchedule => "terjadwal", "schedule";
    TrigCli => "baris perintah", "command line";
    TrigApi => "permintaan API", "API request";
    TrigDashboard => "dasbor", "dashboard";
    // Drift kinds
    DriftStatus => "status berubah", "status";
    DriftDisposition => "disposisi berubah", "disposition";
    DriftFollowupsLocal => "tindak lanjut baru dari LAPOR!", "follow-ups missing locally";
    DriftFollowupsUpstream => "tindak lanjut hilang di LAPOR!", "follow-ups missing upstream";
    DriftMissingUpstream => "pengaduan hilang di LAPOR!", "missing upstream";
    DriftUnlinked => "ditautkan ke LAPOR!", "linked to LAPOR!";
    DriftDuplicate => "salinan ganda di LAPOR!", "duplicate upstream";
    DriftUnknownRef => "referensi tak dikenal di LAPOR!", "unknown reference upstream";
    // Why a step waits
    Waiting => "Menunggu", "Waiting";
    WaitVerification => "menunggu LAPOR! memverifikasi pengaduan", "waiting for LAPOR! to verify the complaint";
    WaitLookupDelay => "LAPOR! mungkin masih memproses percobaan terakhir: diperiksa dulu, tidak dikirim ulang, mulai",
        "LAPOR! may still apply the last attempt: looked up, not resent, from";
    WaitRetryAfter => "LAPOR! meminta kami menunggu sampai", "LAPOR! asked to wait until";
    WaitTokens => "LAPOR! menolak token: semua pengiriman dijeda sampai token diperbaiki",
        "LAPOR! rejected the tokens: all delivery is paused until they are fixed";
    // Sync states
    SyncPending => "menunggu", "pending";
    SyncSynced => "tersinkron", "synced";
    SyncRetrying => "mencoba ulang", "retrying";
    SyncDead => "gagal", "dead";
    SyncConflict => "konflik", "conflict";
    // Outbox step states
    StepPending => "menunggu", "pending";
    StepRunning => "berjalan", "running";
    StepDone => "selesai", "done";
    StepDead => "gagal", "dead";
    StepDiscarded => "dibuang", "discarded";
    // Statuses (the bridge's names)
    StUnverified => "Belum Terverifikasi", "Unverified";
    StVerified => "Terverifikasi", "Verified";
    StInProcess => "Dalam Proses", "In process";
    StCompleted => "Selesai", "Completed";
    StRejected => "Ditolak", "Rejected";
    StArchived => "Diarsipkan", "Archived";
    StPostponed => "Tertunda", "Postponed";
}

/// The label of a sync state (unknown values are shown raw).
pub fn sync_state_key(s: SyncState) -> K {
    match s {
        SyncState::Pending => K::SyncPending,
        SyncState::Synced => K::SyncSynced,
        SyncState::Retrying => K::SyncRetrying,
        SyncState::Dead => K::SyncDead,
        SyncState::Conflict => K::SyncConflict,
    }
}

pub fn step_state_key(s: StepState) -> K {
    match s {
        StepState::Pending => K::StepPending,
        StepState::Running => K::StepRunning,
        StepState::Done => K::StepDone,
        StepState::Dead => K::StepDead,
        StepState::Discarded => K::StepDiscarded,
    }
}

pub fn status_key(s: &str) -> Option<K> {
    Some(match s {
        "unverified" => K::StUnverified,
        "verified" => K::StVerified,
        "in_process" => K::StInProcess,
        "completed" => K::StCompleted,
        "rejected" => K::StRejected,
        "archived" => K::StArchived,
        "postponed" => K::StPostponed,
        _ => return Option::None,
    })
}

pub fn job_key(s: &str) -> Option<K> {
    Some(match s {
        "pull" => K::JobPull,
        "reconcile" => K::JobReconcile,
        _ => return Option::None,
    })
}

/// Why a step waits (a code of `crate::outbox::waiting::WaitingReason`),
/// with the instant it waits for where that matters.
pub fn waiting(lang: Lang, code: &str, until: Option<chrono::DateTime<chrono::Utc>>) -> String {
    use crate::outbox::waiting::WaitingReason as W;
    let at = until.map(|u| format!(" {} WIB", crate::time::display(u)));
    match W::parse(code) {
        Some(W::Verification) => t(lang, K::WaitVerification).to_string(),
        Some(W::LookupDelay) => {
            format!("{}{}", t(lang, K::WaitLookupDelay), at.unwrap_or_default())
        }
        Some(W::RetryAfter) => format!("{}{}", t(lang, K::WaitRetryAfter), at.unwrap_or_default()),
        Some(W::TokensRejected) => t(lang, K::WaitTokens).to_string(),
        None => code.to_string(),
    }
}

pub fn step_key(s: StepKind) -> K {
    match s {
        StepKind::Upload => K::StepUpload,
        StepKind::Create => K::StepCreate,
        StepKind::Followup => K::StepFollowup,
        StepKind::Forward => K::StepForward,
    }
}

/// A webhook endpoint's `gone` has no words of its own here: it shows as
/// its code.
pub fn outcome_key(s: AttemptOutcome) -> Option<K> {
    Some(match s {
        AttemptOutcome::Delivered => K::OutDelivered,
        AttemptOutcome::Adopted => K::OutAdopted,
        AttemptOutcome::Retry => K::OutRetry,
        AttemptOutcome::Unknown => K::OutUnknown,
        AttemptOutcome::Waiting => K::OutWaiting,
        AttemptOutcome::WaitOver => K::OutWaitOver,
        AttemptOutcome::Paused => K::OutPaused,
        AttemptOutcome::Dead => K::OutDead,
        AttemptOutcome::LeaseLost => K::OutLeaseLost,
        AttemptOutcome::Gone => return Option::None,
    })
}

pub fn trigger_key(s: &str) -> Option<K> {
    Some(match s {
        "schedule" => K::TrigSchedule,
        "cli" => K::TrigCli,
        "api" => K::TrigApi,
        "dashboard" => K::TrigDashboard,
        _ => return Option::None,
    })
}

pub fn drift_key(s: &str) -> Option<K> {
    Some(match s {
        "status" => K::DriftStatus,
        "disposition" => K::DriftDisposition,
        "followups_missing_locally" => K::DriftFollowupsLocal,
        "followups_missing_upstream" => K::DriftFollowupsUpstream,
        "missing_upstream" => K::DriftMissingUpstream,
        "unlinked_upstream" => K::DriftUnlinked,
        "duplicate_upstream" => K::DriftDuplicate,
        "unknown_ref_upstream" => K::DriftUnknownRef,
        _ => return Option::None,
    })
}

/// An audit action in words; unknown actions as they are.
pub fn action_label(lang: Lang, action: &str) -> String {
    let (id, en) = match action {
        "complaint.submitted" => ("pengaduan dicatat", "complaint submitted"),
        "followup.submitted" => ("tindak lanjut dicatat", "follow-up submitted"),
        "forward.submitted" => ("penerusan dicatat", "forward submitted"),
        "delivery.upload" => (
            "unggah lampiran ke LAPOR!",
            "attachments uploaded to LAPOR!",
        ),
        "delivery.create" => ("pengiriman pengaduan ke LAPOR!", "complaint sent to LAPOR!"),
        "delivery.followup" => (
            "pengiriman tindak lanjut ke LAPOR!",
            "follow-up sent to LAPOR!",
        ),
        "delivery.forward" => ("penerusan di LAPOR!", "forwarded on LAPOR!"),
        "delivery.late_outcome_kept" => ("hasil yang terlambat disimpan", "late outcome kept"),
        "inbound.complaint_changed" => ("berubah di LAPOR!", "changed on LAPOR!"),
        "inbound.complaint_imported" => ("diimpor dari LAPOR!", "imported from LAPOR!"),
        "inbound.followup_imported" => (
            "tindak lanjut diimpor dari LAPOR!",
            "follow-up imported from LAPOR!",
        ),
        "reconcile.conflict" => ("konflik ditandai", "conflict flagged"),
        "reconcile.conflict_cleared" => ("konflik selesai", "conflict cleared"),
        "reconcile.linked" => ("ditautkan ke LAPOR!", "linked to LAPOR!"),
        "operator.retry" => ("dikirim ulang oleh petugas", "retried by an operator"),
        "operator.discard" => ("dibuang oleh petugas", "discarded by an operator"),
        "pii_viewed" => ("identitas pelapor dilihat", "reporter identity viewed"),
        "pii_erased" => ("identitas pelapor dihapus", "reporter identity erased"),
        "pii_rotated" => (
            "kunci identitas pelapor diganti",
            "reporter identity key rotated",
        ),
        "bridge.started" => ("bridge dijalankan", "bridge started"),
        other => return other.to_string(),
    };
    match lang {
        Lang::Id => id.to_string(),
        Lang::En => en.to_string(),
    }
}

/// Who started a run: the schedule, the command line, or an API token.
pub fn trigger_label(lang: Lang, trigger: &str) -> String {
    match trigger.strip_prefix("token:") {
        Some(name) => format!("{} ({name})", t(lang, K::TrigApi)),
        None => label(lang, trigger_key(trigger), trigger),
    }
}

/// A label from one of the functions above, or the raw value.
pub fn label(lang: Lang, key: Option<K>, raw: &str) -> String {
    key.map_or_else(|| raw.to_string(), |k| t(lang, k).to_string())
}

/// "3 hari 2 jam" / "3 d 2 h": a coarse, readable age.
pub fn age(lang: Lang, secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let (ud, uh, um, us) = match lang {
        Lang::Id => ("hari", "jam", "menit", "detik"),
        Lang::En => ("d", "h", "min", "s"),
    };
    if d > 0 {
        format!("{d} {ud} {h} {uh}")
    } else if h > 0 {
        format!("{h} {uh} {m} {um}")
    } else if m > 0 {
        format!("{m} {um} {sec} {us}")
    } else {
        format!("{sec} {us}")
    }
}

/// How long ago, as people say it: "2 detik yang lalu", "3 hours ago".
pub fn ago(lang: Lang, secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        return match lang {
            Lang::Id => "baru saja".into(),
            Lang::En => "just now".into(),
        };
    }
    let (n, unit) = if s < 60 {
        (s, 0)
    } else if s < 3600 {
        (s / 60, 1)
    } else if s < 86_400 {
        (s / 3600, 2)
    } else {
        (s / 86_400, 3)
    };
    match lang {
        Lang::Id => {
            let unit = ["detik", "menit", "jam", "hari"][unit];
            format!("{n} {unit} yang lalu")
        }
        Lang::En => {
            let unit = ["second", "minute", "hour", "day"][unit];
            let plural = if n == 1 { "" } else { "s" };
            format!("{n} {unit}{plural} ago")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_come_from_the_query_then_the_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of_request(None, &h), Lang::Id);
        h.insert("cookie", "a=b; lang=en".parse().unwrap());
        assert_eq!(Lang::of_request(None, &h), Lang::En);
        assert_eq!(Lang::of_request(Some("x=1&lang=id"), &h), Lang::Id);
        assert_eq!(Lang::of_request(Some("lang=fr"), &h), Lang::En);
    }

    #[test]
    fn times_ago_read_naturally() {
        assert_eq!(ago(Lang::Id, 2), "2 detik yang lalu");
        assert_eq!(ago(Lang::Id, 0), "baru saja");
        assert_eq!(ago(Lang::Id, 3 * 3600 + 5), "3 jam yang lalu");
        assert_eq!(ago(Lang::En, 1), "1 second ago");
        assert_eq!(ago(Lang::En, 120), "2 minutes ago");
        assert_eq!(ago(Lang::En, 2 * 86_400), "2 days ago");
    }

    #[test]
    fn ages_are_coarse() {
        assert_eq!(age(Lang::En, 5), "5 s");
        assert_eq!(age(Lang::Id, 3 * 86_400 + 7200 + 5), "3 hari 2 jam");
        assert_eq!(age(Lang::En, 125), "2 min 5 s");
    }
}
