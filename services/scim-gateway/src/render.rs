//! Provisioner records as SCIM resources: the stored document plus `id` and
//! `meta`, with RFC 3339 dates and a weak ETag version.

use dirsync_proto::provisioner::v1 as pb;
use dirsync_scim::meta::meta;
use serde_json::{Map, Value, json};

fn unix_ms(time: Option<&prost_types::Timestamp>) -> i64 {
    time.map_or(0, dirsync_proto::time::to_unix_ms)
}

pub(crate) fn user_location(base_url: &str, id: &str) -> String {
    format!("{base_url}/Users/{id}")
}

pub(crate) fn group_location(base_url: &str, id: &str) -> String {
    format!("{base_url}/Groups/{id}")
}

/// The stored document with `id` first, then the attributes, then `meta`.
pub(crate) fn user(base_url: &str, user: &pb::User) -> Value {
    let document: Map<String, Value> = serde_json::from_str(&user.scim_json).unwrap_or_default();
    let mut resource = Map::with_capacity(document.len() + 2);
    if let Some(schemas) = document.get("schemas") {
        resource.insert("schemas".to_owned(), schemas.clone());
    } else {
        resource.insert("schemas".to_owned(), json!([dirsync_scim::SCHEMA_USER]));
    }
    resource.insert("id".to_owned(), Value::String(user.id.clone()));
    for (key, value) in document {
        if key != "schemas" {
            resource.insert(key, value);
        }
    }
    resource.insert(
        "meta".to_owned(),
        meta(
            "User",
            unix_ms(user.create_time.as_ref()),
            unix_ms(user.update_time.as_ref()),
            user.version,
            Some(&user_location(base_url, &user.id)),
        ),
    );
    Value::Object(resource)
}

/// A group; `members` only when they were fetched.
pub(crate) fn group(base_url: &str, group: &pb::Group, with_members: bool) -> Value {
    let mut resource = Map::new();
    resource.insert("schemas".to_owned(), json!([dirsync_scim::SCHEMA_GROUP]));
    resource.insert("id".to_owned(), Value::String(group.id.clone()));
    if !group.external_id.is_empty() {
        resource.insert(
            "externalId".to_owned(),
            Value::String(group.external_id.clone()),
        );
    }
    resource.insert(
        "displayName".to_owned(),
        Value::String(group.display_name.clone()),
    );
    if with_members {
        let members = group
            .members
            .iter()
            .map(|member| {
                json!({
                    "value": member.user_id,
                    "display": member.display,
                    "$ref": user_location(base_url, &member.user_id),
                })
            })
            .collect();
        resource.insert("members".to_owned(), Value::Array(members));
    }
    resource.insert(
        "meta".to_owned(),
        meta(
            "Group",
            unix_ms(group.create_time.as_ref()),
            unix_ms(group.update_time.as_ref()),
            group.version,
            Some(&group_location(base_url, &group.id)),
        ),
    );
    Value::Object(resource)
}
