//! The retry schedule: capped exponential backoff with full jitter, a floor
//! after 429 and timeouts, and Retry-After honored within bounds.

use std::time::Duration;

use crate::lapor::{FailureKind, LaporError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    pub max_attempts: i32,
}

impl RetryPolicy {
    /// The ceiling of the wait after the `attempt`-th failure (1-based):
    /// `min(max, base * 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: i32) -> Duration {
        let exp = attempt.clamp(1, 32) as u32 - 1;
        let factor = 2u64.saturating_pow(exp);
        let ms = (self.base.as_millis() as u64).saturating_mul(factor);
        Duration::from_millis(ms).min(self.max)
    }

    /// The wait before the next attempt: a uniformly random time in
    /// `[0, ceiling]`, raised to a floor when LAPOR! asked us to slow down
    /// (its Retry-After, bounded by `max`) or timed out (`base`).
    pub fn delay(&self, attempt: i32, error: Option<&LaporError>, unit: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jittered = ceiling.mul_f64(unit.clamp(0.0, 1.0));
        let floor = match error {
            Some(e) if e.kind() == FailureKind::RateLimited => {
                e.retry_after().unwrap_or(self.base).min(self.max)
            }
            Some(e) if e.kind() == FailureKind::Timeout => self.base,
            _ => Duration::ZERO,
        };
        jittered.max(floor)
    }

    /// The same with a random jitter unit.
    pub fn delay_random(&self, attempt: i32, error: Option<&LaporError>) -> Duration {
        let unit: f64 = rand::random();
        self.delay(attempt, error, unit)
    }

    /// Whether the failure that made `attempt` failures ends the step.
    pub fn exhausted(&self, attempts_so_far: i32) -> bool {
        attempts_so_far >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(10),
            max_attempts: 5,
        }
    }

    #[test]
    fn backoff_stays_within_full_jitter_bounds() {
        let p = policy();
        for attempt in 1..=40 {
            let ceiling = p.ceiling(attempt);
            assert!(ceiling <= p.max);
            for unit in [0.0, 0.25, 0.5, 0.999, 1.0] {
                let d = p.delay(attempt, None, unit);
                assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
            }
        }
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(4), Duration::from_millis(800));
        assert_eq!(p.ceiling(30), Duration::from_secs(10));
    }

    #[test]
    fn retry_after_is_a_floor_bounded_by_max() {
        let p = policy();
        let limited = |secs| LaporError::Retryable {
            kind: FailureKind::RateLimited,
            status: Some(429),
            retry_after: Some(Duration::from_secs(secs)),
            message: String::new(),
        };
        assert_eq!(p.delay(1, Some(&limited(2)), 0.0), Duration::from_secs(2));
        assert_eq!(
            p.delay(1, Some(&limited(3600)), 0.0),
            Duration::from_secs(10)
        );
        let timeout = LaporError::UnknownOutcome {
            kind: FailureKind::Timeout,
            status: None,
            message: String::new(),
        };
        assert_eq!(p.delay(1, Some(&timeout), 0.0), Duration::from_millis(100));
    }
}
