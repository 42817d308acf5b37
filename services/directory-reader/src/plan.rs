//! Planning a pull sync: the desired state (see `desired`) against the tenant's current desired
//! state in the provisioner, into the writes that close the gap and their counts. Pure and
//! linear: every lookup goes through a hash index, never a scan per object.
//!
//! Matching: a desired user takes the provisioner's user with its userName
//! (case-insensitively), else the one with its externalId, else the one holding the userName it
//! was last written under (a rename); a desired group takes the group whose externalId is its
//! Entra object id, else the one with its display name (case-insensitively). Each provisioner
//! object is taken once.
//!
//! Removals: a full run removes every user and group it did not match; a delta run only those
//! the snapshot says the pull sync wrote and Entra no longer wants (deleted, or out of scope),
//! so users and groups made by other tools survive until a full run.

use std::collections::{HashMap, HashSet};

use dirsync_proto::directory::v1 as pb;

use crate::desired::{DesiredState, UserAttributes};

/// Samples kept per action, for people.
pub(crate) const SAMPLES_PER_ACTION: usize = 10;

/// A user of the provisioner's desired state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CurrentUser {
    pub(crate) id: String,
    pub(crate) version: i64,
    pub(crate) attrs: UserAttributes,
}

/// A group of the provisioner's desired state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CurrentGroup {
    pub(crate) id: String,
    pub(crate) display_name: String,
    pub(crate) external_id: String,
    /// Provisioner user ids.
    pub(crate) members: Vec<String>,
}

/// Which unmatched provisioner objects a run removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    /// Every one (a full read saw all of Entra).
    Unmatched,
    /// Only those the snapshot says are the pull sync's and Entra no longer wants.
    Known,
}

