//! lapor-bridge keeps a city's complaint center and SP4N-LAPOR! in step: `outbox` delivers, `inbound` pulls and reconciles,
//! `feed` tells the city's app, `web` answers HTTP (`api`, `dashboard`), `app` supervises the daemon's tasks; LAPOR!'s wire
//! format lives only in `lapor`, SQL only in `store`, states and kinds as `domain` types (docs/architecture.md: every module).

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
pub mod domain;
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
