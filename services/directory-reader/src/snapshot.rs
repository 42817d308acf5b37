//! What the last round saw of the tenant's Entra: users (live, soft-deleted, or gone but still
//! held by the provisioner), groups, and direct memberships, nested groups included. A delta
//! round updates it in place, so each run can compute the whole desired state without reading
//! Graph in full; a full read rebuilds it. Changes are tracked so that only they are written
//! back (see `store`).
//!
//! Beside Entra's data each object records what the provisioner holds for it: a user's
//! provisioner id and the userName it was written under, a group's provisioner id. That is how
//! a delta run finds the provisioner's objects for what changed without listing them all,
//! knows which are its own to remove, and why a removed object stays as `gone` until its
//! removal has been applied.

use std::collections::{HashMap, HashSet};

use dirsync_graph::{
    GroupChange, Member, MemberKind as GraphMemberKind, RemovalReason, UserChange,
};
use serde::{Deserialize, Serialize};

/// Entra keeps soft-deleted users restorable this long (docs/graph.md §3.3); a full read, which
/// cannot see deleted items, keeps a soft-deleted user disabled no longer than that.
pub(crate) const SOFT_DELETE_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// The Graph properties of a user the pull sync uses (docs/graph.md §6.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct EntraUser {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) upn: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) mail: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) mail_nickname: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) display_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) given_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) surname: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) job_title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) department: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) employee_id: String,
    pub(crate) account_enabled: bool,
}

/// The `$select` of user reads: everything [`EntraUser`] holds.
pub(crate) const USER_SELECT: &[&str] = &[
    "id",
    "userPrincipalName",
    "mail",
    "mailNickname",
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "department",
    "employeeId",
    "accountEnabled",
];

/// The `$select` of group reads.
pub(crate) const GROUP_SELECT: &[&str] = &[
    "id",
    "displayName",
    "mailNickname",
    "description",
    "securityEnabled",
    "mailEnabled",
];

fn text(value: Option<&serde_json::Value>) -> String {
    value
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl EntraUser {
    pub(crate) fn from_graph(user: &dirsync_graph::User) -> Self {
        Self {
            upn: user.user_principal_name.clone().unwrap_or_default(),
            mail: user.mail.clone().unwrap_or_default(),
            mail_nickname: text(user.other.get("mailNickname")),
            display_name: user.display_name.clone().unwrap_or_default(),
            given_name: user.given_name.clone().unwrap_or_default(),
            surname: user.surname.clone().unwrap_or_default(),
            job_title: text(user.other.get("jobTitle")),
            department: text(user.other.get("department")),
            employee_id: text(user.other.get("employeeId")),
            // Graph leaves accountEnabled out only when it was not selected; it is.
            account_enabled: user.account_enabled.unwrap_or(true),
        }
    }

    /// The value of a Graph user property, by Graph's name (for the username rule).
    pub(crate) fn property(&self, name: &str) -> &str {
        match name {
            "mail" => &self.mail,
            "mailNickname" => &self.mail_nickname,
            "employeeId" => &self.employee_id,
            _ => &self.upn,
        }
    }
}

/// The Graph properties of a group the pull sync keeps (docs/graph.md §6.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct EntraGroup {
    pub(crate) display_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) mail_nickname: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) description: String,
    pub(crate) security_enabled: bool,
    pub(crate) mail_enabled: bool,
}

