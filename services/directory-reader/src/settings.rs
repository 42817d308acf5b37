//! A tenant's pull settings: the group scope, the username rule and the deletion guard,
//! validated when set and read with their defaults filled in.

use dirsync_proto::directory::v1 as pb;

use crate::desired::{Rules, USERNAME_ATTRIBUTES};
use crate::entity::pull_settings;
use crate::error::{DirectoryError, Result, quoted};

pub(crate) const DEFAULT_USERNAME_ATTRIBUTE: &str = "userPrincipalName";
/// Scope entries a tenant may name.
const MAX_SCOPE: usize = 500;
const MAX_SCOPE_ENTRY: usize = 256;

/// Settings with defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PullSettings {
    pub(crate) group_scope: Vec<String>,
    pub(crate) username_attribute: String,
    pub(crate) deletion_guard_percent: u32,
}

impl PullSettings {
    pub(crate) fn defaults(guard: u32) -> Self {
        Self {
            group_scope: Vec::new(),
            username_attribute: DEFAULT_USERNAME_ATTRIBUTE.to_owned(),
            deletion_guard_percent: guard,
        }
    }

    /// The stored settings (or none) with the configured guard as the default.
    pub(crate) fn from_stored(stored: Option<&pull_settings::Model>, guard: u32) -> Self {
        let Some(stored) = stored else {
            return Self::defaults(guard);
        };
        Self {
            group_scope: serde_json::from_str(&stored.group_scope).unwrap_or_default(),
            username_attribute: if stored.username_attribute.is_empty() {
                DEFAULT_USERNAME_ATTRIBUTE.to_owned()
            } else {
                stored.username_attribute.clone()
            },
            deletion_guard_percent: stored
                .deletion_guard_percent
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(guard),
        }
    }

    pub(crate) fn to_pb(&self) -> pb::PullSettings {
        pb::PullSettings {
            group_scope: self.group_scope.clone(),
            username_attribute: self.username_attribute.clone(),
            deletion_guard_percent: self.deletion_guard_percent,
        }
    }

    /// The rules for one run: the run's own scope if it names one.
    pub(crate) fn rules(&self, scope_override: &[String]) -> Rules {
        Rules {
            group_scope: if scope_override.is_empty() {
                self.group_scope.clone()
            } else {
                scope_override.to_vec()
            },
            username_attribute: self.username_attribute.clone(),
        }
    }
}

/// A group scope as given: trimmed, without duplicates, bounded. `field` names it in errors.
pub(crate) fn scope(entries: &[String], field: &str) -> Result<Vec<String>> {
    if entries.len() > MAX_SCOPE {
        return Err(DirectoryError::invalid(
            field,
            format!("{field} names more than {MAX_SCOPE} groups"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(entries.len());
    for entry in entries {
        let entry = entry.trim();
        if entry.is_empty() || entry.len() > MAX_SCOPE_ENTRY || entry.contains('\0') {
            return Err(DirectoryError::invalid(
                field,
                format!(
                    "{field}: each entry is a group's display name or object id (1 to \
                     {MAX_SCOPE_ENTRY} bytes)"
                ),
            ));
        }
        if !out.iter().any(|e| e.eq_ignore_ascii_case(entry)) {
            out.push(entry.to_owned());
        }
    }
    Ok(out)
}

/// The settings a caller sets, checked, as stored; `guard` is the configured default.
pub(crate) fn validate(
    tenant_id: &str,
    settings: Option<&pb::PullSettings>,
    now: i64,
) -> Result<pull_settings::Model> {
    let settings = settings.cloned().unwrap_or_default();
    let group_scope = scope(&settings.group_scope, "settings.group_scope")?;
    let attribute = settings.username_attribute.trim();
    let username_attribute = if attribute.is_empty() {
        DEFAULT_USERNAME_ATTRIBUTE.to_owned()
    } else if let Some(known) = USERNAME_ATTRIBUTES
        .iter()
        .find(|a| a.eq_ignore_ascii_case(attribute))
    {
        (*known).to_owned()
    } else {
        return Err(DirectoryError::invalid(
            "settings.username_attribute",
            format!(
                "username_attribute {} is not one of {}",
                quoted(attribute),
                USERNAME_ATTRIBUTES.join(", ")
            ),
        ));
    };
    if settings.deletion_guard_percent > 100 {
        return Err(DirectoryError::invalid(
            "settings.deletion_guard_percent",
            "deletion_guard_percent is a percentage: 0 (the default) to 100",
        ));
    }
    Ok(pull_settings::Model {
        tenant_id: tenant_id.to_owned(),
        group_scope: serde_json::to_string(&group_scope)
            .map_err(|e| DirectoryError::Internal(format!("group scope: {e}")))?,
        username_attribute,
        deletion_guard_percent: (settings.deletion_guard_percent > 0)
            .then(|| i32::try_from(settings.deletion_guard_percent).unwrap_or(100)),
        updated_at: now,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_are_checked_and_defaults_fill_in() {
        let stored = validate(
            "t",
            Some(&pb::PullSettings {
                group_scope: vec![" Sales ".to_owned(), "sales".to_owned(), "g-1".to_owned()],
                username_attribute: "MAIL".to_owned(),
                deletion_guard_percent: 0,
            }),
            1,
        )
        .unwrap();
        let read = PullSettings::from_stored(Some(&stored), 20);
        assert_eq!(read.group_scope, vec!["Sales".to_owned(), "g-1".to_owned()]);
        assert_eq!(read.username_attribute, "mail");
        assert_eq!(read.deletion_guard_percent, 20);
        assert!(
            validate(
                "t",
                Some(&pb::PullSettings {
                    username_attribute: "onPremisesSamAccountName".to_owned(),
                    ..Default::default()
                }),
                1
            )
            .is_err()
        );
        assert!(
            validate(
                "t",
                Some(&pb::PullSettings {
                    deletion_guard_percent: 101,
                    ..Default::default()
                }),
                1
            )
            .is_err()
        );
    }
}
