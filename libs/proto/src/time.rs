//! `google.protobuf.Timestamp` from and to the unix milliseconds the stores keep.

use prost_types::Timestamp;

pub fn from_unix_ms(unix_ms: i64) -> Timestamp {
    Timestamp {
        seconds: unix_ms.div_euclid(1000),
        nanos: i32::try_from(unix_ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

pub fn to_unix_ms(timestamp: &Timestamp) -> i64 {
    timestamp
        .seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(timestamp.nanos) / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_before_and_after_the_epoch() {
        for unix_ms in [0, 1, 999, 1_700_000_000_123, -1, -1001] {
            assert_eq!(to_unix_ms(&from_unix_ms(unix_ms)), unix_ms);
        }
        assert_eq!(from_unix_ms(-1).nanos, 999_000_000);
    }
}
