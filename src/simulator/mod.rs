//! An in-memory LAPOR! that speaks the wire contract, with fault injection.
