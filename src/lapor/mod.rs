//! Everything about LAPOR!'s wire format lives in this module: paths, header
//! names, field names, date formats and status names.

pub mod status;
pub mod wib;

pub use status::{Status, StatusName, StatusTable};
