//! Any bytes as a PATCH body: parsing, applying to a user and planning a
//! group patch must never panic.
#![no_main]

use dirsync_scim::{PatchRequest, apply_patch, normalize_user, parse_group, plan_group_patch};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "id": "2819c223",
        "userName": "bjensen@example.com",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "active": true,
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "manager": {"value": "26118915"}
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    if let Ok(request) = PatchRequest::parse(&body) {
        let original = user();
        let mut resource = original.clone();
        if apply_patch(&mut resource, &request).is_err() {
            assert_eq!(resource, original, "a failed PATCH must leave the resource unchanged");
        }
        let _ = plan_group_patch(&request);
    }
    // The same bytes as POST bodies.
    let _ = normalize_user(body.clone());
    let _ = parse_group(&body);
});
