//! The emulated directory: users (live and soft-deleted), groups, memberships in both
//! directions, and every change recorded in the [`ChangeLog`]. Indexed by id so that paging
//! through 100k users costs a range lookup per page, not a scan.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use dirsync_entra_simulator::Directory;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::changelog::{ChangeLog, Event};
use super::objects::{GroupRecord, Kind, UserRecord};
use super::seed::{GraphSeed, SeedError, SeedGroup, SeedUser};

/// Why an admin change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("bad request: {0}")]
    BadRequest(String),
}

/// A soft-deleted user and the groups it left, rejoined on restore.
#[derive(Clone, Debug)]
struct DeletedUser {
    record: UserRecord,
    groups: Vec<String>,
}

/// The whole tenant as JSON, with Graph's field names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphStateDump {
    pub users: Vec<SeedUser>,
    /// Soft-deleted users, restorable.
    pub deleted_users: Vec<SeedUser>,
    pub groups: Vec<SeedGroup>,
    /// Where the change log stands: the position the next change takes.
    pub change_log_position: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Tenant {
    users: BTreeMap<String, UserRecord>,
    deleted_users: BTreeMap<String, DeletedUser>,
    groups: BTreeMap<String, GroupRecord>,
    /// Member id → the groups it is a direct member of.
    member_of: HashMap<String, BTreeSet<String>>,
    /// Lower-cased UPN → user id, live and soft-deleted: UPNs are unique.
    upns: HashMap<String, String>,
    pub(crate) log: ChangeLog,
}

impl Tenant {
    /// The seed as the starting state; the change log starts empty, at position 0.
    pub(crate) fn from_seed(seed: &GraphSeed) -> Result<Self, SeedError> {
        let mut tenant = Tenant::default();
        for user in &seed.users {
            tenant
                .insert_user(user)
                .map_err(|e| SeedError::Invalid(e.to_string()))?;
        }
        for group in &seed.groups {
            if group.id.is_empty() {
                return Err(SeedError::Invalid(format!(
                    "group {:?} has no id",
                    group.display_name
                )));
            }
            if tenant.groups.contains_key(&group.id) || tenant.users.contains_key(&group.id) {
                return Err(SeedError::Invalid(format!("duplicate id {}", group.id)));
            }
            tenant.groups.insert(
                group.id.clone(),
                GroupRecord {
                    id: group.id.clone(),
                    display_name: group.display_name.clone(),
                    description: group.description.clone(),
                    members: BTreeMap::new(),
                },
            );
        }
        for group in &seed.groups {
            for member in &group.members {
                let kind = tenant.kind_of(member).ok_or_else(|| {
                    SeedError::Invalid(format!("group {} lists unknown member {member}", group.id))
                })?;
                if *member == group.id {
                    return Err(SeedError::Invalid(format!(
                        "group {} is a member of itself",
                        group.id
                    )));
                }
                tenant.link(&group.id, member, kind);
            }
        }
        tenant.log = ChangeLog::default();
        Ok(tenant)
    }

    fn insert_user(&mut self, seed: &SeedUser) -> Result<String, AdminError> {
        let mut record = UserRecord::from_seed(seed);
        if record.id.is_empty() {
            record.id = uuid::Uuid::new_v4().to_string();
        }
        if record.user_principal_name.trim().is_empty() {
            return Err(AdminError::BadRequest(
                "userPrincipalName is required".to_owned(),
            ));
        }
        if self.exists(&record.id) {
            return Err(AdminError::Conflict(format!("id {} is taken", record.id)));
        }
        let upn = record.user_principal_name.to_ascii_lowercase();
        if self.upns.contains_key(&upn) {
            return Err(AdminError::Conflict(format!(
                "userPrincipalName {} is taken",
                record.user_principal_name
            )));
        }
        let id = record.id.clone();
        self.upns.insert(upn, id.clone());
        self.users.insert(id.clone(), record);
        Ok(id)
    }

    fn exists(&self, id: &str) -> bool {
        self.users.contains_key(id)
            || self.deleted_users.contains_key(id)
            || self.groups.contains_key(id)
    }

