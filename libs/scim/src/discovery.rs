//! Discovery resources: `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`
//! (RFC 7643 §5–§7).
//!
//! Entra calls `/Schemas` for gallery apps and flattens it into attribute
//! paths that it matches case-insensitively against the mapping, so the
//! output uses camelCase enum values (`readWrite`) and never contains `null`.

use serde_json::{Map, Value, json};

use crate::schema::{
    AttrDef, AttrType, ENTERPRISE_ATTRS, GROUP_ATTRS, SCHEMA_ENTERPRISE_USER, SCHEMA_GROUP,
    SCHEMA_RESOURCE_TYPE, SCHEMA_SCHEMA, SCHEMA_SERVICE_PROVIDER_CONFIG, SCHEMA_USER, USER_ATTRS,
};

fn base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

/// The ServiceProviderConfig resource.
pub fn service_provider_config(
    base_url: &str,
    max_results: u32,
    max_payload_bytes: usize,
) -> Value {
    json!({
        "schemas": [SCHEMA_SERVICE_PROVIDER_CONFIG],
        "documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
        "patch": {"supported": true},
        // Entra never uses /Bulk; maxPayloadSize still tells clients the body limit.
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": max_payload_bytes},
        "filter": {"supported": true, "maxResults": max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        // No Microsoft source shows Entra sending If-Match or reading ETag
        // (reference Q17), and advertising support would oblige us to
        // honour preconditions on every write.
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token in the Authorization header (the Entra 'Secret Token').",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base(base_url))
        }
    })
}

fn attr_json(d: &AttrDef) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(d.name));
    m.insert("type".into(), json!(d.ty.as_str()));
    m.insert("multiValued".into(), json!(d.multi));
    m.insert("description".into(), json!(d.description));
    m.insert("required".into(), json!(d.required));
    m.insert("caseExact".into(), json!(d.case_exact));
    m.insert("mutability".into(), json!(d.mutability.as_str()));
    m.insert("returned".into(), json!(d.returned.as_str()));
    m.insert("uniqueness".into(), json!(d.uniqueness.as_str()));
    if !d.sub.is_empty() {
        m.insert(
            "subAttributes".into(),
            Value::Array(d.sub.iter().map(attr_json).collect()),
        );
    }
    if !d.canonical.is_empty() {
        m.insert("canonicalValues".into(), json!(d.canonical));
    }
    if d.ty == AttrType::Reference {
        m.insert("referenceTypes".into(), json!(d.reference_types));
    }
    Value::Object(m)
}

fn schema_json(
    base_url: &str,
    id: &str,
    name: &str,
    description: &str,
    attrs: &[AttrDef],
) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attrs.iter().map(attr_json).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{id}", base(base_url))
        }
    })
}

/// The User, Group and EnterpriseUser schemas, for a `/Schemas` ListResponse.
pub fn schemas(base_url: &str) -> Vec<Value> {
    vec![
        schema_json(base_url, SCHEMA_USER, "User", "User Account", USER_ATTRS),
        schema_json(base_url, SCHEMA_GROUP, "Group", "Group", GROUP_ATTRS),
        schema_json(
            base_url,
            SCHEMA_ENTERPRISE_USER,
            "EnterpriseUser",
            "Enterprise User",
            ENTERPRISE_ATTRS,
        ),
    ]
}

/// One schema by its URN (case-insensitive), for `/Schemas/{id}`.
pub fn schema_by_id(base_url: &str, id: &str) -> Option<Value> {
    schemas(base_url).into_iter().find(|s| {
        s["id"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(id.trim()))
    })
}

/// The User (with the enterprise extension) and Group resource types.
pub fn resource_types(base_url: &str) -> Vec<Value> {
    let b = base(base_url);
    vec![
        json!({
            "schemas": [SCHEMA_RESOURCE_TYPE],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": SCHEMA_USER,
            "schemaExtensions": [{"schema": SCHEMA_ENTERPRISE_USER, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{b}/ResourceTypes/User")}
        }),
        json!({
            "schemas": [SCHEMA_RESOURCE_TYPE],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Group",
            "schema": SCHEMA_GROUP,
            "meta": {"resourceType": "ResourceType", "location": format!("{b}/ResourceTypes/Group")}
        }),
    ]
}

/// One resource type by id (`User`/`Group`, case-insensitive).
pub fn resource_type_by_id(base_url: &str, id: &str) -> Option<Value> {
    resource_types(base_url).into_iter().find(|r| {
        r["id"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(id.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_null(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Array(a) => a.iter().any(has_null),
            Value::Object(o) => o.values().any(has_null),
            _ => false,
        }
    }

    #[test]
    fn service_provider_config_shape() {
        let c = service_provider_config("https://h/scim/v2/", 200, 1_048_576);
        assert_eq!(c["patch"]["supported"], true);
        assert_eq!(c["bulk"]["supported"], false);
        assert_eq!(c["filter"], json!({"supported": true, "maxResults": 200}));
        assert_eq!(c["etag"]["supported"], false);
        assert_eq!(c["sort"]["supported"], false);
        assert_eq!(c["changePassword"]["supported"], false);
        assert_eq!(c["authenticationSchemes"][0]["type"], "oauthbearertoken");
        assert_eq!(
            c["meta"]["location"],
            "https://h/scim/v2/ServiceProviderConfig"
        );
        assert!(!has_null(&c));
    }

    #[test]
    fn schemas_are_complete_and_null_free() {
        let all = schemas("/v2");
        assert_eq!(all.len(), 3);
        for s in &all {
            assert!(!has_null(s));
            assert_eq!(s["meta"]["resourceType"], "Schema");
            assert_eq!(
                s["meta"]["location"],
                format!("/v2/Schemas/{}", s["id"].as_str().unwrap())
            );
        }
        let user = &all[0];
        let names: Vec<&str> = user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        for n in [
            "userName",
            "name",
            "displayName",
            "active",
            "emails",
            "phoneNumbers",
            "addresses",
            "externalId",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        let user_name = &user["attributes"][0];
        assert_eq!(user_name["mutability"], "readWrite");
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["required"], true);
        let emails = user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "emails")
            .unwrap();
        assert_eq!(emails["multiValued"], true);
        assert!(
            emails["subAttributes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == "primary" && s["type"] == "boolean")
        );
        let ent = schema_by_id(
            "/v2",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER",
        )
        .unwrap();
        assert_eq!(ent["name"], "EnterpriseUser");
        let group = schema_by_id("/v2", SCHEMA_GROUP).unwrap();
        assert_eq!(group["attributes"][0]["name"], "displayName");
        assert!(schema_by_id("/v2", "urn:nope").is_none());
    }

    #[test]
    fn resource_types_shape() {
        let rts = resource_types("https://h/");
        assert_eq!(rts.len(), 2);
        let user = resource_type_by_id("https://h", "user").unwrap();
        assert_eq!(
            user["schemaExtensions"][0]["schema"],
            SCHEMA_ENTERPRISE_USER
        );
        assert_eq!(user["meta"]["location"], "https://h/ResourceTypes/User");
        assert_eq!(
            resource_type_by_id("https://h", "Group").unwrap()["endpoint"],
            "/Groups"
        );
        assert!(resource_type_by_id("https://h", "Device").is_none());
        assert!(rts.iter().all(|r| !has_null(r)));
    }
}
