//! Naming a group without ambiguity: by id, by exact name (ignoring case), or by whichever of
//! the two a person typed. Pure.

use dirsync_proto::errors::{ApiError, ErrorReason};
use dirsync_proto::mapping::v1 as pb;

use crate::error::{MappingError, quoted};

/// A group as a key is resolved against: its id and its name.
pub(crate) trait Named {
    fn id(&self) -> &str;
    fn name(&self) -> &str;
}

/// Which side a key names, for messages and error details.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Side {
    Entra,
    Maas360,
}

impl Side {
    fn noun(self) -> &'static str {
        match self {
            Self::Entra => "Entra group",
            Self::Maas360 => "MaaS360 user group",
        }
    }

    fn not_found(self, field: &str, value: &str) -> MappingError {
        let (reason, kind) = match self {
            Self::Entra => (ErrorReason::EntraNotFound, "entra_group"),
            Self::Maas360 => (ErrorReason::Maas360NotFound, "maas360_group"),
        };
        MappingError::Refused(Box::new(
            ApiError::new(
                reason,
                format!("{field}: no {} {}", self.noun(), quoted(value)),
            )
            .resource(kind, value),
        ))
    }
}

/// The one group `key` names among `groups`.
pub(crate) fn resolve<'a, G: Named>(
    key: Option<&pb::GroupKey>,
    groups: &'a [G],
    side: Side,
    field: &str,
) -> Result<&'a G, MappingError> {
    let Some(key) = key.and_then(|key| key.key.as_ref()) else {
        return Err(MappingError::invalid(
            field,
            format!("{field} is required: the {}'s id or name", side.noun()),
        ));
    };
    let (value, by_id, by_name) = match key {
        pb::group_key::Key::Id(value) => (value, true, false),
        pb::group_key::Key::Name(value) => (value, false, true),
        pb::group_key::Key::IdOrName(value) => (value, true, true),
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(MappingError::invalid(field, format!("{field} is empty")));
    }
    let with_id: Vec<&G> = if by_id {
        groups.iter().filter(|g| g.id() == value).collect()
    } else {
        Vec::new()
    };
    let with_name: Vec<&G> = if by_name {
        let lower = value.to_lowercase();
        groups
            .iter()
            .filter(|g| g.name().to_lowercase() == lower)
            .collect()
    } else {
        Vec::new()
    };
    match (with_id.as_slice(), with_name.as_slice()) {
        ([group], []) | ([], [group]) => Ok(group),
        ([by_id], [by_name]) if by_id.id() == by_name.id() => Ok(by_id),
        ([by_id], [by_name, ..]) => Err(MappingError::invalid(
            field,
            format!(
                "{field} {} is the id of {} and the name of {} ({}); name it by id or by name",
                quoted(value),
                quoted(by_id.name()),
                by_name.id(),
                side.noun()
            ),
        )),
        ([], []) => Err(side.not_found(field, value)),
        (_, several) => {
            let ids: Vec<&str> = several.iter().take(5).map(|g| g.id()).collect();
            Err(MappingError::invalid(
                field,
                format!(
                    "{} {}s are named {}: name one by id ({})",
                    several.len(),
                    side.noun(),
                    quoted(value),
                    ids.join(", ")
                ),
            ))
        }
    }
}

impl Named for crate::world::EntraGroup {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for crate::world::Maas360Group {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::EntraGroup;

    fn group(id: &str, name: &str) -> EntraGroup {
        EntraGroup {
            id: id.to_owned(),
            name: name.to_owned(),
        }
    }

    fn key(key: pb::group_key::Key) -> pb::GroupKey {
        pb::GroupKey { key: Some(key) }
    }

    #[test]
    fn a_key_names_one_group_or_says_why_not() {
        use pb::group_key::Key;
        let groups = [
            group("g1", "Sales"),
            group("g2", "Finance"),
            group("g3", "finance"),
            group("g4", "g1"),
        ];
        let found =
            |k| resolve(Some(&key(k)), &groups, Side::Entra, "entra_group").map(|g| g.id.clone());
        assert_eq!(found(Key::Id("g1".into())).ok().as_deref(), Some("g1"));
        assert_eq!(found(Key::Name("SALES".into())).ok().as_deref(), Some("g1"));
        assert_eq!(
            found(Key::IdOrName("sales".into())).ok().as_deref(),
            Some("g1")
        );
        let twins = found(Key::Name("Finance".into()))
            .err()
            .map(|e| e.to_string());
        assert!(twins.is_some_and(|m| m.contains("g2") && m.contains("g3")));
        // "g1" is one group's id and another's name.
        assert!(found(Key::IdOrName("g1".into())).is_err());
        assert_eq!(found(Key::Id("g1".into())).ok().as_deref(), Some("g1"));
        assert!(matches!(
            found(Key::Name("Nobody".into())),
            Err(MappingError::Refused(e)) if e.reason() == ErrorReason::EntraNotFound
        ));
        assert!(resolve(None, &groups, Side::Entra, "entra_group").is_err());
    }
}
