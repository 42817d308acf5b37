//! Does MaaS360 hold what Entra holds? Compares a simulated Entra directory
//! with the MaaS360 emulator's state, user by user and group by group, in
//! MaaS360's terms: the username is the UPN prefix, the domain the rest.

use std::collections::{BTreeMap, BTreeSet};

use dirsync_entra_simulator::Expected;
use serde::Serialize;

use crate::maas360::StateDump;

/// Sizes of one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub users: usize,
    pub active_users: usize,
    pub groups: usize,
    pub memberships: usize,
}

/// The outcome of one comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    pub entra: Counts,
    pub maas360: Counts,
    /// Each difference, in words; empty when the two sides match.
    pub mismatches: Vec<String>,
}

impl Comparison {
    pub fn matches(&self) -> bool {
        self.mismatches.is_empty()
    }
}

fn maas360_key(user_principal_name: &str) -> String {
    user_principal_name.to_lowercase()
}

/// Compares what Entra expects with what the emulator holds.
pub fn compare(expected: &Expected, state: &StateDump) -> Comparison {
    let mut mismatches = Vec::new();

    // MaaS360 side, keyed by `username@domain` (the UPN when the username is
    // the UPN prefix, which is dirsync's default). A user whose deletion is
    // queued for MaaS360's daily job is gone as far as the sync goes.
    let live: Vec<_> = state
        .users
        .iter()
        .filter(|u| !u.is_pending_deletion())
        .collect();
    let mut held = BTreeMap::new();
    let mut names_by_id = BTreeMap::new();
    for user in live.iter().copied() {
        let key = format!("{}@{}", user.user_name, user.domain).to_lowercase();
        if held.insert(key.clone(), user).is_some() {
            mismatches.push(format!("MaaS360 holds {key} twice"));
        }
        names_by_id.insert(user.user_identifier.clone(), key);
    }

    for (upn, user) in &expected.users {
        let key = maas360_key(upn);
        match held.get(&key) {
            None => mismatches.push(format!("user {upn}: missing from MaaS360")),
            Some(found) => {
                let active = found.status.eq_ignore_ascii_case("active");
                if active != user.active {
                    mismatches.push(format!(
                        "user {upn}: Entra active={}, MaaS360 status {}",
                        user.active, found.status
                    ));
                }
                if !user.mail.is_empty() && !found.email.eq_ignore_ascii_case(&user.mail) {
                    mismatches.push(format!(
                        "user {upn}: Entra mail {}, MaaS360 email {}",
                        user.mail, found.email
                    ));
                }
                // MaaS360's full name is Entra's display name (dirsync's identity rule).
                if !user.display_name.is_empty() && found.full_name != user.display_name {
                    mismatches.push(format!(
                        "user {upn}: Entra displayName {:?}, MaaS360 fullName {:?}",
                        user.display_name, found.full_name
                    ));
                }
            }
        }
    }
    let expected_keys: BTreeSet<String> =
        expected.users.keys().map(|upn| maas360_key(upn)).collect();
    for key in held.keys() {
        if !expected_keys.contains(key) {
            mismatches.push(format!("user {key}: in MaaS360 but not in Entra"));
        }
    }

    let mut held_groups = BTreeMap::new();
    for group in &state.groups {
        let members: BTreeSet<String> = state
            .members(&group.group_identifier)
            .iter()
            .filter_map(|id| names_by_id.get(id).cloned())
            .collect();
        held_groups.insert(group.name.clone(), members);
    }
    for (name, group) in &expected.groups {
        match held_groups.get(name) {
            None => mismatches.push(format!("group {name:?}: missing from MaaS360")),
            Some(members) => {
                let wanted: BTreeSet<String> = group
                    .member_user_names
                    .iter()
                    .map(|upn| maas360_key(upn))
                    .collect();
                let missing: Vec<&String> = wanted.difference(members).collect();
                let extra: Vec<&String> = members.difference(&wanted).collect();
                if !missing.is_empty() || !extra.is_empty() {
                    mismatches.push(format!(
                        "group {name:?}: members missing {missing:?}, extra {extra:?}"
                    ));
                }
            }
        }
    }
    for name in held_groups.keys() {
        if !expected.groups.contains_key(name) {
            mismatches.push(format!("group {name:?}: in MaaS360 but not in Entra"));
        }
    }

    Comparison {
        entra: Counts {
            users: expected.user_count,
            active_users: expected.active_user_count,
            groups: expected.group_count,
            memberships: expected.membership_count,
        },
        maas360: Counts {
            users: live.len(),
            active_users: live
                .iter()
                .filter(|u| u.status.eq_ignore_ascii_case("active"))
                .count(),
            groups: state.groups.len(),
            memberships: held_groups.values().map(BTreeSet::len).sum(),
        },
        mismatches,
    }
}
