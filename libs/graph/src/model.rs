//! What the reads return: users, groups, members and the organization, typed where dirsync
//! needs the field and kept as JSON otherwise (every other `$select`ed property).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::GraphError;

/// `$select` for users when the caller names nothing else: what provisioning reads
/// (docs/graph.md §6.1; `accountEnabled` is not in Graph's default set, docs/graph.md §2.1).
pub const USER_FIELDS: &[&str] = &[
    "id",
    "userPrincipalName",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "accountEnabled",
];

/// `$select` for groups when the caller names nothing else (docs/graph.md §6.2).
pub const GROUP_FIELDS: &[&str] = &[
    "id",
    "displayName",
    "description",
    "mailNickname",
    "mail",
    "mailEnabled",
    "securityEnabled",
    "groupTypes",
];

/// `$select` for member lists: the id is what membership needs; `@odata.type` always comes
/// back (docs/graph.md §2.3).
pub const MEMBER_FIELDS: &[&str] = &["id", "displayName", "userPrincipalName"];

/// A user (docs/graph.md §6.1). `id` is the key: the UPN can change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// Every other property that came back, under Graph's own names.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A group (docs/graph.md §6.2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub mail_nickname: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub mail_enabled: Option<bool>,
    #[serde(default)]
    pub security_enabled: Option<bool>,
    #[serde(default)]
    pub group_types: Option<Vec<String>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// What kind of directory object a member is, from its `@odata.type` (docs/graph.md §2.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MemberKind {
    User,
    Group,
    /// A device, contact, service principal…: the `@odata.type` as sent.
    Other(String),
}

impl MemberKind {
    pub fn from_odata_type(odata_type: &str) -> Self {
        match odata_type {
            "#microsoft.graph.user" => MemberKind::User,
            "#microsoft.graph.group" => MemberKind::Group,
            other => MemberKind::Other(other.to_owned()),
        }
    }
}

/// A member of a group: a user, a nested group, or another directory object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub kind: MemberKind,
    /// The other properties that came back (`displayName`, `userPrincipalName`, …).
    pub properties: Map<String, Value>,
}

impl Member {
    pub(crate) fn from_value(value: Value) -> Result<Self, GraphError> {
        let Value::Object(mut object) = value else {
            return Err(GraphError::InvalidResponse(
                "a member is not a JSON object".to_owned(),
            ));
        };
        let id = take_id(&mut object, "member")?;
        let kind = object
            .remove("@odata.type")
            .and_then(|t| t.as_str().map(MemberKind::from_odata_type))
            .unwrap_or_else(|| MemberKind::Other(String::new()));
        object.remove("@removed");
        Ok(Self {
            id,
            kind,
            properties: object,
        })
    }
}

/// The tenant, as `GET /organization` describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub verified_domains: Vec<VerifiedDomain>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedDomain {
    pub name: String,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub is_initial: bool,
}

/// An object of a Graph collection, typed; the error names what was being read.
pub(crate) fn parse_item<T: serde::de::DeserializeOwned>(
    value: Value,
    what: &str,
) -> Result<T, GraphError> {
    serde_json::from_value(value)
        .map_err(|e| GraphError::InvalidResponse(format!("{what} does not parse: {e}")))
}

pub(crate) fn take_id(object: &mut Map<String, Value>, what: &str) -> Result<String, GraphError> {
    match object.remove("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        _ => Err(GraphError::InvalidResponse(format!("a {what} has no id"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn users_keep_unknown_properties() {
        let user: Result<User, _> = parse_item(
            json!({"id": "u1", "accountEnabled": false, "department": "Retail", "mail": null}),
            "user",
        );
        let Ok(user) = user else {
            panic!("parse");
        };
        assert_eq!(user.account_enabled, Some(false));
        assert_eq!(user.mail, None);
        assert_eq!(user.other.get("department"), Some(&json!("Retail")));
    }

    #[test]
    fn members_keep_their_type() {
        let member = Member::from_value(
            json!({"@odata.type": "#microsoft.graph.group", "id": "g2", "displayName": "Nested"}),
        );
        let Ok(member) = member else {
            panic!("parse");
        };
        assert_eq!(member.kind, MemberKind::Group);
        assert_eq!(member.properties.get("displayName"), Some(&json!("Nested")));
        let device =
            Member::from_value(json!({"@odata.type": "#microsoft.graph.device", "id": "d"}));
        assert_eq!(
            device.ok().map(|m| m.kind),
            Some(MemberKind::Other("#microsoft.graph.device".to_owned()))
        );
        assert!(Member::from_value(json!({"displayName": "no id"})).is_err());
    }
}
