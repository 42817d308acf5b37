//! Users and groups as the emulator stores them, and their Graph properties: which exist,
//! which come back by default, how each renders (docs/graph.md §2.1, §6).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::seed::{SeedGroup, SeedUser};

/// Every user property the emulator knows; `$select` of anything else is refused.
pub(crate) const USER_PROPERTIES: &[&str] = &[
    "id",
    "userPrincipalName",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "mailNickname",
    "accountEnabled",
    "jobTitle",
    "department",
    "employeeId",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "businessPhones",
    "userType",
];

/// What `/users` returns without `$select` (docs/graph.md §2.1): `accountEnabled` is not among them.
pub(crate) const USER_DEFAULT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

pub(crate) const GROUP_PROPERTIES: &[&str] = &[
    "id",
    "displayName",
    "description",
    "mailNickname",
    "mail",
    "mailEnabled",
    "securityEnabled",
    "groupTypes",
];

/// What `/groups` returns without `$select`: the emulator stores no more than this.
pub(crate) const GROUP_DEFAULT: &[&str] = GROUP_PROPERTIES;

/// Users or groups: the two resources the emulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    User,
    Group,
}

impl Kind {
    pub(crate) fn odata_type(self) -> &'static str {
        match self {
            Kind::User => "#microsoft.graph.user",
            Kind::Group => "#microsoft.graph.group",
        }
    }

    pub(crate) fn properties(self) -> &'static [&'static str] {
        match self {
            Kind::User => USER_PROPERTIES,
            Kind::Group => GROUP_PROPERTIES,
        }
    }

    pub(crate) fn defaults(self) -> &'static [&'static str] {
        match self {
            Kind::User => USER_DEFAULT,
            Kind::Group => GROUP_DEFAULT,
        }
    }

    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Kind::User => "microsoft.graph.user",
            Kind::Group => "microsoft.graph.group",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserRecord {
    pub(crate) id: String,
    pub(crate) user_principal_name: String,
    pub(crate) display_name: Option<String>,
    pub(crate) given_name: Option<String>,
    pub(crate) surname: Option<String>,
    pub(crate) mail: Option<String>,
    pub(crate) account_enabled: bool,
    pub(crate) job_title: Option<String>,
    pub(crate) department: Option<String>,
    pub(crate) employee_id: Option<String>,
    pub(crate) mobile_phone: Option<String>,
    pub(crate) office_location: Option<String>,
    pub(crate) preferred_language: Option<String>,
}

fn text(value: &Option<String>) -> Value {
    value
        .as_ref()
        .map_or(Value::Null, |v| Value::String(v.clone()))
}

impl UserRecord {
    pub(crate) fn from_seed(seed: &SeedUser) -> Self {
        Self {
            id: seed.id.clone(),
            user_principal_name: seed.user_principal_name.clone(),
            display_name: seed.display_name.clone(),
            given_name: seed.given_name.clone(),
            surname: seed.surname.clone(),
            mail: seed.mail.clone(),
            account_enabled: seed.account_enabled,
            job_title: seed.job_title.clone(),
            department: seed.department.clone(),
            employee_id: seed.employee_id.clone(),
            mobile_phone: None,
            office_location: None,
            preferred_language: None,
        }
    }

    pub(crate) fn to_seed(&self) -> SeedUser {
        SeedUser {
            id: self.id.clone(),
            user_principal_name: self.user_principal_name.clone(),
            display_name: self.display_name.clone(),
            given_name: self.given_name.clone(),
            surname: self.surname.clone(),
            mail: self.mail.clone(),
            account_enabled: self.account_enabled,
            job_title: self.job_title.clone(),
            department: self.department.clone(),
            employee_id: self.employee_id.clone(),
        }
    }