    /// A live user or group.
    pub(crate) fn kind_of(&self, id: &str) -> Option<Kind> {
        if self.users.contains_key(id) {
            Some(Kind::User)
        } else if self.groups.contains_key(id) {
            Some(Kind::Group)
        } else {
            None
        }
    }

    fn link(&mut self, group: &str, member: &str, kind: Kind) -> bool {
        let Some(record) = self.groups.get_mut(group) else {
            return false;
        };
        if record.members.insert(member.to_owned(), kind).is_some() {
            return false;
        }
        self.member_of
            .entry(member.to_owned())
            .or_default()
            .insert(group.to_owned());
        self.log.push(
            Kind::Group,
            group,
            Event::MemberAdded {
                member: member.to_owned(),
                kind,
            },
        );
        true
    }

    fn unlink(&mut self, group: &str, member: &str) -> bool {
        let Some(kind) = self
            .groups
            .get_mut(group)
            .and_then(|g| g.members.remove(member))
        else {
            return false;
        };
        if let Some(groups) = self.member_of.get_mut(member) {
            groups.remove(group);
            if groups.is_empty() {
                self.member_of.remove(member);
            }
        }
        self.log.push(
            Kind::Group,
            group,
            Event::MemberRemoved {
                member: member.to_owned(),
                kind,
            },
        );
        true
    }

    /// Removes `id` from every group it is a direct member of; returns those groups.
    fn leave_all(&mut self, id: &str) -> Vec<String> {
        let groups: Vec<String> = self
            .member_of
            .get(id)
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default();
        for group in &groups {
            self.unlink(group, id);
        }
        groups
    }

    // ----- reads -----

    pub(crate) fn user(&self, id: &str) -> Option<&UserRecord> {
        self.users.get(id)
    }

    pub(crate) fn group(&self, id: &str) -> Option<&GroupRecord> {
        self.groups.get(id)
    }

    pub(crate) fn is_soft_deleted(&self, id: &str) -> bool {
        self.deleted_users.contains_key(id)
    }

    pub(crate) fn user_count(&self) -> usize {
        self.users.len()
    }

    pub(crate) fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Live users with an id above `after`, in id order.
    pub(crate) fn users_after<'a>(
        &'a self,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a UserRecord> + 'a {
        self.users
            .range::<str, _>((bound(after), Bound::Unbounded))
            .map(|(_, u)| u)
    }

    pub(crate) fn groups_after<'a>(
        &'a self,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a GroupRecord> + 'a {
        self.groups
            .range::<str, _>((bound(after), Bound::Unbounded))
            .map(|(_, g)| g)
    }

    /// Every user and group below `group` through nested groups, the nested groups included,
    /// in id order; cycle-safe, the group itself never listed.
    pub(crate) fn transitive_members(&self, group: &str) -> Vec<(String, Kind)> {
        let mut found: BTreeMap<String, Kind> = BTreeMap::new();
        let mut stack = vec![group.to_owned()];
        let mut seen = BTreeSet::from([group.to_owned()]);
        while let Some(current) = stack.pop() {
            let Some(record) = self.groups.get(&current) else {
                continue;
            };
            for (member, kind) in &record.members {
                if member != group {
                    found.insert(member.clone(), *kind);
                }
                if *kind == Kind::Group && seen.insert(member.clone()) {
                    stack.push(member.clone());
                }
            }
        }
        found.into_iter().collect()
    }

    pub(crate) fn dump(&self) -> GraphStateDump {
        GraphStateDump {
            users: self.users.values().map(UserRecord::to_seed).collect(),
            deleted_users: self
                .deleted_users
                .values()
                .map(|d| d.record.to_seed())
                .collect(),
            groups: self.groups.values().map(GroupRecord::to_seed).collect(),
            change_log_position: self.log.position(),
        }
    }

    // ----- changes -----

    pub(crate) fn create_user(&mut self, seed: &SeedUser) -> Result<String, AdminError> {
        let id = self.insert_user(seed)?;
        self.log.push(Kind::User, &id, Event::Created);
        Ok(id)
    }

