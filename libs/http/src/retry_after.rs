//! `Retry-After: 120` or `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT` (RFC 9110 §10.2.3).

use std::time::{Duration, SystemTime};

/// Parses a `Retry-After` value against `now`. A date in the past means "now" (zero); a value
/// that is neither a non-negative number of seconds nor an HTTP date is `None`, so the caller
/// falls back to its own backoff rather than trusting garbage.
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|byte| byte.is_ascii_digit()) {
        // Saturate rather than fail on absurd values; callers cap what they honour.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    // Some servers send fractional seconds although the RFC does not allow them.
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(u32::MAX as f64)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// [`parse`] against the system clock.
pub fn retry_after(value: &str) -> Option<Duration> {
    parse(value, SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn delay_seconds() {
        assert_eq!(parse("120", at(0)), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 ", at(0)), Some(Duration::ZERO));
        assert_eq!(parse("1.5", at(0)), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn http_dates_in_every_rfc_format() {
        // 1999-12-31T23:59:59Z is 946684799.
        let now = at(946_684_799 - 30);
        for value in [
            "Fri, 31 Dec 1999 23:59:59 GMT",
            "Friday, 31-Dec-99 23:59:59 GMT",
            "Fri Dec 31 23:59:59 1999",
        ] {
            assert_eq!(parse(value, now), Some(Duration::from_secs(30)), "{value}");
        }
    }

    #[test]
    fn a_date_in_the_past_means_now() {
        assert_eq!(
            parse("Fri, 31 Dec 1999 23:59:59 GMT", at(946_684_799 + 60)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_is_none() {
        for value in ["", "soon", "-5", "NaN", "inf", "12abc"] {
            assert_eq!(parse(value, at(0)), None, "{value}");
        }
    }
}