    /// The property's value (`null` when unset); `None` for a property users do not have.
    pub(crate) fn property(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" => Value::String(self.id.clone()),
            "userPrincipalName" => Value::String(self.user_principal_name.clone()),
            "displayName" => text(&self.display_name),
            "givenName" => text(&self.given_name),
            "surname" => text(&self.surname),
            "mail" => text(&self.mail),
            "mailNickname" => Value::String(
                self.user_principal_name
                    .split('@')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            "accountEnabled" => Value::Bool(self.account_enabled),
            "jobTitle" => text(&self.job_title),
            "department" => text(&self.department),
            "employeeId" => text(&self.employee_id),
            "mobilePhone" => text(&self.mobile_phone),
            "officeLocation" => text(&self.office_location),
            "preferredLanguage" => text(&self.preferred_language),
            "businessPhones" => json!([]),
            "userType" => Value::String("Member".to_owned()),
            _ => return None,
        })
    }

    /// Applies a PATCH-style change in Graph's names; returns the properties that changed.
    pub(crate) fn apply(&mut self, changes: &Map<String, Value>) -> Result<Vec<String>, String> {
        let mut changed = Vec::new();
        for (name, value) in changes {
            let before = self.property(name);
            let optional = |value: &Value| -> Result<Option<String>, String> {
                match value {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(s.clone())),
                    _ => Err(format!("{name} must be a string or null")),
                }
            };
            match name.as_str() {
                "userPrincipalName" => match value {
                    Value::String(s) if !s.trim().is_empty() => {
                        self.user_principal_name = s.clone();
                    }
                    _ => return Err("userPrincipalName must be a non-empty string".to_owned()),
                },
                "displayName" => self.display_name = optional(value)?,
                "givenName" => self.given_name = optional(value)?,
                "surname" => self.surname = optional(value)?,
                "mail" => self.mail = optional(value)?,
                "jobTitle" => self.job_title = optional(value)?,
                "department" => self.department = optional(value)?,
                "employeeId" => self.employee_id = optional(value)?,
                "mobilePhone" => self.mobile_phone = optional(value)?,
                "officeLocation" => self.office_location = optional(value)?,
                "preferredLanguage" => self.preferred_language = optional(value)?,
                "accountEnabled" => match value {
                    Value::Bool(b) => self.account_enabled = *b,
                    _ => return Err("accountEnabled must be a boolean".to_owned()),
                },
                other => return Err(format!("property {other} cannot be changed here")),
            }
            if self.property(name) != before {
                changed.push(name.clone());
            }
        }
        Ok(changed)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupRecord {
    pub(crate) id: String,
    pub(crate) display_name: String,
    pub(crate) description: Option<String>,
    /// Direct members by id: users and groups.
    pub(crate) members: BTreeMap<String, Kind>,
}

impl GroupRecord {
    pub(crate) fn property(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" => Value::String(self.id.clone()),
            "displayName" => Value::String(self.display_name.clone()),
            "description" => text(&self.description),
            "mailNickname" => Value::String(self.mail_nickname()),
            "mail" => Value::Null,
            "mailEnabled" => Value::Bool(false),
            "securityEnabled" => Value::Bool(true),
            "groupTypes" => json!([]),
            _ => return None,
        })
    }

    /// Security groups need a mailNickname too (docs/graph.md §6.2); derived from the name.
    fn mail_nickname(&self) -> String {
        let nickname: String = self
            .display_name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        if nickname.is_empty() {
            "group".to_owned()
        } else {
            nickname
        }
    }

    pub(crate) fn to_seed(&self) -> SeedGroup {
        SeedGroup {
            id: self.id.clone(),
            display_name: self.display_name.clone(),
            description: self.description.clone(),
            members: self.members.keys().cloned().collect(),
        }
    }
}

/// Renders `names` of an object whose properties `property` answers. In delta replies
/// properties that were never set are omitted (docs/graph.md §2.1, §3.2), elsewhere they are `null`.
pub(crate) fn render(
    names: &[&str],
    property: impl Fn(&str) -> Option<Value>,
    omit_null: bool,
) -> Map<String, Value> {
    let mut object = Map::new();
    if let Some(id) = property("id") {
        object.insert("id".to_owned(), id);
    }
    for name in names {
        if let Some(value) = property(name)
            && !(omit_null && value.is_null())
        {
            object.insert((*name).to_owned(), value);
        }
    }
    object
}
