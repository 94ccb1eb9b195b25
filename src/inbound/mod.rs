//! LAPOR! to local: applying upstream changes, the scheduled pull, and
//! reconciliation.

pub mod apply;