/// A member of a group to write: a user the provisioner holds, or one this run creates.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MemberRef {
    Existing(String),
    /// Index into the desired users.
    Created(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UserAction {
    Update,
    Disable,
    Enable,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserReplace {
    pub(crate) id: String,
    pub(crate) version: i64,
    /// Index into the desired users.
    pub(crate) desired: usize,
    pub(crate) action: UserAction,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserDelete {
    pub(crate) id: String,
    pub(crate) user_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupCreate {
    /// Index into the desired groups.
    pub(crate) desired: usize,
    pub(crate) members: Vec<MemberRef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupUpdate {
    pub(crate) id: String,
    pub(crate) desired: usize,
    pub(crate) display_name: Option<String>,
    pub(crate) external_id: Option<String>,
    pub(crate) add: Vec<MemberRef>,
    pub(crate) remove: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupDelete {
    pub(crate) id: String,
    pub(crate) display_name: String,
    pub(crate) external_id: String,
}

/// The writes of one run and what they add up to.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Plan {
    pub(crate) summary: pb::SyncPlan,
    pub(crate) user_creates: Vec<usize>,
    pub(crate) user_replaces: Vec<UserReplace>,
    pub(crate) user_deletes: Vec<UserDelete>,
    pub(crate) group_creates: Vec<GroupCreate>,
    pub(crate) group_updates: Vec<GroupUpdate>,
    pub(crate) group_deletes: Vec<GroupDelete>,
    /// Desired user index → the provisioner user it matched.
    pub(crate) user_matches: HashMap<usize, String>,
    /// Desired group index → the provisioner group it matched.
    pub(crate) group_matches: HashMap<usize, String>,
}

impl Plan {
    /// Users the run would disable or delete: what the deletion guard weighs.
    pub(crate) fn removals(&self) -> u64 {
        self.summary.user_disables + self.summary.user_deletes
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.user_creates.is_empty()
            && self.user_replaces.is_empty()
            && self.user_deletes.is_empty()
            && self.group_creates.is_empty()
            && self.group_updates.is_empty()
            && self.group_deletes.is_empty()
    }
}

struct Samples<'a> {
    out: &'a mut Vec<pb::PlannedChange>,
    per_action: HashMap<&'static str, usize>,
}

impl Samples<'_> {
    fn add(&mut self, action: &'static str, name: &str, detail: impl FnOnce() -> String) {
        let seen = self.per_action.entry(action).or_default();
        if *seen < SAMPLES_PER_ACTION {
            *seen += 1;
            self.out.push(pb::PlannedChange {
                action: action.to_owned(),
                name: name.to_owned(),
                detail: detail(),
            });
        }
    }
}

/// Matches `desired` to `users` and `groups` and plans the writes.
pub(crate) fn plan(
    desired: &DesiredState,
    users: &[CurrentUser],
    groups: &[CurrentGroup],
    removal: Removal,
) -> Plan {
    let mut plan = Plan::default();
    let mut samples = Vec::new();
    let mut sample = Samples {
        out: &mut samples,
        per_action: HashMap::new(),
    };
    plan.summary.users_before = users.len() as u64;

    // ---- users ----
    let mut by_name: HashMap<String, usize> = HashMap::with_capacity(users.len());
    let mut by_external: HashMap<&str, usize> = HashMap::with_capacity(users.len());
    for (index, user) in users.iter().enumerate() {
        by_name
            .entry(user.attrs.user_name.to_lowercase())
            .or_insert(index);
        if !user.attrs.external_id.is_empty() {
            by_external
                .entry(user.attrs.external_id.as_str())
                .or_insert(index);
        }
    }
    let mut taken = vec![false; users.len()];
    let mut matched: Vec<Option<usize>> = vec![None; desired.users.len()];
    // Pass by key, so that a user matched by name is never taken first by another's externalId.
    for pass in 0..3 {
        for (d, want) in desired.users.iter().enumerate() {
            if matched[d].is_some() {
                continue;
            }
            let candidate = match pass {
                0 => by_name.get(&want.attrs.user_name.to_lowercase()).copied(),
                1 if !want.attrs.external_id.is_empty() => {
                    by_external.get(want.attrs.external_id.as_str()).copied()
                }
                2 => want
                    .applied_name
                    .as_ref()
                    .and_then(|name| by_name.get(&name.to_lowercase()).copied()),
                _ => None,
            };
            if let Some(c) = candidate
                && !taken[c]
            {
                taken[c] = true;
                matched[d] = Some(c);
            }
        }
    }
    let mut user_ref: HashMap<&str, MemberRef> = HashMap::with_capacity(desired.users.len());
    for (d, want) in desired.users.iter().enumerate() {
        match matched[d] {
            Some(c) => {
                let current = &users[c];
                plan.user_matches.insert(d, current.id.clone());
                user_ref.insert(&want.entra_id, MemberRef::Existing(current.id.clone()));
                if current.attrs == want.attrs {
                    continue;
                }
                let action = match (current.attrs.active, want.attrs.active) {
                    (true, false) => UserAction::Disable,
                    (false, true) => UserAction::Enable,
                    _ => UserAction::Update,
                };
                match action {
                    UserAction::Disable => {
                        plan.summary.user_disables += 1;
                        sample.add("user_disable", &want.attrs.user_name, || {
                            want.inactive_because.to_owned()
                        });
                    }
                    UserAction::Enable => {
                        plan.summary.user_enables += 1;
                        sample.add("user_enable", &want.attrs.user_name, String::new);
                    }
                    UserAction::Update => {
                        plan.summary.user_updates += 1;
                        sample.add("user_update", &want.attrs.user_name, || {
                            want.attrs.differences(&current.attrs).join("; ")
                        });
                    }
                }
                plan.user_replaces.push(UserReplace {
                    id: current.id.clone(),
                    version: current.version,
                    desired: d,
                    action,
                });
            }
            // Entra's own provisioning creates only enabled users: a disabled user nobody holds
            // yet waits until it is enabled, so pull and push put the same users in MaaS360.
            None if want.create && want.attrs.active => {
                plan.summary.user_creates += 1;
                sample.add("user_create", &want.attrs.user_name, String::new);
                plan.user_creates.push(d);
                user_ref.insert(&want.entra_id, MemberRef::Created(d));
            }
            None => {}
        }
    }
    let mut deleted_users: HashSet<&str> = HashSet::new();
    for (c, current) in users.iter().enumerate() {
        if taken[c] {
            continue;
        }
        let key = current.attrs.user_name.to_lowercase();
        let why = match removal {
            Removal::Unmatched => Some(
                desired
                    .removed_users
                    .get(&key)
                    .copied()
                    .unwrap_or("not in Entra (or out of the group scope)"),
            ),
            Removal::Known => desired.removed_users.get(&key).copied(),
        };
        if let Some(why) = why {
            plan.summary.user_deletes += 1;
            sample.add("user_delete", &current.attrs.user_name, || why.to_owned());
            deleted_users.insert(current.id.as_str());
            plan.user_deletes.push(UserDelete {
                id: current.id.clone(),
                user_name: current.attrs.user_name.clone(),
            });
        }
    }
    let user_names: HashMap<&str, &str> = users
        .iter()
        .map(|u| (u.id.as_str(), u.attrs.user_name.as_str()))
        .collect();
    let member_name = |member: &MemberRef| -> String {
        match member {
            MemberRef::Existing(id) => user_names
                .get(id.as_str())
                .copied()
                .unwrap_or(id)
                .to_owned(),
            MemberRef::Created(d) => desired
                .users
                .get(*d)
                .map(|u| u.attrs.user_name.clone())
                .unwrap_or_default(),
        }
    };

    // ---- groups ----
    let mut by_external: HashMap<&str, usize> = HashMap::new();
    let mut by_display: HashMap<String, usize> = HashMap::new();
    for (index, group) in groups.iter().enumerate() {
        if !group.external_id.is_empty() {
            by_external
                .entry(group.external_id.as_str())
                .or_insert(index);
        }
        by_display
            .entry(group.display_name.to_lowercase())
            .or_insert(index);
    }
    let mut taken = vec![false; groups.len()];
    let mut matched: Vec<Option<usize>> = vec![None; desired.groups.len()];
    for pass in 0..2 {
        for (d, want) in desired.groups.iter().enumerate() {
            if matched[d].is_some() {
                continue;
            }
            let candidate = if pass == 0 {
                by_external.get(want.entra_id.as_str()).copied()
            } else {
                by_display.get(&want.display_name.to_lowercase()).copied()
            };
            if let Some(c) = candidate
                && !taken[c]
            {
                taken[c] = true;
                matched[d] = Some(c);
            }
        }
    }
    // Deletions first, so that a name a deleted group frees can be taken in the same run.
    for (c, current) in groups.iter().enumerate() {
        if taken[c] {
            continue;
        }
        let ours = match removal {
            Removal::Unmatched => true,
            Removal::Known => desired.removed_groups.contains(&current.external_id),
        };
        if ours {
            plan.summary.group_deletes += 1;
            sample.add("group_delete", &current.display_name, String::new);
            plan.group_deletes.push(GroupDelete {
                id: current.id.clone(),
                display_name: current.display_name.clone(),
                external_id: current.external_id.clone(),
            });
        }
    }
    for (d, want) in desired.groups.iter().enumerate() {
        // Members this run plans resolve through the match; the others are held already.
        let wanted: Vec<MemberRef> = want
            .members
            .iter()
            .filter_map(|entra_id| {
                user_ref.get(entra_id.as_str()).cloned().or_else(|| {
                    desired
                        .held_ids
                        .get(entra_id)
                        .map(|id| MemberRef::Existing(id.clone()))
                })
            })
            .collect();
        match matched[d] {
            None => {
                plan.summary.group_creates += 1;
                plan.summary.membership_adds += wanted.len() as u64;
                sample.add("group_create", &want.display_name, || {
                    format!("{} members", wanted.len())
                });
                for member in &wanted {
                    sample.add("membership_add", &want.display_name, || member_name(member));
                }
                plan.group_creates.push(GroupCreate {
                    desired: d,
                    members: wanted,
                });
            }
            Some(c) => {
                let current = &groups[c];
                plan.group_matches.insert(d, current.id.clone());
                let held: HashSet<&str> = current.members.iter().map(String::as_str).collect();
                let add: Vec<MemberRef> = wanted
                    .iter()
                    .filter(|m| match m {
                        MemberRef::Existing(id) => !held.contains(id.as_str()),
                        MemberRef::Created(_) => true,
                    })
                    .cloned()
                    .collect();
                let keep: HashSet<&str> = wanted
                    .iter()
                    .filter_map(|m| match m {
                        MemberRef::Existing(id) => Some(id.as_str()),
                        MemberRef::Created(_) => None,
                    })
                    .collect();
                // A user being deleted leaves its groups with it.
                let remove: Vec<String> = current
                    .members
                    .iter()
                    .filter(|id| {
                        !keep.contains(id.as_str()) && !deleted_users.contains(id.as_str())
                    })
                    .cloned()
                    .collect();
                let display_name =
                    (current.display_name != want.display_name).then(|| want.display_name.clone());
                let external_id =
                    (current.external_id != want.entra_id).then(|| want.entra_id.clone());
                if display_name.is_some() || external_id.is_some() {
                    plan.summary.group_updates += 1;
                    sample.add("group_update", &want.display_name, || {
                        let mut what = Vec::new();
                        if display_name.is_some() {
                            what.push(format!(
                                "displayName {} → {}",
                                crate::error::quoted(&current.display_name),
                                crate::error::quoted(&want.display_name)
                            ));
                        }
                        if external_id.is_some() {
                            what.push(format!("externalId {}", want.entra_id));
                        }
                        what.join("; ")
                    });
                }
                plan.summary.membership_adds += add.len() as u64;
                plan.summary.membership_removes += remove.len() as u64;
                for member in &add {
                    sample.add("membership_add", &want.display_name, || member_name(member));
                }
                for id in &remove {
                    sample.add("membership_remove", &want.display_name, || {
                        member_name(&MemberRef::Existing(id.clone()))
                    });
                }
                if display_name.is_some()
                    || external_id.is_some()
                    || !add.is_empty()
                    || !remove.is_empty()
                {
                    plan.group_updates.push(GroupUpdate {
                        id: current.id.clone(),
                        desired: d,
                        display_name,
                        external_id,
                        add,
                        remove,
                    });
                }
            }
        }
    }
    plan.summary.samples = samples;
    plan
}

/// Why the deletion guard stops a run, or `None` when it lets it through: more than
/// `percent` of the tenant's users would be disabled or deleted.
pub(crate) fn guard(plan: &Plan, percent: u32) -> Option<String> {
    let before = plan.summary.users_before;
    let removals = plan.removals();
    if before == 0 || removals == 0 {
        return None;
    }
    // removals / before > percent / 100, in integers.
    if removals.saturating_mul(100) > u64::from(percent).saturating_mul(before) {
        Some(format!(
            "the run would disable or delete {removals} of the tenant's {before} users, more \
             than the deletion guard's {percent}%; repeat with force to go ahead"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::desired::{DesiredGroup, DesiredUser};

    fn attrs(name: &str, external: &str) -> UserAttributes {
        UserAttributes {
            user_name: name.to_owned(),
            external_id: external.to_owned(),
            display_name: external.to_owned(),
            email: name.to_owned(),
            active: true,
            ..UserAttributes::default()
        }
    }

    fn want(id: &str, name: &str, external: &str) -> DesiredUser {
        DesiredUser {
            entra_id: id.to_owned(),
            attrs: attrs(name, external),
            create: true,
            applied_name: None,
            applied_id: None,
            inactive_because: "",
        }
    }

    fn held(id: &str, name: &str, external: &str) -> CurrentUser {
        CurrentUser {
            id: id.to_owned(),
            version: 1,
            attrs: attrs(name, external),
        }
    }

    #[test]
    fn users_match_by_name_then_external_id_and_the_rest_is_planned() {
        let mut renamed = want("e2", "robert@x", "bob");
        renamed.attrs.display_name = "bob".to_owned();
        let mut disabled = want("e3", "cy@x", "cy");
        disabled.attrs.active = false;
        let desired = DesiredState {
            users: vec![
                want("e1", "ADA@x", "ada"),
                renamed,
                disabled,
                want("e4", "dee@x", "dee"),
            ],
            groups: vec![DesiredGroup {
                entra_id: "g1".to_owned(),
                display_name: "Team".to_owned(),
                members: vec!["e1".to_owned(), "e4".to_owned()],
                applied_id: None,
            }],
            ..DesiredState::default()
        };
        let users = vec![
            held("p1", "ada@x", "ada"),
            held("p2", "bob@x", "bob"),
            held("p3", "cy@x", "cy"),
            held("p9", "stranger@x", "stranger"),
        ];
        let groups = vec![CurrentGroup {
            id: "pg".to_owned(),
            display_name: "team".to_owned(),
            external_id: String::new(),
            members: vec!["p2".to_owned()],
        }];
        let known = plan(&desired, &users, &groups, Removal::Known);
        assert_eq!(known.summary.user_creates, 1);
        assert_eq!(known.user_matches.get(&0).map(String::as_str), Some("p1"));
        assert_eq!(
            known.summary.user_updates, 2,
            "ada's userName case, bob renamed"
        );
        assert_eq!(known.summary.user_disables, 1);
        assert_eq!(
            known.summary.user_deletes, 0,
            "a delta run leaves strangers"
        );
        assert_eq!(
            known.summary.group_updates, 1,
            "display name and externalId"
        );
        assert_eq!(known.summary.membership_adds, 2);
        assert_eq!(known.summary.membership_removes, 1);
        let update = &known.group_updates[0];
        assert_eq!(
            update.add,
            vec![MemberRef::Existing("p1".to_owned()), MemberRef::Created(3)]
        );
        assert_eq!(update.remove, vec!["p2".to_owned()]);

        let full = plan(&desired, &users, &groups, Removal::Unmatched);
        assert_eq!(full.summary.user_deletes, 1);
        assert_eq!(full.user_deletes[0].id, "p9");
        assert!(guard(&full, 20).is_some());
        assert!(guard(&full, 50).is_none(), "2 of 4 is not more than 50%");
        assert!(guard(&full, 49).is_some());
    }

    #[test]
    fn a_disabled_user_nobody_holds_waits_and_a_held_one_is_kept() {
        let mut never_enabled = want("e1", "new@x", "new");
        never_enabled.attrs.active = false;
        let mut disabled_since = want("e2", "old@x", "old");
        disabled_since.attrs.active = false;
        let desired = DesiredState {
            users: vec![never_enabled, disabled_since],
            groups: vec![DesiredGroup {
                entra_id: "g1".to_owned(),
                display_name: "Team".to_owned(),
                members: vec!["e1".to_owned(), "e2".to_owned()],
                applied_id: None,
            }],
            ..DesiredState::default()
        };
        let users = vec![held("p2", "old@x", "old")];
        let planned = plan(&desired, &users, &[], Removal::Unmatched);
        assert_eq!(
            planned.summary.user_creates, 0,
            "Entra creates only enabled users"
        );
        assert_eq!(
            planned.summary.user_disables, 1,
            "one it made is disabled, kept"
        );
        assert_eq!(planned.summary.user_deletes, 0);
        assert_eq!(
            planned.group_creates[0].members,
            vec![MemberRef::Existing("p2".to_owned())],
            "the disabled member it holds stays in the group"
        );
    }

    #[test]
    fn a_second_plan_of_the_same_state_is_empty() {
        let desired = DesiredState {
            users: vec![want("e1", "ada@x", "ada")],
            groups: vec![DesiredGroup {
                entra_id: "g1".to_owned(),
                display_name: "Team".to_owned(),
                members: vec!["e1".to_owned()],
                applied_id: None,
            }],
            ..DesiredState::default()
        };
        let users = vec![held("p1", "ada@x", "ada")];
        let groups = vec![CurrentGroup {
            id: "pg".to_owned(),
            display_name: "Team".to_owned(),
            external_id: "g1".to_owned(),
            members: vec!["p1".to_owned()],
        }];
        let again = plan(&desired, &users, &groups, Removal::Unmatched);
        assert!(again.is_empty(), "{again:?}");
        assert!(again.summary.samples.is_empty());
    }
}
