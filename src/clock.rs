//! The one clock: wall time since the Unix epoch, and the calendar
//! arithmetic the formats, the status page and certificate checks share.
//! A clock set before 1970 reads as 0 rather than failing.

use std::time::{SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    since_epoch().as_millis() as u64
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    since_epoch().as_secs()
}

/// Nanoseconds since the epoch (a seed, not a time).
pub fn now_nanos() -> u64 {
    since_epoch().as_nanos() as u64
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm; the inverse of the renderers' civil_from_days).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_count_from_the_epoch_both_ways() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
    }

    #[test]
    fn the_clock_moves_forward() {
        let a = now_ms();
        assert!(a > 1_700_000_000_000, "{a}");
        assert!(now_secs() >= a / 1000);
    }
}
