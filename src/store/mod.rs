//! SQL, one module per table family. Every statement binds its parameters.

pub mod audit;
pub mod bench;
pub mod complaints;
pub mod dashboard;
pub mod duplicates;
pub mod events;
pub mod gauges;
pub mod jobs;
pub mod notify;
pub mod outbox;
pub mod pii;
pub mod sessions;
pub mod sync;
pub mod webhooks;