    pub(crate) fn update_user(
        &mut self,
        id: &str,
        changes: &Map<String, Value>,
    ) -> Result<(), AdminError> {
        let user = self
            .users
            .get(id)
            .ok_or_else(|| AdminError::NotFound(format!("user {id}")))?;
        let mut updated = user.clone();
        let changed = updated.apply(changes).map_err(AdminError::BadRequest)?;
        let old_upn = user.user_principal_name.to_ascii_lowercase();
        let new_upn = updated.user_principal_name.to_ascii_lowercase();
        if old_upn != new_upn {
            if self.upns.contains_key(&new_upn) {
                return Err(AdminError::Conflict(format!(
                    "userPrincipalName {} is taken",
                    updated.user_principal_name
                )));
            }
            self.upns.remove(&old_upn);
            self.upns.insert(new_upn, id.to_owned());
        }
        self.users.insert(id.to_owned(), updated);
        if !changed.is_empty() {
            self.log.push(Kind::User, id, Event::Updated(changed));
        }
        Ok(())
    }

    /// To deleted items: gone from lists and groups, restorable, `@removed: changed` in delta.
    pub(crate) fn soft_delete_user(&mut self, id: &str) -> Result<(), AdminError> {
        if !self.users.contains_key(id) {
            return Err(AdminError::NotFound(format!("user {id}")));
        }
        let groups = self.leave_all(id);
        if let Some(record) = self.users.remove(id) {
            self.deleted_users
                .insert(id.to_owned(), DeletedUser { record, groups });
        }
        self.log.push(Kind::User, id, Event::SoftDeleted);
        Ok(())
    }

    /// Back from deleted items, into the groups it left that still exist.
    pub(crate) fn restore_user(&mut self, id: &str) -> Result<(), AdminError> {
        let deleted = self
            .deleted_users
            .remove(id)
            .ok_or_else(|| AdminError::NotFound(format!("deleted user {id}")))?;
        self.users.insert(id.to_owned(), deleted.record);
        self.log.push(Kind::User, id, Event::Restored);
        for group in deleted.groups {
            self.link(&group, id, Kind::User);
        }
        Ok(())
    }

    /// Gone for good, live or soft-deleted: `@removed: deleted` in delta.
    pub(crate) fn hard_delete_user(&mut self, id: &str) -> Result<(), AdminError> {
        let record = if self.users.contains_key(id) {
            self.leave_all(id);
            self.users.remove(id)
        } else {
            self.deleted_users.remove(id).map(|d| d.record)
        };
        let record = record.ok_or_else(|| AdminError::NotFound(format!("user {id}")))?;
        self.upns
            .remove(&record.user_principal_name.to_ascii_lowercase());
        self.log.push(Kind::User, id, Event::HardDeleted);
        Ok(())
    }

