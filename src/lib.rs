//! lapor-bridge: keeps a city's complaint center and SP4N-LAPOR! in step.
//!
//! One module per concern: `config` (typed settings), `lapor` (the LAPOR! wire
//! format and client), `simulator` (an in-memory LAPOR!), `store` (SQL, one
//! module per table family), `outbox` (delivery), `pii` (reporter identity,
//! encrypted at rest), `inbound` (pull and reconciliation), `sla` (working-day
//! deadlines), `feed` (the change feed and its webhooks), `checkpoints` (the
//! audit log's head written outside the database), `api` (admin HTTP, its
//! edge and its OpenAPI document), `params` (query parameters, pages and
//! instants as every surface reads them), `doctor` (first-contact checks
//! against LAPOR!), `cli`.

pub mod actions;
pub mod app;
pub mod audit_export;
pub mod bench;
pub mod bridge;
pub mod checkpoints;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod doctor;
pub mod feed;
pub mod gauges;
pub mod healthcheck;
pub mod inbound;
pub mod lapor;
pub mod metrics;
pub mod outbox;
pub mod params;
pub mod pii;
pub mod shutdown;
pub mod simulator;
pub mod sla;
pub mod status_document;
pub mod store;
pub mod submit_document;
pub mod supervisor;
pub mod telemetry;
pub mod time;
pub mod web;
