//! Any text as the configuration file (`--config FILE`): parsing and
//! validation never panic, and a valid configuration yields a working-day
//! calendar, a status table and a retry policy whose delays stay within
//! their ceiling.

#![no_main]

use std::time::Duration;

use lapor_bridge::config::Settings;
use lapor_bridge::lapor::StatusTable;
use lapor_bridge::outbox::retry::RetryPolicy;
use lapor_bridge::sla::WorkingCalendar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(settings) = Settings::from_toml(text) else {
        return;
    };
    let calendar = WorkingCalendar::from_settings(&settings.sla);
    for h in &settings.sla.holidays {
        let _ = calendar.is_working_day(h.date);
    }
    let table = StatusTable::with_overrides(&settings.lapor.status_names);
    for name in settings.lapor.status_names.keys() {
        let _ = table.map(name);
    }
    if settings.validate().is_err() {
        return;
    }
    // As outbox::Engine::new builds it.
    let b = &settings.bridge;
    let policy = RetryPolicy {
        base: Duration::from_millis(b.retry_base_ms),
        max: Duration::from_millis(b.retry_max_ms),
        max_attempts: b.max_attempts,
    };
    for attempt in [1, 2, 10, 33, b.max_attempts] {
        let ceiling = policy.ceiling(attempt);
        assert!(ceiling <= policy.max);
        for unit in [0.0, 0.5, 1.0] {
            assert!(policy.delay(attempt, None, unit) <= ceiling);
        }
    }
});
