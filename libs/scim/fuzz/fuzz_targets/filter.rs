//! Any string: parsing must not panic or overflow the stack, and whatever
//! parses must evaluate, print and re-parse to the same tree.
#![no_main]

use dirsync_scim::{parse_attr_path, parse_filter};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::sync::OnceLock;

fn user() -> &'static Value {
    static USER: OnceLock<Value> = OnceLock::new();
    USER.get_or_init(|| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "id": "2819c223",
            "externalId": "bjensen",
            "userName": "bjensen@example.com",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "active": true,
            "title": "",
            "roles": [{"value": "admin", "primary": "True"}],
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                       {"value": "babs@jensen.org", "type": "home"}],
            "meta": {"created": "2011-08-01T18:29:49.793Z", "version": "W/\"1\""},
            "loginCount": 42,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "manager": {"value": "26118915"}
            }
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    if let Ok(filter) = parse_filter(input) {
        let _ = filter.matches(user());
        let printed = filter.to_string();
        let reparsed = parse_filter(&printed).expect("Display output must parse");
        assert_eq!(reparsed, filter, "round trip of {input:?} via {printed:?}");
    }
    let _ = parse_attr_path(input);
});
