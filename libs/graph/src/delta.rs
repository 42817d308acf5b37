//! Delta rounds on `/users/delta` and `/groups/delta` (docs/graph.md §3): where a round starts, the
//! typed changes it returns, and how the pages of one round are merged.
//!
//! Within a round Graph may repeat an object, split a large group's `members@delta` across pages
//! and use any order (docs/graph.md §3.4, §3.5). The merge keeps one change per object id, in order
//! of first appearance; a later entry for the same object wins, and member changes of one group are
//! unioned, a later entry for the same member winning.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::GraphError;
use crate::model::{Group, Member, User, parse_item, take_id};

/// Where a delta round begins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeltaStart {
    /// No token: every current object (and, for groups, every current member) comes back,
    /// then a deltaLink.
    Full,
    /// `$deltatoken=latest`: no objects, only a deltaLink from now on (docs/graph.md §3.1, "sync
    /// from now").
    FromNow,
    /// A deltaLink a previous round returned, used verbatim.
    Resume(String),
}

/// Why Graph reports an object as removed (`@removed.reason`, docs/graph.md §3.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RemovalReason {
    /// Soft-deleted: restorable from deleted items for 30 days; a restore comes back later as
    /// an ordinary upsert.
    Changed,
    /// Hard-deleted: gone for good.
    Deleted,
    /// A reason this client does not know, as sent.
    Other(String),
}

impl RemovalReason {
    fn parse(removed: &Value) -> Self {
        match removed.get("reason").and_then(Value::as_str) {
            Some("changed") => RemovalReason::Changed,
            Some("deleted") => RemovalReason::Deleted,
            Some(other) => RemovalReason::Other(other.to_owned()),
            None => RemovalReason::Other(String::new()),
        }
    }
}

/// A change to one user.
#[derive(Clone, Debug, PartialEq)]
pub enum UserChange {
    /// Created, changed or restored: the user as it is now (the selected properties).
    Upsert(User),
    Removed {
        id: String,
        reason: RemovalReason,
    },
}

/// A group as a delta round reports it: its properties and its membership changes.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupDelta {
    pub group: Group,
    /// Members added since the previous round; in a [`DeltaStart::Full`] round, every member.
    pub members_added: Vec<Member>,
    /// Members removed since the previous round (also when the member object was deleted).
    pub members_removed: Vec<Member>,
}

/// A change to one group.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupChange {
    Upsert(GroupDelta),
    Removed { id: String, reason: RemovalReason },
}

/// The outcome of one delta round.
#[derive(Clone, Debug, PartialEq)]
pub struct DeltaRound<C> {
    /// One entry per object, merged across the round's pages.
    pub changes: Vec<C>,
    /// `@odata.deltaLink`: store it (replacing the previous one) and pass it to
    /// [`DeltaStart::Resume`] next time. Persisting it is the caller's job.
    pub delta_link: String,
    /// Pages the round took.
    pub pages: u32,
}

/// Merges the users of one round into one change per user, first-seen order.
#[derive(Debug, Default)]
pub(crate) struct UserMerge {
    order: Vec<UserChange>,
    index: HashMap<String, usize>,
}

impl UserMerge {
    pub(crate) fn add(&mut self, value: Value) -> Result<(), GraphError> {
        let (mut object, removed) = split_removed(value, "user")?;
        let (id, change) = match removed {
            Some(reason) => {
                let id = take_id(&mut object, "user")?;
                (id.clone(), UserChange::Removed { id, reason })
            }
            None => {
                let user: User = parse_item(Value::Object(object), "a user")?;
                (user.id.clone(), UserChange::Upsert(user))
            }
        };
        match self.index.get(&id).and_then(|at| self.order.get_mut(*at)) {
            Some(slot) => *slot = change,
            None => {
                self.index.insert(id, self.order.len());
                self.order.push(change);
            }
        }
        Ok(())
    }

    pub(crate) fn into_changes(self) -> Vec<UserChange> {
        self.order
    }
}

/// One group while its round is being merged: member changes indexed by member id, so a
/// group with many members merges in linear time.
#[derive(Debug)]
enum GroupEntry {
    Upsert {
        group: Group,
        /// `(member, removed)` in first-seen order.
        members: Vec<(Member, bool)>,
        index: HashMap<String, usize>,
    },
    Removed {
        id: String,
        reason: RemovalReason,
    },
}

/// Merges the groups of one round into one change per group, first-seen order.
#[derive(Debug, Default)]
pub(crate) struct GroupMerge {
    order: Vec<GroupEntry>,
    index: HashMap<String, usize>,
}

