//! Any string as a LAPOR! time: the three WIB parsers never panic, and what
//! they accept formats and parses back to the same instant (and date), in
//! either datetime form. The audit export's time parameter parser rides along.

#![no_main]

use lapor_bridge::lapor::timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [
        timestamp::parse_datetime(text),
        timestamp::parse_followup_datetime(text),
    ]
    .into_iter()
    .flatten()
    {
        let plain = timestamp::format_datetime(parsed);
        assert_eq!(
            timestamp::parse_datetime(&plain),
            Ok(parsed),
            "{text:?} -> {parsed:?} -> {plain:?}"
        );
        let followup = timestamp::format_followup_datetime(parsed);
        assert_eq!(
            timestamp::parse_followup_datetime(&followup),
            Ok(parsed),
            "{text:?} -> {parsed:?} -> {followup:?}"
        );
    }
    if let Ok(date) = timestamp::parse_date(text) {
        let formatted = timestamp::format_date(date);
        assert_eq!(
            timestamp::parse_date(&formatted),
            Ok(date),
            "{text:?} -> {formatted:?}"
        );
    }
    // The audit export's `since`/`until` (RFC 3339 or a UTC date).
    let _ = lapor_bridge::api::parse_instant("since", Some(text));
});
