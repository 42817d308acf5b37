//! A resource's `meta` (RFC 7643 §3.1): type, dates as RFC 3339 with milliseconds, weak ETag
//! version, location. Built the same way where resources are rendered (the gateway) and where
//! filters are evaluated against them (the provisioner).

use serde_json::{Value, json};

/// RFC 3339 with milliseconds, UTC, from unix milliseconds.
pub fn rfc3339(unix_ms: i64) -> String {
    let time = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

/// The weak ETag of a version, as `meta.version` and the `ETag` header carry it.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// `meta` for a resource; `location` is omitted when `None`.
pub fn meta(
    resource_type: &str,
    created_unix_ms: i64,
    modified_unix_ms: i64,
    version: i64,
    location: Option<&str>,
) -> Value {
    let mut meta = json!({
        "resourceType": resource_type,
        "created": rfc3339(created_unix_ms),
        "lastModified": rfc3339(modified_unix_ms),
        "version": etag(version),
    });
    if let (Some(location), Value::Object(map)) = (location, &mut meta) {
        map.insert("location".to_owned(), Value::String(location.to_owned()));
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_versions_as_scim_writes_them() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(etag(7), "W/\"7\"");
        let meta = meta("User", 0, 1000, 2, Some("https://x/Users/1"));
        assert_eq!(meta["lastModified"], "1970-01-01T00:00:01.000Z");
        assert_eq!(meta["location"], "https://x/Users/1");
    }
}
