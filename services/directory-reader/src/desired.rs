//! The desired state a snapshot of Entra stands for under a tenant's pull settings: which
//! users and groups are in scope, each user's typed fields (Entra's default SCIM mapping), and
//! each group with its flattened transitive user members. Pure: no I/O.
//!
//! - Scope: every live user and group, or the scoped groups (by object id, else by display
//!   name, case-insensitively) and the transitive user members of those groups.
//! - userName: the tenant's username attribute (default `userPrincipalName`); a value without
//!   '@' gets the UPN's domain. A user without a value is skipped, as Entra's provisioning
//!   skips a user whose matching attribute is empty; two users with the same userName keep the
//!   one the provisioner already holds (else the lower object id), and the other is skipped.
//! - Fields: externalId = `mailNickname`, displayName, givenName, familyName = `surname`, one
//!   work email (`mail`, else the UPN), active = `accountEnabled`, title = `jobTitle`,
//!   department, employeeNumber = `employeeId`.
//! - A soft-deleted user the provisioner holds stays, disabled, whatever the scope; one it does
//!   not hold is not created. Nor is a disabled user nobody holds yet (the plan's rule, as
//!   Entra's provisioning creates only enabled users), so pull and push agree.
//! - Group display names are unique in dirsync, not in Entra: of two groups with one name, the
//!   one the provisioner holds (else the lower object id) keeps it and the other gets its object
//!   id's first eight characters in brackets.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use dirsync_proto::provisioner::v1 as pb;

use crate::snapshot::{MemberKind, Snapshot, UserState};

/// The user attributes the pull sync writes, as compared and as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct UserAttributes {
    pub(crate) user_name: String,
    pub(crate) external_id: String,
    pub(crate) display_name: String,
    pub(crate) given_name: String,
    pub(crate) family_name: String,
    /// The work email.
    pub(crate) email: String,
    pub(crate) active: bool,
    pub(crate) title: String,
    pub(crate) department: String,
    pub(crate) employee_number: String,
}

impl UserAttributes {
    pub(crate) fn to_fields(&self) -> pb::UserFields {
        pb::UserFields {
            user_name: self.user_name.clone(),
            external_id: self.external_id.clone(),
            display_name: self.display_name.clone(),
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            emails: if self.email.is_empty() {
                Vec::new()
            } else {
                vec![pb::Email {
                    value: self.email.clone(),
                    r#type: "work".to_owned(),
                    primary: true,
                }]
            },
            active: Some(self.active),
            title: self.title.clone(),
            department: self.department.clone(),
            employee_number: self.employee_number.clone(),
            manager_id: String::new(),
        }
    }

