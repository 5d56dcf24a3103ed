//! The wall clock, in milliseconds since the Unix epoch, and how ferry prints times and durations:
//! the bottom layer every other module may use (checkpoints stamp rows with it, streams measure lag
//! and retention against it, status, plans and reports print with it).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the system clock is before it.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// A time in milliseconds since the epoch, as RFC 3339 with milliseconds (UTC).
pub fn fmt_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// A duration for people: seconds, minutes or hours.
pub fn human(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_after_2020_and_monotone_enough() {
        let a = now_ms();
        assert!(a > 1_577_836_800_000, "{a}");
        assert!(now_ms() >= a);
    }

    #[test]
    fn times_and_durations_print_for_people() {
        assert_eq!(fmt_ms(1_500), "1970-01-01T00:00:01.500Z");
        assert_eq!(fmt_ms(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(human(42.0), "42 s");
        assert_eq!(human(600.0), "10 min");
        assert_eq!(human(7200.0), "2.0 h");
    }
}
