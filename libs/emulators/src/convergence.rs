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

/// What MaaS360 held before Entra and an Option 1 migration keeps: the comparison allows
/// exactly this, and counts it apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Legacy {
    /// Entra group display name → the MaaS360 group it writes into, where the names differ
    /// (an adopted group keeps its MaaS360 name).
    pub group_targets: BTreeMap<String, String>,
    /// MaaS360 groups that stay as they were (the groups copies were made from, groups no
    /// Entra group maps).
    pub groups: BTreeSet<String>,
    /// MaaS360 users Entra does not have, kept (`username@domain`, lower case).
    pub users: BTreeSet<String>,
    /// Per MaaS360 group: members Entra's group does not have, kept because the mapping does
    /// not prune (`username@domain`, lower case).
    pub members: BTreeMap<String, BTreeSet<String>>,
}

/// The outcome of one comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    pub entra: Counts,
    /// What MaaS360 holds of Entra's directory (legacy objects not counted).
    pub maas360: Counts,
    /// Legacy users, groups and memberships MaaS360 still holds, as the migration meant.
    pub legacy: Counts,
    /// Users Entra deleted that MaaS360 keeps, deactivated, because they have a device.
    pub kept_for_devices: usize,
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
    compare_with_legacy(expected, state, &Legacy::default())
}

/// Like [`compare`], allowing (and counting apart) what an Option 1 migration keeps.
pub fn compare_with_legacy(expected: &Expected, state: &StateDump, legacy: &Legacy) -> Comparison {
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
    let mut legacy_users = 0;
    let mut legacy_active = 0;
    let mut kept_for_devices = 0;
    for (key, user) in &held {
        if expected_keys.contains(key) {
            continue;
        }
        if legacy.users.contains(key) {
            legacy_users += 1;
            if user.status.eq_ignore_ascii_case("active") {
                legacy_active += 1;
            }
        } else if !user.status.eq_ignore_ascii_case("active") && !user.devices.is_empty() {
            // Deleted in Entra; MaaS360 refuses to delete a user with a device, so dirsync
            // deactivates it instead (docs/maas360.md §4.5).
            kept_for_devices += 1;
        } else {
            mismatches.push(format!("user {key}: in MaaS360 but not in Entra"));
        }
    }

    let pending_deletion: BTreeSet<&str> = state
        .pending_deletions()
        .into_iter()
        .map(|u| u.user_identifier.as_str())
        .collect();
    let mut held_groups = BTreeMap::new();
    for group in &state.groups {
        let mut members = BTreeSet::new();
        for id in state.members(&group.group_identifier) {
            match names_by_id.get(&id) {
                Some(name) => {
                    members.insert(name.clone());
                }
                // MaaS360 keeps a queued user in its groups until the daily job runs; the
                // sync counts that user gone, so its memberships are gone too.
                None if pending_deletion.contains(id.as_str()) => {}
                // A member MaaS360 holds no user for at all: say so, never skip it.
                None => mismatches.push(format!(
                    "group {:?}: member {id} is no MaaS360 user",
                    group.name
                )),
            }
        }
        held_groups.insert(group.name.clone(), members);
    }
    let no_legacy = BTreeSet::new();
    let mut targets = BTreeSet::new();
    let mut legacy_memberships = 0;
    let mut memberships = 0;
    for (name, group) in &expected.groups {
        let target = legacy.group_targets.get(name).unwrap_or(name);
        targets.insert(target.clone());
        match held_groups.get(target) {
            None => mismatches.push(format!(
                "group {name:?}: missing from MaaS360 (as {target:?})"
            )),
            Some(members) => {
                let wanted: BTreeSet<String> = group
                    .member_user_names
                    .iter()
                    .map(|upn| maas360_key(upn))
                    .collect();
                let kept = legacy.members.get(target).unwrap_or(&no_legacy);
                let missing: Vec<&String> = wanted.difference(members).collect();
                let extra: Vec<&String> = members
                    .difference(&wanted)
                    .filter(|member| !kept.contains(*member))
                    .collect();
                let kept_here = members.difference(&wanted).count() - extra.len();
                legacy_memberships += kept_here;
                memberships += members.len() - kept_here;
                if !missing.is_empty() || !extra.is_empty() {
                    mismatches.push(format!(
                        "group {name:?}: members missing {missing:?}, extra {extra:?}"
                    ));
                }
            }
        }
    }
    let mut legacy_groups = 0;
    for (name, members) in &held_groups {
        if targets.contains(name) {
            continue;
        }
        if legacy.groups.contains(name) {
            legacy_groups += 1;
            legacy_memberships += members.len();
        } else {
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
            users: live.len() - legacy_users - kept_for_devices,
            active_users: live
                .iter()
                .filter(|u| u.status.eq_ignore_ascii_case("active"))
                .filter(|u| {
                    let key = format!("{}@{}", u.user_name, u.domain).to_lowercase();
                    expected_keys.contains(&key)
                })
                .count(),
            groups: state.groups.len() - legacy_groups,
            memberships,
        },
        legacy: Counts {
            users: legacy_users,
            active_users: legacy_active,
            groups: legacy_groups,
            memberships: legacy_memberships,
        },
        kept_for_devices,
        mismatches,
    }
}