    pub(crate) fn create_group(&mut self, seed: &SeedGroup) -> Result<String, AdminError> {
        if seed.display_name.trim().is_empty() {
            return Err(AdminError::BadRequest("displayName is required".to_owned()));
        }
        let id = if seed.id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            seed.id.clone()
        };
        if self.exists(&id) {
            return Err(AdminError::Conflict(format!("id {id} is taken")));
        }
        let mut kinds = Vec::with_capacity(seed.members.len());
        for member in &seed.members {
            let kind = self
                .kind_of(member)
                .ok_or_else(|| AdminError::NotFound(format!("member {member}")))?;
            kinds.push((member.clone(), kind));
        }
        self.groups.insert(
            id.clone(),
            GroupRecord {
                id: id.clone(),
                display_name: seed.display_name.clone(),
                description: seed.description.clone(),
                members: BTreeMap::new(),
            },
        );
        self.log.push(Kind::Group, &id, Event::Created);
        for (member, kind) in kinds {
            self.link(&id, &member, kind);
        }
        Ok(id)
    }

    pub(crate) fn update_group(
        &mut self,
        id: &str,
        changes: &Map<String, Value>,
    ) -> Result<(), AdminError> {
        let group = self
            .groups
            .get_mut(id)
            .ok_or_else(|| AdminError::NotFound(format!("group {id}")))?;
        let mut changed = Vec::new();
        for (name, value) in changes {
            match (name.as_str(), value) {
                ("displayName", Value::String(s)) if !s.trim().is_empty() => {
                    if group.display_name != *s {
                        group.display_name = s.clone();
                        changed.push(name.clone());
                    }
                }
                ("description", Value::String(_) | Value::Null) => {
                    let new = value.as_str().map(str::to_owned);
                    if group.description != new {
                        group.description = new;
                        changed.push(name.clone());
                    }
                }
                _ => {
                    return Err(AdminError::BadRequest(format!(
                        "group property {name} cannot be set to {value}"
                    )));
                }
            }
        }
        if !changed.is_empty() {
            self.log.push(Kind::Group, id, Event::Updated(changed));
        }
        Ok(())
    }

    /// Security groups are deleted for good (`@removed: deleted`); the group leaves the
    /// groups it was in, and its members stop being members of it.
    pub(crate) fn delete_group(&mut self, id: &str) -> Result<(), AdminError> {
        if !self.groups.contains_key(id) {
            return Err(AdminError::NotFound(format!("group {id}")));
        }
        self.leave_all(id);
        if let Some(group) = self.groups.remove(id) {
            for member in group.members.keys() {
                if let Some(groups) = self.member_of.get_mut(member) {
                    groups.remove(id);
                    if groups.is_empty() {
                        self.member_of.remove(member);
                    }
                }
            }
        }
        self.log.push(Kind::Group, id, Event::HardDeleted);
        Ok(())
    }

    pub(crate) fn add_member(&mut self, group: &str, member: &str) -> Result<(), AdminError> {
        if !self.groups.contains_key(group) {
            return Err(AdminError::NotFound(format!("group {group}")));
        }
        if group == member {
            return Err(AdminError::BadRequest(
                "a group cannot be a member of itself".to_owned(),
            ));
        }
        let kind = self
            .kind_of(member)
            .ok_or_else(|| AdminError::NotFound(format!("member {member}")))?;
        if !self.link(group, member, kind) {
            return Err(AdminError::Conflict(format!(
                "{member} is already a member of {group}"
            )));
        }
        Ok(())
    }

    pub(crate) fn remove_member(&mut self, group: &str, member: &str) -> Result<(), AdminError> {
        if !self.groups.contains_key(group) {
            return Err(AdminError::NotFound(format!("group {group}")));
        }
        if !self.unlink(group, member) {
            return Err(AdminError::NotFound(format!(
                "{member} is not a member of {group}"
            )));
        }
        Ok(())
    }

    /// Makes the tenant hold exactly `directory`'s users, groups and user memberships (group
    /// memberships, the nesting, stay), recording each difference as a change, so a directory
    /// the Entra simulator churned with `apply_changes` reads the same through Graph.
    pub(crate) fn apply_directory(&mut self, directory: &Directory) -> Result<(), AdminError> {
        let wanted = GraphSeed::from_directory(directory);
        let wanted_ids: BTreeSet<&str> = wanted.users.iter().map(|u| u.id.as_str()).collect();
        let gone: Vec<String> = self
            .users
            .keys()
            .chain(self.deleted_users.keys())
            .filter(|id| !wanted_ids.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            self.hard_delete_user(&id)?;
        }
        for user in &wanted.users {
            if self.deleted_users.contains_key(&user.id) {
                self.restore_user(&user.id)?;
            }
            match self.users.get(&user.id) {
                None => {
                    self.create_user(user)?;
                }
                Some(current) => {
                    let changes = differences(&current.to_seed(), user);
                    if !changes.is_empty() {
                        self.update_user(&user.id, &changes)?;
                    }
                }
            }
        }
        let wanted_groups: BTreeSet<&str> = wanted.groups.iter().map(|g| g.id.as_str()).collect();
        let gone: Vec<String> = self
            .groups
            .keys()
            .filter(|id| !wanted_groups.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            self.delete_group(&id)?;
        }
        for group in &wanted.groups {
            let Some(current) = self.groups.get(&group.id) else {
                self.create_group(group)?;
                continue;
            };
            if current.display_name != group.display_name {
                let mut change = Map::new();
                change.insert(
                    "displayName".to_owned(),
                    Value::String(group.display_name.clone()),
                );
                self.update_group(&group.id, &change)?;
            }
            let members: BTreeSet<&str> = group.members.iter().map(String::as_str).collect();
            let current_users: Vec<String> = self
                .groups
                .get(&group.id)
                .map(|g| {
                    g.members
                        .iter()
                        .filter(|(_, kind)| **kind == Kind::User)
                        .map(|(id, _)| id.clone())
                        .collect()
                })
                .unwrap_or_default();
            for user in &current_users {
                if !members.contains(user.as_str()) {
                    self.unlink(&group.id, user);
                }
            }
            for member in &group.members {
                if !current_users.contains(member) {
                    self.add_member(&group.id, member)?;
                }
            }
        }
        Ok(())
    }
}

