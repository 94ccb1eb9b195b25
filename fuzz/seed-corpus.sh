#!/usr/bin/env bash
# Writes a few seed inputs per fuzz target into fuzz/corpus/<target>/ (ignored
# by git): the answers documented in shared/design/lapor-api.md, submit
# documents from bridge.md, and the example configuration. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"

seed() { # target name content
  mkdir -p "corpus/$1"
  printf '%s' "$3" > "corpus/$1/$2"
}

# --- LAPOR! answers -----------------------------------------------------------
seed lapor_responses institutions '{"success": true, "results": {"data": [{"id": 101, "name": "Pemerintah Kota Palembang"}], "meta": {"page": 1, "page_size": 1000, "total": 1}}}'
seed lapor_responses uploaded '{"success": true, "results": {"docs": [{"id": 9001, "file_name": "surat.pdf"}], "images": [{"id": 9002, "file_name": "foto.jpg"}]}}'
seed lapor_responses created '{"success": true, "message": "Laporan berhasil dibuat", "complaint_id": 123456, "tracking_id": "4812345"}'
seed lapor_responses complaint '{"success": true, "results": {
  "data": {"id": 123456, "tracking_id": "4812345", "title": "...", "content": "...",
           "category_id": 12, "status_code": 2, "status_name": "Terverifikasi",
           "disposition_id": 101, "disposition_name": "Pemerintah Kota Palembang",
           "is_anonymous": 0, "is_secret": "1", "tags_raw": "ref:PLG-2025-000123",
           "created_at": "2025-06-01 09:15:00", "updated_at": "2025-06-02 08:00:00"},
  "data_logs": [{"institution_from": {"id": 1, "name": "Admin LAPOR!"},
                 "institution_to": {"id": 101, "name": "Pemerintah Kota Palembang"},
                 "status_old": {"name": "Belum Terverifikasi", "color": "#999"},
                 "status_new": {"name": "Terverifikasi", "color": "#2a2"},
                 "content": "Laporan didisposisikan dari {{institution_from}} ke {{institution_to}} ({{status_old}} {{status_new}})",
                 "created_at": "2025-06-02 08:00:00"}]}}'
seed lapor_responses followups '{"success": true, "results": {"data": [{"id": 777, "content": "...", "is_secret": 0, "institution": {"id": 101, "name": "..."}, "created_at": "02-06-2025 10:00:00", "attachments": [{"path": "https://example.invalid/signed", "file_name": "foto.jpg", "extension": "jpg"}]}, {"id": "778", "content": "reporter", "is_secret": true, "institution": null, "created_at": "03-06-2025 11:00:00"}]}}'
seed lapor_responses followup_added '{"success": true, "results": {"data": {"id": 778}}}'
seed lapor_responses summary_page '{"success": true, "results": {"data": [{"id": 123456, "tracking_id": "4812345", "title": "t", "status_code": 3, "status_name": "Tindak Lanjut Instansi", "disposition_id": 101, "tags_raw": "ref:PLG-1, x", "created_at": "2025-06-01 09:15:00", "updated_at": "2025-06-02 08:00:00"}], "meta": {"page": 1, "page_size": 100, "total": 250}}}'
seed lapor_responses error '{"success": false, "message": "Data tidak ditemukan", "errors": {"title": ["wajib"]}}'
seed lapor_responses tags 'ref:PLG-2025-000123;foo ref:'

# --- WIB times ----------------------------------------------------------------
seed wib_times datetime '2025-06-01 09:15:00'
seed wib_times followup '02-06-2025 10:00:00'
seed wib_times date '2025-06-01'
seed wib_times midnight ' 2025-06-01 03:00:00 '
seed wib_times rfc3339 '2025-06-01T02:15:00+00:00'
# Regression: panicked in wib::from_wib_naive before the fix (no UTC instant).
seed wib_times regression_min_year '-262143-01-01 00:00:00'

# --- Submit documents ---------------------------------------------------------
seed submit_document minimal '{"local_ref": "PLG-2025-000123", "title": "Jalan rusak", "content": "Jalan berlubang di depan pasar", "category_id": 12, "date_of_incident": "2025-06-01"}'
seed submit_document full '{"local_ref": "PLG-2025-000124", "title": "Lampu jalan mati", "content": "Lampu jalan mati sejak seminggu", "category_id": 3, "disposition_id": 101, "location_id": null, "date_of_incident": "2025-06-01", "is_anonymous": false, "is_secret": 1, "reporter": {"name": "Budi", "phone": "0811", "email": "budi@example.invalid"}, "attachments": [{"file_name": "foto.jpg", "content_base64": "/9j/4AAQ"}]}'
seed submit_document followup '{"content": "Sudah ditindaklanjuti", "is_secret": false}'
seed submit_document forward '{"institution_id": 102, "reason": "Bukan kewenangan kami"}'
seed submit_document numbers '[1, -0, 1.5e300, 18446744073709551615, -9223372036854775808, 0.1]'

# --- Configuration ------------------------------------------------------------
mkdir -p corpus/config_toml
cp ../config/lapor-bridge.example.toml corpus/config_toml/example.toml
seed config_toml small '[bridge]
concurrency = 3
retry_base_ms = 100
retry_max_ms = 10000
[sla]
holidays = [{ date = "2025-01-01", kind = "libur" }]
[lapor.status_names]
"Selesai Ditindaklanjuti" = "closed"'

echo "seeded: $(find corpus -type f | wc -l) files in $(pwd)/corpus"