impl GroupMerge {
    pub(crate) fn add(&mut self, value: Value) -> Result<(), GraphError> {
        let (mut object, removed) = split_removed(value, "group")?;
        if let Some(reason) = removed {
            let id = take_id(&mut object, "group")?;
            let entry = GroupEntry::Removed {
                id: id.clone(),
                reason,
            };
            self.put(id, entry);
            return Ok(());
        }
        let members = match object.remove("members@delta") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => Vec::new(),
            Some(_) => {
                return Err(GraphError::InvalidResponse(
                    "members@delta is not an array".to_owned(),
                ));
            }
        };
        let group: Group = parse_item(Value::Object(object), "a group")?;
        let id = group.id.clone();
        let at = match self.index.get(&id).copied() {
            Some(at) => {
                if let Some(slot) = self.order.get_mut(at) {
                    match slot {
                        GroupEntry::Upsert { group: current, .. } => *current = group,
                        // Removed earlier in the round and back now (restored): the later
                        // entry wins.
                        GroupEntry::Removed { .. } => {
                            *slot = GroupEntry::Upsert {
                                group,
                                members: Vec::new(),
                                index: HashMap::new(),
                            };
                        }
                    }
                }
                at
            }
            None => {
                self.put(
                    id,
                    GroupEntry::Upsert {
                        group,
                        members: Vec::new(),
                        index: HashMap::new(),
                    },
                );
                self.order.len() - 1
            }
        };
        let Some(GroupEntry::Upsert {
            members: list,
            index,
            ..
        }) = self.order.get_mut(at)
        else {
            return Ok(());
        };
        for item in members {
            let (object, removed) = split_removed(item, "member")?;
            let member = Member::from_value(Value::Object(object))?;
            let change = (member, removed.is_some());
            // A later change for the same member replaces the earlier one.
            match index.get(&change.0.id).and_then(|at| list.get_mut(*at)) {
                Some(slot) => *slot = change,
                None => {
                    index.insert(change.0.id.clone(), list.len());
                    list.push(change);
                }
            }
        }
        Ok(())
    }

    fn put(&mut self, id: String, entry: GroupEntry) {
        match self.index.get(&id).and_then(|at| self.order.get_mut(*at)) {
            Some(slot) => *slot = entry,
            None => {
                self.index.insert(id, self.order.len());
                self.order.push(entry);
            }
        }
    }

    pub(crate) fn into_changes(self) -> Vec<GroupChange> {
        self.order
            .into_iter()
            .map(|entry| match entry {
                GroupEntry::Removed { id, reason } => GroupChange::Removed { id, reason },
                GroupEntry::Upsert { group, members, .. } => {
                    let (removed, added): (Vec<_>, Vec<_>) =
                        members.into_iter().partition(|(_, removed)| *removed);
                    GroupChange::Upsert(GroupDelta {
                        group,
                        members_added: added.into_iter().map(|(m, _)| m).collect(),
                        members_removed: removed.into_iter().map(|(m, _)| m).collect(),
                    })
                }
            })
            .collect()
    }
}

/// Splits `@removed` off a delta item: the object without it, and the reason if present.
fn split_removed(
    value: Value,
    what: &str,
) -> Result<(Map<String, Value>, Option<RemovalReason>), GraphError> {
    let Value::Object(mut object) = value else {
        return Err(GraphError::InvalidResponse(format!(
            "a {what} delta item is not an object"
        )));
    };
    let removed = object.remove("@removed").map(|r| RemovalReason::parse(&r));
    Ok((object, removed))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::MemberKind;

    #[test]
    fn users_merge_by_id_and_the_last_entry_wins() {
        let mut merge = UserMerge::default();
        let items = [
            json!({"id": "u1", "displayName": "A"}),
            json!({"id": "u2", "@removed": {"reason": "deleted"}}),
            json!({"id": "u1", "displayName": "B"}),
            json!({"id": "u3", "@removed": {"reason": "changed"}}),
        ];
        for item in items {
            assert!(merge.add(item).is_ok());
        }
        let changes = merge.into_changes();
        assert_eq!(changes.len(), 3);
        assert!(
            matches!(&changes[0], UserChange::Upsert(u) if u.id == "u1" && u.display_name.as_deref() == Some("B"))
        );
        assert_eq!(
            changes[1],
            UserChange::Removed {
                id: "u2".to_owned(),
                reason: RemovalReason::Deleted
            }
        );
        assert_eq!(
            changes[2],
            UserChange::Removed {
                id: "u3".to_owned(),
                reason: RemovalReason::Changed
            }
        );
    }

    #[test]
    fn a_group_split_across_pages_is_merged() {
        let mut merge = GroupMerge::default();
        let page1 = json!({"id": "g1", "displayName": "G", "members@delta": [
            {"@odata.type": "#microsoft.graph.user", "id": "u1"},
            {"@odata.type": "#microsoft.graph.user", "id": "u2", "@removed": {"reason": "deleted"}},
        ]});
        let page2 = json!({"id": "g1", "displayName": "G", "members@delta": [
            {"@odata.type": "#microsoft.graph.group", "id": "g2"},
            {"@odata.type": "#microsoft.graph.user", "id": "u1", "@removed": {"reason": "deleted"}},
        ]});
        assert!(merge.add(page1).is_ok());
        assert!(merge.add(page2).is_ok());
        let changes = merge.into_changes();
        assert_eq!(changes.len(), 1);
        let Some(GroupChange::Upsert(delta)) = changes.first() else {
            panic!("{changes:?}");
        };
        let added: Vec<_> = delta
            .members_added
            .iter()
            .map(|m| (&m.id[..], &m.kind))
            .collect();
        assert_eq!(added, vec![("g2", &MemberKind::Group)]);
        let removed: Vec<_> = delta.members_removed.iter().map(|m| &m.id[..]).collect();
        // u1 was added on page 1 and removed on page 2: the removal wins.
        assert_eq!(removed, vec!["u1", "u2"]);
    }

    #[test]
    fn a_removed_group_has_no_members() {
        let mut merge = GroupMerge::default();
        assert!(
            merge
                .add(json!({"id": "g1", "members@delta": [{"id": "u1"}]}))
                .is_ok()
        );
        assert!(
            merge
                .add(json!({"id": "g1", "@removed": {"reason": "changed"}}))
                .is_ok()
        );
        assert_eq!(
            merge.into_changes(),
            vec![GroupChange::Removed {
                id: "g1".to_owned(),
                reason: RemovalReason::Changed
            }]
        );
    }
}