impl EntraGroup {
    pub(crate) fn from_graph(group: &dirsync_graph::Group) -> Self {
        Self {
            display_name: group.display_name.clone().unwrap_or_default(),
            mail_nickname: group.mail_nickname.clone().unwrap_or_default(),
            description: group.description.clone().unwrap_or_default(),
            security_enabled: group.security_enabled.unwrap_or(false),
            mail_enabled: group.mail_enabled.unwrap_or(false),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UserState {
    Live,
    /// In Entra's deleted items (`@removed: changed`): disabled, restorable.
    SoftDeleted,
    /// Deleted for good (or vanished from a full read), kept only while the provisioner still
    /// holds it.
    Gone,
}

impl UserState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::SoftDeleted => "soft_deleted",
            Self::Gone => "gone",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "soft_deleted" => Self::SoftDeleted,
            "gone" => Self::Gone,
            _ => Self::Live,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SnapUser {
    pub(crate) user: EntraUser,
    /// The provisioner's user id, when it holds this user.
    pub(crate) applied_id: Option<String>,
    /// The userName the provisioner holds it under.
    pub(crate) applied_name: Option<String>,
    pub(crate) state: UserState,
    /// Unix ms since the state holds (when a soft delete began).
    pub(crate) state_since: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SnapGroup {
    pub(crate) group: EntraGroup,
    /// The provisioner's group id, when it holds a group for this one.
    pub(crate) applied_id: Option<String>,
    pub(crate) gone: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        if text == "group" {
            Self::Group
        } else {
            Self::User
        }
    }

    /// Users and groups; devices, contacts and service principals are not synced.
    fn of(kind: &GraphMemberKind) -> Option<Self> {
        match kind {
            GraphMemberKind::User => Some(Self::User),
            GraphMemberKind::Group => Some(Self::Group),
            GraphMemberKind::Other(_) => None,
        }
    }
}

/// What changed since the snapshot was loaded, for writing back only that.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    /// Everything is written anew (after a full read).
    pub(crate) rewrite: bool,
    pub(crate) users: HashSet<String>,
    pub(crate) groups: HashSet<String>,
    pub(crate) members_added: HashSet<(String, String)>,
    pub(crate) members_removed: HashSet<(String, String)>,
}

impl Dirty {
    pub(crate) fn len(&self) -> usize {
        self.users.len() + self.groups.len() + self.members_added.len() + self.members_removed.len()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) users: HashMap<String, SnapUser>,
    pub(crate) groups: HashMap<String, SnapGroup>,
    /// Group id → direct member id → kind.
    pub(crate) members: HashMap<String, HashMap<String, MemberKind>>,
    /// Member id → the groups it is a direct member of.
    member_of: HashMap<String, HashSet<String>>,
    pub(crate) dirty: Dirty,
}

impl Snapshot {
    /// A snapshot as loaded from the store: nothing dirty.
    pub(crate) fn loaded(
        users: HashMap<String, SnapUser>,
        groups: HashMap<String, SnapGroup>,
        memberships: Vec<(String, String, MemberKind)>,
    ) -> Self {
        let mut snapshot = Self {
            users,
            groups,
            ..Self::default()
        };
        for (group, member, kind) in memberships {
            snapshot.link(&group, &member, kind);
        }
        snapshot.dirty = Dirty::default();
        snapshot
    }

    fn link(&mut self, group: &str, member: &str, kind: MemberKind) {
        let added = self
            .members
            .entry(group.to_owned())
            .or_default()
            .insert(member.to_owned(), kind)
            .is_none();
        self.member_of
            .entry(member.to_owned())
            .or_default()
            .insert(group.to_owned());
        if added {
            let key = (group.to_owned(), member.to_owned());
            if !self.dirty.members_removed.remove(&key) {
                self.dirty.members_added.insert(key);
            }
        }
    }

    fn unlink(&mut self, group: &str, member: &str) {
        let removed = self
            .members
            .get_mut(group)
            .is_some_and(|members| members.remove(member).is_some());
        if let Some(groups) = self.member_of.get_mut(member) {
            groups.remove(group);
            if groups.is_empty() {
                self.member_of.remove(member);
            }
        }
        if removed {
            let key = (group.to_owned(), member.to_owned());
            if !self.dirty.members_added.remove(&key) {
                self.dirty.members_removed.insert(key);
            }
        }
    }

    /// Removes `id` from every group it is in, and (for a group) every member it has.
    fn unlink_everywhere(&mut self, id: &str) {
        let parents: Vec<String> = self
            .member_of
            .get(id)
            .map(|groups| groups.iter().cloned().collect())
            .unwrap_or_default();
        for parent in parents {
            self.unlink(&parent, id);
        }
        let children: Vec<String> = self
            .members
            .get(id)
            .map(|members| members.keys().cloned().collect())
            .unwrap_or_default();
        for child in children {
            self.unlink(id, &child);
        }
        if self.members.get(id).is_some_and(HashMap::is_empty) {
            self.members.remove(id);
        }
    }

    /// Applies one user change of a delta round (docs/graph.md §3.3).
    pub(crate) fn apply_user(&mut self, change: &UserChange, now: i64) {
        match change {
            UserChange::Upsert(user) => {
                let data = EntraUser::from_graph(user);
                let entry = self.users.entry(user.id.clone()).or_insert(SnapUser {
                    user: EntraUser::default(),
                    applied_id: None,
                    applied_name: None,
                    state: UserState::Live,
                    state_since: now,
                });
                if entry.state != UserState::Live {
                    // Restored from deleted items.
                    entry.state = UserState::Live;
                    entry.state_since = now;
                }
                entry.user = data;
                self.dirty.users.insert(user.id.clone());
            }
            UserChange::Removed { id, reason } => {
                let soft = !matches!(reason, RemovalReason::Deleted);
                if soft {
                    // A soft delete (or a reason this client does not know: the cautious
                    // reading) disables; the user stays restorable.
                    if let Some(entry) = self.users.get_mut(id)
                        && entry.state == UserState::Live
                    {
                        entry.state = UserState::SoftDeleted;
                        entry.state_since = now;
                        self.dirty.users.insert(id.clone());
                    }
                } else {
                    self.unlink_everywhere(id);
                    self.forget_user(id, now);
                }
            }
        }
    }

    /// A user deleted for good: kept as `gone` while the provisioner holds it.
    fn forget_user(&mut self, id: &str, now: i64) {
        let Some(entry) = self.users.get_mut(id) else {
            return;
        };
        if entry.applied_id.is_some() {
            entry.state = UserState::Gone;
            entry.state_since = now;
        } else {
            self.users.remove(id);
        }
        self.dirty.users.insert(id.to_owned());
    }

    /// Applies one group change of a delta round (docs/graph.md §3.4): properties, then
    /// member additions and removals.
    pub(crate) fn apply_group(&mut self, change: &GroupChange) {
        match change {
            GroupChange::Upsert(delta) => {
                let id = delta.group.id.clone();
                let entry = self.groups.entry(id.clone()).or_insert(SnapGroup {
                    group: EntraGroup::default(),
                    applied_id: None,
                    gone: false,
                });
                entry.group = EntraGroup::from_graph(&delta.group);
                entry.gone = false;
                self.dirty.groups.insert(id.clone());
                for member in &delta.members_added {
                    if let Some(kind) = MemberKind::of(&member.kind)
                        && member.id != id
                    {
                        self.link(&id, &member.id, kind);
                    }
                }
                for member in &delta.members_removed {
                    self.unlink(&id, &member.id);
                }
            }
            GroupChange::Removed { id, .. } => {
                self.unlink_everywhere(id);
                self.forget_group(id);
            }
        }
    }

    fn forget_group(&mut self, id: &str) {
        let Some(entry) = self.groups.get_mut(id) else {
            return;
        };
        if entry.applied_id.is_some() {
            entry.gone = true;
        } else {
            self.groups.remove(id);
        }
        self.dirty.groups.insert(id.to_owned());
    }

    /// The snapshot a full read gives: Entra's users, groups and direct members now, with
    /// what the provisioner holds carried over from `self`. A user that vanished is gone
    /// unless it was soft-deleted lately (a full read cannot tell a soft delete from a hard
    /// one, and deleted items stay restorable for 30 days).
    pub(crate) fn rebuilt(
        mut self,
        users: &[dirsync_graph::User],
        groups: &[dirsync_graph::Group],
        members: &std::collections::BTreeMap<String, Vec<Member>>,
        now: i64,
    ) -> Self {
        let mut next = Self::default();
        for user in users {
            let previous = self.users.remove(&user.id);
            let (applied_id, applied_name, state_since) = previous
                .map(|p| {
                    let since = if p.state == UserState::Live {
                        p.state_since
                    } else {
                        now
                    };
                    (p.applied_id, p.applied_name, since)
                })
                .unwrap_or((None, None, now));
            next.users.insert(
                user.id.clone(),
                SnapUser {
                    user: EntraUser::from_graph(user),
                    applied_id,
                    applied_name,
                    state: UserState::Live,
                    state_since,
                },
            );
        }
        for (id, mut old) in self.users.drain() {
            match old.state {
                UserState::SoftDeleted if now - old.state_since < SOFT_DELETE_RETENTION_MS => {
                    next.users.insert(id, old);
                }
                _ if old.applied_id.is_some() => {
                    if old.state != UserState::Gone {
                        old.state = UserState::Gone;
                        old.state_since = now;
                    }
                    next.users.insert(id, old);
                }
                _ => {}
            }
        }
        for group in groups {
            let applied_id = self.groups.remove(&group.id).and_then(|g| g.applied_id);
            next.groups.insert(
                group.id.clone(),
                SnapGroup {
                    group: EntraGroup::from_graph(group),
                    applied_id,
                    gone: false,
                },
            );
        }
        for (id, mut old) in self.groups.drain() {
            if old.applied_id.is_some() {
                old.gone = true;
                next.groups.insert(id, old);
            }
        }
        for (group, list) in members {
            if !next.groups.contains_key(group) {
                continue;
            }
            for member in list {
                if let Some(kind) = MemberKind::of(&member.kind)
                    && member.id != *group
                {
                    next.link(group, &member.id, kind);
                }
            }
        }
        next.dirty = Dirty {
            rewrite: true,
            ..Dirty::default()
        };
        next
    }

    /// The provisioner now holds this user as `held` (its id and userName), or no longer does.
    pub(crate) fn set_applied(&mut self, id: &str, held: Option<(String, String)>) {
        let Some(entry) = self.users.get_mut(id) else {
            return;
        };
        let (applied_id, applied_name) = held.map_or((None, None), |(i, n)| (Some(i), Some(n)));
        if entry.applied_id == applied_id && entry.applied_name == applied_name {
            return;
        }
        if applied_id.is_none() && entry.state == UserState::Gone {
            self.users.remove(id);
        } else {
            entry.applied_id = applied_id;
            entry.applied_name = applied_name;
        }
        self.dirty.users.insert(id.to_owned());
    }

    /// The provisioner now holds (or no longer holds) a group for this Entra group.
    pub(crate) fn set_group_applied(&mut self, id: &str, applied_id: Option<String>) {
        let Some(entry) = self.groups.get_mut(id) else {
            return;
        };
        if entry.applied_id == applied_id {
            return;
        }
        if applied_id.is_none() && entry.gone {
            self.groups.remove(id);
        } else {
            entry.applied_id = applied_id;
        }
        self.dirty.groups.insert(id.to_owned());
    }

    /// The groups `ids` are directly in, and those they are in, up the nesting (cycle-safe).
    pub(crate) fn ancestors<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a String>,
    ) -> HashSet<String> {
        let mut found = HashSet::new();
        let mut stack: Vec<&str> = ids.into_iter().map(String::as_str).collect();
        while let Some(id) = stack.pop() {
            if let Some(parents) = self.member_of.get(id) {
                for parent in parents {
                    if found.insert(parent.clone()) {
                        stack.push(parent);
                    }
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dirsync_graph::GroupDelta;

    fn graph_user(id: &str, upn: &str) -> dirsync_graph::User {
        dirsync_graph::User {
            id: id.to_owned(),
            user_principal_name: Some(upn.to_owned()),
            account_enabled: Some(true),
            ..Default::default()
        }
    }

    fn member(id: &str, kind: GraphMemberKind) -> Member {
        Member {
            id: id.to_owned(),
            kind,
            properties: serde_json::Map::new(),
        }
    }

    #[test]
    fn delta_changes_update_users_groups_and_members() {
        let mut snapshot = Snapshot::default();
        snapshot.apply_user(&UserChange::Upsert(graph_user("u1", "a@x")), 1);
        snapshot.apply_user(&UserChange::Upsert(graph_user("u2", "b@x")), 1);
        snapshot.apply_group(&GroupChange::Upsert(GroupDelta {
            group: dirsync_graph::Group {
                id: "g1".to_owned(),
                display_name: Some("G".to_owned()),
                ..Default::default()
            },
            members_added: vec![
                member("u1", GraphMemberKind::User),
                member("u2", GraphMemberKind::User),
                member(
                    "d1",
                    GraphMemberKind::Other("#microsoft.graph.device".to_owned()),
                ),
            ],
            members_removed: vec![],
        }));
        assert_eq!(snapshot.members["g1"].len(), 2);
        let u1 = snapshot.users.get_mut("u1").unwrap();
        u1.applied_id = Some("p1".to_owned());
        u1.applied_name = Some("a@x".to_owned());
        snapshot.apply_user(
            &UserChange::Removed {
                id: "u1".to_owned(),
                reason: RemovalReason::Changed,
            },
            2,
        );
        assert_eq!(snapshot.users["u1"].state, UserState::SoftDeleted);
        snapshot.apply_user(
            &UserChange::Removed {
                id: "u1".to_owned(),
                reason: RemovalReason::Deleted,
            },
            3,
        );
        assert_eq!(
            snapshot.users["u1"].state,
            UserState::Gone,
            "kept while applied"
        );
        assert!(!snapshot.members["g1"].contains_key("u1"));
        snapshot.apply_user(
            &UserChange::Removed {
                id: "u2".to_owned(),
                reason: RemovalReason::Deleted,
            },
            3,
        );
        assert!(!snapshot.users.contains_key("u2"), "never applied: dropped");
        snapshot.set_applied("u1", None);
        assert!(!snapshot.users.contains_key("u1"));
    }

    #[test]
    fn a_full_read_keeps_recent_soft_deletes_and_marks_the_vanished_gone() {
        let mut old = Snapshot::default();
        for (id, state, applied) in [
            ("soft", UserState::SoftDeleted, true),
            ("vanished", UserState::Live, true),
            ("never", UserState::Live, false),
            ("kept", UserState::Live, true),
        ] {
            old.users.insert(
                id.to_owned(),
                SnapUser {
                    user: EntraUser::default(),
                    applied_id: applied.then(|| format!("p-{id}")),
                    applied_name: applied.then(|| format!("{id}@x")),
                    state,
                    state_since: 10,
                },
            );
        }
        let rebuilt = old.rebuilt(
            &[graph_user("kept", "kept@x"), graph_user("new", "new@x")],
            &[],
            &Default::default(),
            20,
        );
        assert_eq!(rebuilt.users["soft"].state, UserState::SoftDeleted);
        assert_eq!(rebuilt.users["vanished"].state, UserState::Gone);
        assert!(!rebuilt.users.contains_key("never"));
        assert_eq!(
            rebuilt.users["kept"].applied_name.as_deref(),
            Some("kept@x")
        );
        assert!(rebuilt.users["new"].applied_name.is_none());
        assert!(rebuilt.dirty.rewrite);
    }
}
