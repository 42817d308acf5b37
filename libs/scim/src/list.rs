//! ListResponse (RFC 7644 §3.4.2) and paging parameters.

use serde_json::{Value, json};

use crate::schema::SCHEMA_LIST_RESPONSE;

/// A ListResponse. `itemsPerPage` is the number of resources in this page.
/// Always used for filtered GETs, including zero results: Entra treats a 404
/// on a query as a compliance failure.
pub fn list_response(resources: Vec<Value>, total_results: u64, start_index: u64) -> Value {
    json!({
        "schemas": [SCHEMA_LIST_RESPONSE],
        "totalResults": total_results,
        "itemsPerPage": resources.len(),
        "startIndex": start_index,
        "Resources": resources,
    })
}

/// Paging from raw `startIndex`/`count` query values, per RFC 7644
/// §3.4.2.4: a `startIndex` below 1 means 1, a negative `count` means 0, a
/// missing one means `default_count`, and `count` is capped at `max_results`.
/// Returns `(start_index, count)`.
pub fn paging(
    start_index: Option<i64>,
    count: Option<i64>,
    default_count: u32,
    max_results: u32,
) -> (u64, u32) {
    let start = start_index
        .filter(|s| *s >= 1)
        .map_or(1, |s| s.unsigned_abs());
    let count = match count {
        None => default_count,
        Some(c) if c < 0 => 0,
        Some(c) => u32::try_from(c).unwrap_or(u32::MAX),
    };
    (start, count.min(max_results))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list() {
        assert_eq!(
            list_response(vec![], 0, 1),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                   "totalResults": 0, "Resources": [], "startIndex": 1, "itemsPerPage": 0})
        );
    }

    #[test]
    fn items_per_page_is_page_size() {
        let l = list_response(vec![json!({"id": "1"}), json!({"id": "2"})], 5, 3);
        assert_eq!(
            (
                l["itemsPerPage"].as_u64(),
                l["totalResults"].as_u64(),
                l["startIndex"].as_u64()
            ),
            (Some(2), Some(5), Some(3))
        );
    }

    #[test]
    fn paging_rules() {
        assert_eq!(paging(None, None, 100, 200), (1, 100));
        assert_eq!(paging(Some(0), Some(-5), 100, 200), (1, 0));
        assert_eq!(paging(Some(11), Some(5), 100, 200), (11, 5));
        assert_eq!(paging(Some(-3), Some(1_000_000), 100, 200), (1, 200));
    }
}
