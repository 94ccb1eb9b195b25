//! Everything about LAPOR!'s wire format lives in this module: paths, header
//! names, field names, date formats and status names.

pub mod client;
pub mod error;
pub mod settings;
pub mod status;
pub mod timestamp;
pub mod types;

pub use client::{FileToUpload, LaporClient};
pub use error::{FailureKind, LaporError};
pub use settings::{AuthHeader, LaporSettings};
pub use status::{Status, StatusName, StatusTable};