#[cfg(test)]
mod tests {
    use dirsync_entra_simulator::{ExpectedGroup, ExpectedUser};

    use super::*;
    use crate::maas360::{GroupDump, PENDING_DELETION, UserDump};

    fn user(id: &str, name: &str, status: &str) -> UserDump {
        UserDump {
            user_identifier: id.to_owned(),
            user_name: name.to_owned(),
            domain: "contoso.example".to_owned(),
            email: format!("{name}@contoso.example"),
            status: status.to_owned(),
            ..UserDump::default()
        }
    }

    /// Entra: one user, alice, in group "Sales". MaaS360: alice, a user pending
    /// deletion and, in "Sales", the given member ids.
    fn compare_with_members(member_ids: &[&str]) -> Comparison {
        let alice = "alice@contoso.example".to_owned();
        let mut expected = Expected::default();
        expected.users.insert(
            alice.clone(),
            ExpectedUser {
                user_name: alice.clone(),
                active: true,
                ..ExpectedUser::default()
            },
        );
        expected.groups.insert(
            "Sales".to_owned(),
            ExpectedGroup {
                object_id: "g1".to_owned(),
                display_name: "Sales".to_owned(),
                member_user_names: BTreeSet::from([alice]),
            },
        );
        let state = StateDump {
            users: vec![
                user("U1", "alice", "Active"),
                user("U2", "bob", PENDING_DELETION),
            ],
            groups: vec![GroupDump {
                group_identifier: "G1".to_owned(),
                name: "Sales".to_owned(),
                group_type: 3,
                ..GroupDump::default()
            }],
            memberships: BTreeMap::from([(
                "G1".to_owned(),
                member_ids.iter().map(|id| (*id).to_owned()).collect(),
            )]),
        };
        compare(&expected, &state)
    }

    #[test]
    fn the_same_directory_matches() {
        let comparison = compare_with_members(&["U1"]);
        assert!(comparison.matches(), "{:?}", comparison.mismatches);
    }

    #[test]
    fn a_member_queued_for_deletion_counts_as_gone() {
        let comparison = compare_with_members(&["U1", "U2"]);
        assert!(comparison.matches(), "{:?}", comparison.mismatches);
    }

    #[test]
    fn a_member_that_is_no_user_is_a_difference() {
        let comparison = compare_with_members(&["U1", "U404"]);
        assert_eq!(
            comparison.mismatches,
            vec![r#"group "Sales": member U404 is no MaaS360 user"#.to_owned()]
        );
    }

    #[test]
    fn what_a_migration_keeps_is_allowed_and_counted_apart() {
        let alice = "alice@contoso.example".to_owned();
        let mut expected = Expected::default();
        expected.users.insert(
            alice.clone(),
            ExpectedUser {
                user_name: alice.clone(),
                active: true,
                ..ExpectedUser::default()
            },
        );
        expected.groups.insert(
            "Sales".to_owned(),
            ExpectedGroup {
                display_name: "Sales".to_owned(),
                member_user_names: BTreeSet::from([alice]),
                ..ExpectedGroup::default()
            },
        );
        expected.user_count = 1;
        expected.active_user_count = 1;
        expected.group_count = 1;
        expected.membership_count = 1;
        let group = |id: &str, name: &str| GroupDump {
            group_identifier: id.to_owned(),
            name: name.to_owned(),
            group_type: 3,
            ..GroupDump::default()
        };
        let state = StateDump {
            users: vec![
                user("U1", "alice", "Active"),
                user("U2", "legacy", "Active"),
            ],
            groups: vec![group("G1", "Sales Team"), group("G2", "Kiosk Staff")],
            memberships: BTreeMap::from([
                ("G1".to_owned(), vec!["U1".to_owned(), "U2".to_owned()]),
                ("G2".to_owned(), vec!["U2".to_owned()]),
            ]),
        };
        // Without the migration's context, all of it is a difference.
        assert_eq!(compare(&expected, &state).mismatches.len(), 4);
        let legacy = Legacy {
            group_targets: BTreeMap::from([("Sales".to_owned(), "Sales Team".to_owned())]),
            groups: BTreeSet::from(["Kiosk Staff".to_owned()]),
            users: BTreeSet::from(["legacy@contoso.example".to_owned()]),
            members: BTreeMap::from([(
                "Sales Team".to_owned(),
                BTreeSet::from(["legacy@contoso.example".to_owned()]),
            )]),
        };
        let comparison = compare_with_legacy(&expected, &state, &legacy);
        assert!(comparison.matches(), "{:?}", comparison.mismatches);
        assert_eq!(comparison.entra, comparison.maas360);
        assert_eq!(
            comparison.legacy,
            Counts {
                users: 1,
                active_users: 1,
                groups: 1,
                memberships: 2
            }
        );
        // A legacy member of a group not kept is still a difference.
        let strict = Legacy {
            members: BTreeMap::new(),
            ..legacy
        };
        assert_eq!(
            compare_with_legacy(&expected, &state, &strict)
                .mismatches
                .len(),
            1
        );
    }

    #[test]
    fn a_missing_member_is_a_difference() {
        let comparison = compare_with_members(&[]);
        assert!(!comparison.matches());
    }
}
