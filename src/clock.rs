//! Wall-clock time as the wire wants it: Unix milliseconds (event envelopes, status
//! history, outbox schedules) and seconds (message timestamps).
//!
//! Owns nothing; pure functions read the system clock. Called by every layer that stamps
//! something, which is why it sits at the root: `events` and `sessions` both need it, and
//! taking it from either made the two import each other.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Seconds since the Unix epoch.
pub fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_millis_agree() {
        let (ms, s) = (now_ms(), now_s());
        assert!((ms / 1000 - s).abs() <= 1, "{ms} ms vs {s} s");
    }
}