    /// The attributes of a stored user: its work email, else its primary, else its first.
    pub(crate) fn from_fields(fields: &pb::UserFields) -> Self {
        let email = fields
            .emails
            .iter()
            .find(|e| e.r#type.eq_ignore_ascii_case("work"))
            .or_else(|| fields.emails.iter().find(|e| e.primary))
            .or_else(|| fields.emails.first())
            .map(|e| e.value.clone())
            .unwrap_or_default();
        Self {
            user_name: fields.user_name.clone(),
            external_id: fields.external_id.clone(),
            display_name: fields.display_name.clone(),
            given_name: fields.given_name.clone(),
            family_name: fields.family_name.clone(),
            email,
            active: fields.active != Some(false),
            title: fields.title.clone(),
            department: fields.department.clone(),
            employee_number: fields.employee_number.clone(),
        }
    }

    /// The names of the attributes that differ from `other`, with this side's values, for
    /// people: `displayName "Ada L."`.
    pub(crate) fn differences(&self, other: &Self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |name: &str, mine: &str, theirs: &str| {
            if mine != theirs {
                out.push(format!("{name} {}", crate::error::quoted(mine)));
            }
        };
        check("userName", &self.user_name, &other.user_name);
        check("externalId", &self.external_id, &other.external_id);
        check("displayName", &self.display_name, &other.display_name);
        check("givenName", &self.given_name, &other.given_name);
        check("familyName", &self.family_name, &other.family_name);
        check("email", &self.email, &other.email);
        check("title", &self.title, &other.title);
        check("department", &self.department, &other.department);
        check(
            "employeeNumber",
            &self.employee_number,
            &other.employee_number,
        );
        if self.active != other.active {
            out.push(format!("active {}", self.active));
        }
        out
    }
}

/// The Graph user properties a tenant may take its userName from (all are read on every
/// user, so a change of rule needs no new read).
pub(crate) const USERNAME_ATTRIBUTES: &[&str] =
    &["userPrincipalName", "mail", "mailNickname", "employeeId"];

/// How a tenant's Entra becomes desired state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Group display names or object ids; empty for the whole directory.
    pub(crate) group_scope: Vec<String>,
    pub(crate) username_attribute: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DesiredUser {
    pub(crate) entra_id: String,
    pub(crate) attrs: UserAttributes,
    /// False for a soft-deleted user: disabled if held, never created.
    pub(crate) create: bool,
    /// The userName the provisioner holds it under, if it does (matches a rename).
    pub(crate) applied_name: Option<String>,
    /// The provisioner's id for it, if it holds it.
    pub(crate) applied_id: Option<String>,
    /// Why it is inactive, for people.
    pub(crate) inactive_because: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DesiredGroup {
    pub(crate) entra_id: String,
    pub(crate) display_name: String,
    /// Entra ids of its transitive user members (each a desired user), sorted.
    pub(crate) members: Vec<String>,
    /// The provisioner's id for it, if it holds one.
    pub(crate) applied_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DesiredState {
    pub(crate) users: Vec<DesiredUser>,
    pub(crate) groups: Vec<DesiredGroup>,
    /// Lower-cased userNames the provisioner holds for snapshot users that are not desired,
    /// with why: these are the pull sync's own to remove.
    pub(crate) removed_users: HashMap<String, &'static str>,
    /// Entra ids of snapshot groups the provisioner holds that are not desired.
    pub(crate) removed_groups: HashSet<String>,
    /// Users left out, for people: no value for the username attribute, or a userName taken.
    pub(crate) skipped: Vec<String>,
    /// Entra id → provisioner id of every desired user the provisioner already holds, so
    /// group members resolve without reading those users back.
    pub(crate) held_ids: HashMap<String, String>,
}

impl DesiredState {
    /// Only the users and groups named (by Entra id): the part of the desired state a delta
    /// run plans, the rest being in step already.
    pub(crate) fn restricted(mut self, users: &HashSet<String>, groups: &HashSet<String>) -> Self {
        self.users.retain(|u| users.contains(&u.entra_id));
        self.groups.retain(|g| groups.contains(&g.entra_id));
        self
    }
}

/// A scope entry that names no Entra group.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("group scope entry {entry} matches no Entra group (by object id or display name)")]
pub(crate) struct UnknownScope {
    pub(crate) entry: String,
}

/// The groups a scope names: by object id, else every group with that display name.
pub(crate) fn resolve_scope(
    snapshot: &Snapshot,
    scope: &[String],
) -> Result<BTreeSet<String>, UnknownScope> {
    let mut by_name: HashMap<String, Vec<&str>> = HashMap::new();
    for (id, group) in &snapshot.groups {
        if !group.gone {
            by_name
                .entry(group.group.display_name.to_lowercase())
                .or_default()
                .push(id);
        }
    }
    let mut ids = BTreeSet::new();
    for entry in scope {
        let entry = entry.trim();
        if snapshot.groups.get(entry).is_some_and(|g| !g.gone) {
            ids.insert(entry.to_owned());
        } else if let Some(found) = by_name.get(&entry.to_lowercase()) {
            ids.extend(found.iter().map(|id| (*id).to_owned()));
        } else {
            return Err(UnknownScope {
                entry: crate::error::quoted(entry),
            });
        }
    }
    Ok(ids)
}

/// The transitive members of `group` of `kind`, through nested groups (cycle-safe).
pub(crate) fn transitive(snapshot: &Snapshot, group: &str, kind: MemberKind) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut seen = HashSet::from([group.to_owned()]);
    let mut stack = vec![group.to_owned()];
    while let Some(current) = stack.pop() {
        let Some(members) = snapshot.members.get(&current) else {
            continue;
        };
        for (member, member_kind) in members {
            if *member_kind == MemberKind::Group {
                if snapshot.groups.get(member).is_some_and(|g| !g.gone)
                    && seen.insert(member.clone())
                {
                    stack.push(member.clone());
                    if kind == MemberKind::Group {
                        found.insert(member.clone());
                    }
                }
            } else if kind == MemberKind::User {
                found.insert(member.clone());
            }
        }
    }
    found
}

/// The userName `rules` give `user`, if it has a value for the attribute.
fn user_name(user: &crate::snapshot::EntraUser, attribute: &str) -> Option<String> {
    let value = user.property(attribute).trim();
    if value.is_empty() {
        return None;
    }
    if value.contains('@') {
        return Some(value.to_owned());
    }
    match user.upn.rsplit_once('@') {
        Some((_, domain)) if !domain.is_empty() => Some(format!("{value}@{domain}")),
        _ => Some(value.to_owned()),
    }
}

/// The desired state of `snapshot` under `rules`.
pub(crate) fn compute(snapshot: &Snapshot, rules: &Rules) -> Result<DesiredState, UnknownScope> {
    let scoped_groups = if rules.group_scope.is_empty() {
        None
    } else {
        Some(resolve_scope(snapshot, &rules.group_scope)?)
    };
    let in_scope: Option<HashSet<String>> = scoped_groups.as_ref().map(|groups| {
        groups
            .iter()
            .flat_map(|g| transitive(snapshot, g, MemberKind::User))
            .collect()
    });
    let attribute = if rules.username_attribute.is_empty() {
        "userPrincipalName"
    } else {
        rules.username_attribute.as_str()
    };

    let mut state = DesiredState::default();
    // Sorted by object id, so that who wins a contested userName is stable.
    let ordered: BTreeMap<&String, &crate::snapshot::SnapUser> = snapshot.users.iter().collect();
    let mut candidates: Vec<DesiredUser> = Vec::new();
    for (id, snap) in &ordered {
        let wanted = match snap.state {
            UserState::Live => in_scope.as_ref().is_none_or(|s| s.contains(*id)),
            UserState::SoftDeleted => snap.applied_name.is_some(),
            UserState::Gone => false,
        };
        if !wanted {
            if let Some(name) = &snap.applied_name {
                let why = match snap.state {
                    UserState::Gone => "deleted in Entra",
                    _ => "out of the group scope",
                };
                state.removed_users.insert(name.to_lowercase(), why);
            }
            continue;
        }
        let user = &snap.user;
        let Some(name) = user_name(user, attribute) else {
            state.skipped.push(format!(
                "user {} has no {attribute}",
                crate::error::quoted(&user.upn)
            ));
            if let Some(name) = &snap.applied_name {
                state
                    .removed_users
                    .insert(name.to_lowercase(), "no value for the username attribute");
            }
            continue;
        };
        let soft_deleted = snap.state == UserState::SoftDeleted;
        let email = if user.mail.is_empty() {
            user.upn.clone()
        } else {
            user.mail.clone()
        };
        candidates.push(DesiredUser {
            entra_id: (*id).clone(),
            attrs: UserAttributes {
                user_name: name,
                external_id: user.mail_nickname.clone(),
                display_name: user.display_name.clone(),
                given_name: user.given_name.clone(),
                family_name: user.surname.clone(),
                email,
                active: user.account_enabled && !soft_deleted,
                title: user.job_title.clone(),
                department: user.department.clone(),
                employee_number: user.employee_id.clone(),
            },
            create: !soft_deleted,
            applied_name: snap.applied_name.clone(),
            applied_id: snap.applied_id.clone(),
            inactive_because: if soft_deleted {
                "soft-deleted in Entra"
            } else {
                "accountEnabled is false"
            },
        });
    }
    // One user per userName: the one already held under it wins.
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (index, user) in candidates.iter().enumerate() {
        let key = user.attrs.user_name.to_lowercase();
        let holds = |u: &DesiredUser| {
            u.applied_name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&u.attrs.user_name))
        };
        match owner.get(&key) {
            Some(&other) if !holds(&candidates[other]) && holds(user) => {
                owner.insert(key, index);
            }
            Some(_) => {}
            None => {
                owner.insert(key, index);
            }
        }
    }
    for (index, user) in candidates.into_iter().enumerate() {
        if owner.get(&user.attrs.user_name.to_lowercase()) == Some(&index) {
            state.users.push(user);
        } else {
            state.skipped.push(format!(
                "user {} (object id {}): userName {} is taken by another Entra user",
                crate::error::quoted(&user.attrs.display_name),
                user.entra_id,
                crate::error::quoted(&user.attrs.user_name)
            ));
            if let Some(name) = &user.applied_name {
                state
                    .removed_users
                    .insert(name.to_lowercase(), "its userName is taken");
            }
        }
    }
    for user in &state.users {
        state
            .removed_users
            .remove(&user.attrs.user_name.to_lowercase());
        if let Some(name) = &user.applied_name {
            state.removed_users.remove(&name.to_lowercase());
        }
        if let Some(id) = &user.applied_id
            && user.create
        {
            state.held_ids.insert(user.entra_id.clone(), id.clone());
        }
    }