fn bound(after: Option<&str>) -> Bound<&str> {
    after.map_or(Bound::Unbounded, Bound::Excluded)
}

/// The user properties in which `wanted` differs from `current`, as a PATCH body.
fn differences(current: &SeedUser, wanted: &SeedUser) -> Map<String, Value> {
    let mut changes = Map::new();
    let mut text = |name: &str, a: &Option<String>, b: &Option<String>| {
        if a != b {
            changes.insert(
                name.to_owned(),
                b.as_ref().map_or(Value::Null, |v| Value::String(v.clone())),
            );
        }
    };
    text("displayName", &current.display_name, &wanted.display_name);
    text("givenName", &current.given_name, &wanted.given_name);
    text("surname", &current.surname, &wanted.surname);
    text("mail", &current.mail, &wanted.mail);
    text("jobTitle", &current.job_title, &wanted.job_title);
    text("department", &current.department, &wanted.department);
    text("employeeId", &current.employee_id, &wanted.employee_id);
    if current.user_principal_name != wanted.user_principal_name {
        changes.insert(
            "userPrincipalName".to_owned(),
            Value::String(wanted.user_principal_name.clone()),
        );
    }
    if current.account_enabled != wanted.account_enabled {
        changes.insert(
            "accountEnabled".to_owned(),
            Value::Bool(wanted.account_enabled),
        );
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> GraphSeed {
        let mut seed = GraphSeed::generate(30, 6, 2, 3);
        // A cycle on top of the nesting: group 0 inside group 1.
        let first = seed.groups[0].id.clone();
        seed.groups[1].members.push(first);
        seed
    }

    #[test]
    fn transitive_members_match_the_seeds_own_computation() {
        let seed = seed();
        let Ok(tenant) = Tenant::from_seed(&seed) else {
            panic!("seed");
        };
        for (group, users) in seed.transitive_user_members() {
            let found: BTreeSet<String> = tenant
                .transitive_members(&group)
                .into_iter()
                .filter(|(_, kind)| *kind == Kind::User)
                .map(|(id, _)| id)
                .collect();
            assert_eq!(found, users, "group {group}");
        }
    }

    #[test]
    fn soft_delete_leaves_groups_and_restore_rejoins_them() {
        let seed = seed();
        let Ok(mut tenant) = Tenant::from_seed(&seed) else {
            panic!("seed");
        };
        let user = seed.groups[0].members[0].clone();
        assert!(tenant.soft_delete_user(&user).is_ok());
        assert!(tenant.user(&user).is_none());
        assert!(
            !tenant
                .group(&seed.groups[0].id)
                .is_some_and(|g| g.members.contains_key(&user))
        );
        assert!(tenant.restore_user(&user).is_ok());
        assert!(
            tenant
                .group(&seed.groups[0].id)
                .is_some_and(|g| g.members.contains_key(&user))
        );
        assert!(tenant.hard_delete_user(&user).is_ok());
        assert_eq!(
            tenant.restore_user(&user),
            Err(AdminError::NotFound(format!("deleted user {user}")))
        );
    }

    #[test]
    fn applying_a_churned_directory_makes_the_tenant_match_it() {
        let mut directory = Directory::generate(40, 6, 5);
        let Ok(mut tenant) = Tenant::from_seed(&GraphSeed::from_directory(&directory)) else {
            panic!("seed");
        };
        directory.apply_changes(30, 9);
        assert!(tenant.apply_directory(&directory).is_ok());
        let dump = tenant.dump();
        let wanted = GraphSeed::from_directory(&directory);
        let mut users = wanted.users.clone();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(dump.users, users);
        for group in &wanted.groups {
            let mut members = group.members.clone();
            members.sort();
            let found = dump
                .groups
                .iter()
                .find(|g| g.id == group.id)
                .map(|g| g.members.clone());
            assert_eq!(found, Some(members));
        }
        assert!(dump.change_log_position > 0);
    }
}
