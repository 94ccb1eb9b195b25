//! Every string of the dashboard, in Bahasa Indonesia (the default) and
//! English. One table: a key missing a language does not compile.

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
    InternalError => "Terjadi kesalahan", "Something went wrong";
    InternalErrorText => "Kesalahan internal; lihat log bridge.",
        "Internal error; see the bridge's log.";
    // Overview
    SyncStates => "Status sinkronisasi", "Sync states";
    Count => "Jumlah", "Count";
    Backlog => "Antrean kirim", "Delivery backlog";
    BacklogDepth => "Langkah menunggu (pending + berjalan)", "Waiting steps (pending + running)";
    OldestWaiting => "Umur langkah tertua yang menunggu", "Age of the oldest waiting step";
    DeadLetters => "Gagal terkirim (dead letter)", "Dead letters";
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
    ViewAll => "Lihat semua", "View all";
    // Complaint list
    Filter => "Saring", "Filter";
    Search => "Cari", "Search";
    SearchRef => "Nomor referensi / tracking id", "Reference / tracking id";
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
    TrackingId => "Tracking id", "Tracking id";
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
    Steps => "Langkah kirim (outbox)", "Delivery steps (outbox)";
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
    ExportHelp => "Tanggal YYYY-MM-DD atau waktu RFC 3339 (UTC); kosongkan untuk semua.",
        "A date YYYY-MM-DD or an RFC 3339 time (UTC); leave empty for everything.";
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
    After => "Sesudah", "After";
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
pub fn sync_state_key(s: &str) -> Option<K> {
    Some(match s {
        "pending" => K::SyncPending,
        "synced" => K::SyncSynced,
        "retrying" => K::SyncRetrying,
        "dead" => K::SyncDead,
        "conflict" => K::SyncConflict,
        _ => return Option::None,
    })
}

pub fn step_state_key(s: &str) -> Option<K> {
    Some(match s {
        "pending" => K::StepPending,
        "running" => K::StepRunning,
        "done" => K::StepDone,
        "dead" => K::StepDead,
        "discarded" => K::StepDiscarded,
        _ => return Option::None,
    })
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
    fn ages_are_coarse() {
        assert_eq!(age(Lang::En, 5), "5 s");
        assert_eq!(age(Lang::Id, 3 * 86_400 + 7200 + 5), "3 hari 2 jam");
        assert_eq!(age(Lang::En, 125), "2 min 5 s");
    }
}