    // Groups: the scoped ones, or all.
    let members_allowed: HashSet<&str> = state
        .users
        .iter()
        .filter(|u| u.create)
        .map(|u| u.entra_id.as_str())
        .collect();
    let group_ids: Vec<&String> = match &scoped_groups {
        Some(ids) => ids.iter().collect(),
        None => {
            let mut ids: Vec<&String> = snapshot
                .groups
                .iter()
                .filter(|(_, g)| !g.gone)
                .map(|(id, _)| id)
                .collect();
            ids.sort();
            ids
        }
    };
    let desired_ids: HashSet<&str> = group_ids.iter().map(|id| id.as_str()).collect();
    for (id, group) in &snapshot.groups {
        if group.applied_id.is_some() && !desired_ids.contains(id.as_str()) {
            state.removed_groups.insert(id.clone());
        }
    }
    let mut name_owner: HashMap<String, &String> = HashMap::new();
    for id in &group_ids {
        let Some(group) = snapshot.groups.get(*id) else {
            continue;
        };
        let key = group.group.display_name.to_lowercase();
        match name_owner.get(&key) {
            Some(other)
                if snapshot
                    .groups
                    .get(*other)
                    .is_none_or(|g| g.applied_id.is_none())
                    && group.applied_id.is_some() =>
            {
                name_owner.insert(key, id);
            }
            Some(_) => {}
            None => {
                name_owner.insert(key, id);
            }
        }
    }
    for id in group_ids {
        let Some(group) = snapshot.groups.get(id) else {
            continue;
        };
        let mut display_name = group.group.display_name.trim().to_owned();
        if display_name.is_empty() {
            display_name = format!("group {id}");
        } else if name_owner.get(&group.group.display_name.to_lowercase()) != Some(&id) {
            let short: String = id.chars().take(8).collect();
            display_name = format!("{display_name} ({short})");
        }
        let members = transitive(snapshot, id, MemberKind::User)
            .into_iter()
            .filter(|m| members_allowed.contains(m.as_str()))
            .collect();
        state.groups.push(DesiredGroup {
            entra_id: id.clone(),
            display_name,
            members,
            applied_id: group.applied_id.clone(),
        });
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::snapshot::{EntraGroup, EntraUser, SnapGroup, SnapUser};

    fn snapshot() -> Snapshot {
        let user = |upn: &str, nickname: &str| SnapUser {
            user: EntraUser {
                upn: upn.to_owned(),
                mail_nickname: nickname.to_owned(),
                display_name: nickname.to_owned(),
                account_enabled: true,
                ..EntraUser::default()
            },
            applied_id: None,
            applied_name: None,
            state: UserState::Live,
            state_since: 0,
        };
        let group = |name: &str| SnapGroup {
            group: EntraGroup {
                display_name: name.to_owned(),
                ..EntraGroup::default()
            },
            applied_id: None,
            gone: false,
        };
        let users = HashMap::from([
            ("u1".to_owned(), user("ada@contoso.com", "ada")),
            ("u2".to_owned(), user("bob@contoso.com", "bob")),
            ("u3".to_owned(), user("cy@contoso.com", "cy")),
        ]);
        let groups = HashMap::from([
            ("g1".to_owned(), group("Parent")),
            ("g2".to_owned(), group("Child")),
            ("g3".to_owned(), group("Other")),
        ]);
        Snapshot::loaded(
            users,
            groups,
            vec![
                ("g1".to_owned(), "u1".to_owned(), MemberKind::User),
                ("g1".to_owned(), "g2".to_owned(), MemberKind::Group),
                ("g2".to_owned(), "u2".to_owned(), MemberKind::User),
                ("g2".to_owned(), "g1".to_owned(), MemberKind::Group),
                ("g3".to_owned(), "u3".to_owned(), MemberKind::User),
            ],
        )
    }

    #[test]
    fn nested_groups_are_flattened_and_cycles_end() {
        let state = compute(&snapshot(), &Rules::default()).unwrap();
        assert_eq!(state.users.len(), 3);
        let parent = state.groups.iter().find(|g| g.entra_id == "g1").unwrap();
        assert_eq!(parent.members, vec!["u1".to_owned(), "u2".to_owned()]);
        let child = state.groups.iter().find(|g| g.entra_id == "g2").unwrap();
        assert_eq!(child.members, vec!["u1".to_owned(), "u2".to_owned()]);
    }

    #[test]
    fn a_scope_keeps_its_groups_and_their_transitive_users() {
        let rules = Rules {
            group_scope: vec!["parent".to_owned()],
            ..Rules::default()
        };
        let state = compute(&snapshot(), &rules).unwrap();
        let users: Vec<&str> = state.users.iter().map(|u| u.entra_id.as_str()).collect();
        assert_eq!(users, vec!["u1", "u2"]);
        let groups: Vec<&str> = state.groups.iter().map(|g| g.entra_id.as_str()).collect();
        assert_eq!(groups, vec!["g1"]);
        let unknown = Rules {
            group_scope: vec!["nope".to_owned()],
            ..Rules::default()
        };
        assert!(compute(&snapshot(), &unknown).is_err());
    }

    #[test]
    fn the_username_rule_adds_the_upn_domain_and_fields_follow_entra() {
        let rules = Rules {
            username_attribute: "mailNickname".to_owned(),
            ..Rules::default()
        };
        let state = compute(&snapshot(), &rules).unwrap();
        let ada = &state.users[0].attrs;
        assert_eq!(ada.user_name, "ada@contoso.com");
        assert_eq!(ada.external_id, "ada");
        assert_eq!(ada.email, "ada@contoso.com", "no mail: the UPN");
        assert!(ada.active);
    }

    #[test]
    fn soft_deleted_users_are_disabled_only_when_held_and_gone_ones_removed() {
        let mut snap = snapshot();
        let u1 = snap.users.get_mut("u1").unwrap();
        u1.state = UserState::SoftDeleted;
        u1.applied_id = Some("p1".to_owned());
        u1.applied_name = Some("ada@contoso.com".to_owned());
        snap.users.get_mut("u2").unwrap().state = UserState::SoftDeleted;
        let u3 = snap.users.get_mut("u3").unwrap();
        u3.state = UserState::Gone;
        u3.applied_id = Some("p3".to_owned());
        u3.applied_name = Some("CY@contoso.com".to_owned());
        let state = compute(&snap, &Rules::default()).unwrap();
        assert_eq!(state.users.len(), 1);
        assert!(!state.users[0].attrs.active);
        assert!(!state.users[0].create);
        assert_eq!(
            state.removed_users.get("cy@contoso.com"),
            Some(&"deleted in Entra")
        );
        assert!(state.groups.iter().all(|g| g.members.is_empty()));
    }

    #[test]
    fn duplicate_group_names_are_told_apart() {
        let mut snap = snapshot();
        snap.groups.get_mut("g3").unwrap().group.display_name = "PARENT".to_owned();
        let state = compute(&snap, &Rules::default()).unwrap();
        let names: BTreeSet<&str> = state
            .groups
            .iter()
            .map(|g| g.display_name.as_str())
            .collect();
        assert!(names.contains("Parent"));
        assert!(names.contains("PARENT (g3)"));
    }
}
