//! The dry run: what each confirmed mapping would do to MaaS360, who joins, stays and leaves,
//! and every distribution a user would no longer receive from any group. Pure, and
//! deterministic: the plan's id is a digest of the plan itself, so it changes exactly when
//! something the plan shows changes (a mapping, a member on either side, a distribution).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use dirsync_proto::mapping::v1 as pb;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::entity::group_mapping;
use crate::error::{MappingError, Result};
use crate::matching::UserIndex;
use crate::model::{is_planned, mode_of};
use crate::world::{Distribution, Kind, Maas360User, World};

/// A distribution one user receives, and the group it comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Received {
    pub(crate) group_id: String,
    pub(crate) group_name: String,
    pub(crate) distribution: Distribution,
}

/// Every distribution each MaaS360 user receives, by MaaS360 user id.
pub(crate) fn received(world: &World) -> HashMap<String, Vec<Received>> {
    let mut by_user: HashMap<String, Vec<Received>> = HashMap::new();
    for group in &world.maas360_groups {
        if group.distributions.is_empty() {
            continue;
        }
        for member in world.maas360_members.get(&group.id).into_iter().flatten() {
            let list = by_user.entry(member.id.clone()).or_default();
            list.extend(group.distributions.iter().map(|distribution| Received {
                group_id: group.id.clone(),
                group_name: group.name.clone(),
                distribution: distribution.clone(),
            }));
        }
    }
    for list in by_user.values_mut() {
        list.sort();
        list.dedup();
    }
    by_user
}

pub(crate) fn distribution_pb(distribution: &Distribution) -> pb::Distribution {
    pb::Distribution {
        kind: match distribution.kind {
            Kind::App => pb::DistributionKind::App,
            Kind::Policy => pb::DistributionKind::Policy,
        } as i32,
        id: distribution.id.clone(),
        name: distribution.name.clone(),
        platform: distribution.platform.clone(),
        app_type: distribution.app_type.clone(),
    }
}

/// The mappings a plan carries out, in a stable order.
pub(crate) fn planned(mappings: &[group_mapping::Model]) -> Vec<&group_mapping::Model> {
    let mut planned: Vec<&group_mapping::Model> =
        mappings.iter().filter(|m| is_planned(&m.state)).collect();
    planned.sort_by(|a, b| {
        (a.entra_group_name.to_lowercase(), &a.mapping_id)
            .cmp(&(b.entra_group_name.to_lowercase(), &b.mapping_id))
    });
    planned
}

/// The plan for `mappings` over `world`. FAILED_PRECONDITION when a mapping names a group
/// that one side no longer holds: the operator deletes or corrects that mapping first.
pub(crate) fn plan(
    tenant_id: &str,
    world: &World,
    mappings: &[group_mapping::Model],
) -> Result<pb::MigrationPlan> {
    let index = UserIndex::new(world);
    let mut groups = Vec::new();
    // Per MaaS360 user id: the groups they leave.
    let mut leaves: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut unmatched = BTreeSet::new();
    for mapping in planned(mappings) {
        let maas360_id = mapping.maas360_group_id.clone().unwrap_or_default();
        let Some(source) = world.maas360_group(&maas360_id) else {
            return Err(MappingError::refused(
                dirsync_proto::errors::ErrorReason::StalePlan,
                format!(
                    "mapping {} names MaaS360 group {} ({}), which MaaS360 no longer holds; \
                     delete the mapping or map another group",
                    mapping.mapping_id,
                    crate::error::quoted(mapping.maas360_group_name.as_deref().unwrap_or("")),
                    maas360_id
                ),
            ));
        };
        let Some(entra_group) = world.entra_group(&mapping.entra_group_id) else {
            return Err(MappingError::refused(
                dirsync_proto::errors::ErrorReason::StalePlan,
                format!(
                    "mapping {} names Entra group {} ({}), which Entra no longer holds; delete \
                     the mapping",
                    mapping.mapping_id,
                    crate::error::quoted(&mapping.entra_group_name),
                    mapping.entra_group_id
                ),
            ));
        };
        let mode = mode_of(&mapping.mode);
        let maas360_members: &[Maas360User] = world
            .maas360_members
            .get(&source.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let entra_members: Vec<&crate::world::EntraUser> = world
            .entra_members
            .get(&entra_group.id)
            .into_iter()
            .flatten()
            .filter_map(|id| world.entra_users.get(id))
            .collect();
        let member_ids: HashSet<&str> = maas360_members.iter().map(|m| m.id.as_str()).collect();
        let entra_ids: HashSet<&str> = entra_members.iter().map(|u| u.id.as_str()).collect();
        let planned_member = |user: &crate::world::EntraUser| {
            let held = index.maas360_of(user);
            pb::PlannedMember {
                user: held.map_or_else(|| user.key.clone(), |m| m.key.clone()),
                maas360_user_id: held.map(|m| m.id.clone()).unwrap_or_default(),
                entra_user_id: user.id.clone(),
            }
        };
        let mut group = pb::GroupPlan {
            mapping_id: mapping.mapping_id.clone(),
            mode: mode as i32,
            prune: mapping.prune,
            entra_group_id: entra_group.id.clone(),
            entra_group_name: entra_group.name.clone(),
            maas360_group_id: source.id.clone(),
            maas360_group_name: source.name.clone(),
            target_group_name: match mode {
                pb::MappingMode::Copy => entra_group.name.clone(),
                _ => source.name.clone(),
            },
            distributions: source.distributions.iter().map(distribution_pb).collect(),
            ..pb::GroupPlan::default()
        };
        for member in maas360_members {
            if index.entra_of(member).is_none() {
                unmatched.insert((member.key.clone(), source.name.clone()));
            }
        }
        if mode == pb::MappingMode::Copy {
            // The copy starts empty and the old group is left as it was.
            group.joining = entra_members.iter().map(|u| planned_member(u)).collect();
        } else {
            for user in &entra_members {
                let member = planned_member(user);
                if member_ids.contains(member.maas360_user_id.as_str()) {
                    group.staying.push(member);
                } else {
                    group.joining.push(member);
                }
            }
            for member in maas360_members {
                let entra = index.entra_of(member);
                if entra.is_some_and(|user| entra_ids.contains(user.id.as_str())) {
                    continue;
                }
                let planned = pb::PlannedMember {
                    user: member.key.clone(),
                    maas360_user_id: member.id.clone(),
                    entra_user_id: entra.map(|u| u.id.clone()).unwrap_or_default(),
                };
                if mapping.prune {
                    leaves
                        .entry(member.id.clone())
                        .or_default()
                        .insert(source.id.clone());
                    group.leaving.push(planned);
                } else {
                    group.legacy.push(planned);
                }
            }
        }
        for list in [
            &mut group.joining,
            &mut group.staying,
            &mut group.leaving,
            &mut group.legacy,
        ] {
            list.sort_by(|a, b| (&a.user, &a.entra_user_id).cmp(&(&b.user, &b.entra_user_id)));
        }
        groups.push(group);
    }
    let mut losses = losses(world, &leaves);
    losses.sort_by_key(loss_key);
    let mut plan = pb::MigrationPlan {
        plan_id: String::new(),
        tenant_id: tenant_id.to_owned(),
        groups,
        losses,
        unmatched_members: unmatched
            .into_iter()
            .map(|(user, maas360_group)| pb::UnmatchedMember {
                user,
                maas360_group,
            })
            .collect(),
        create_time: None,
    };
    plan.plan_id = plan_id(&plan);
    Ok(plan)
}

/// Every distribution a leaving user receives from a group they leave and from no group they
/// stay in.
fn losses(world: &World, leaves: &BTreeMap<String, BTreeSet<String>>) -> Vec<pb::Loss> {
    if leaves.is_empty() {
        return Vec::new();
    }
    let received = received(world);
    let keys: HashMap<&str, &str> = world
        .maas360_members
        .values()
        .flatten()
        .map(|m| (m.id.as_str(), m.key.as_str()))
        .collect();
    let mut losses = Vec::new();
    for (user_id, left) in leaves {
        let all = received.get(user_id).map(Vec::as_slice).unwrap_or_default();
        let kept: HashSet<(Kind, &str)> = all
            .iter()
            .filter(|r| !left.contains(&r.group_id))
            .map(|r| r.distribution.identity())
            .collect();
        let mut seen = HashSet::new();
        for lost in all.iter().filter(|r| left.contains(&r.group_id)) {
            let identity = lost.distribution.identity();
            if kept.contains(&identity) || !seen.insert(identity) {
                continue;
            }
            losses.push(pb::Loss {
                user: keys
                    .get(user_id.as_str())
                    .copied()
                    .unwrap_or_default()
                    .to_owned(),
                maas360_group: lost.group_name.clone(),
                distribution: Some(distribution_pb(&lost.distribution)),
            });
        }
    }
    losses
}

/// How losses are ordered and compared: user, group, kind, distribution id.
pub(crate) fn loss_key(loss: &pb::Loss) -> (String, String, i32, String) {
    let distribution = loss.distribution.clone().unwrap_or_default();
    (
        loss.user.clone(),
        loss.maas360_group.clone(),
        distribution.kind,
        distribution.id,
    )
}

/// A digest of everything the plan shows (its id and time left out).
fn plan_id(plan: &pb::MigrationPlan) -> String {
    let mut unstamped = plan.clone();
    unstamped.plan_id.clear();
    unstamped.create_time = None;
    let digest = Sha256::digest(prost::Message::encode_to_vec(&unstamped));
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{EntraGroup, EntraUser, Maas360Group};

    fn app(id: &str) -> Distribution {
        Distribution {
            kind: Kind::App,
            id: id.to_owned(),
            name: id.to_owned(),
            platform: String::new(),
            app_type: String::new(),
        }
    }

    fn maas360(key: &str) -> Maas360User {
        Maas360User {
            id: format!("m-{key}"),
            key: format!("{key}@contoso.example"),
            email: String::new(),
        }
    }

    /// MaaS360: "Sales" (app crm, members ada, bob, kiosk) and "Everyone" (app crm, member
    /// bob). Entra: "Sales Team" with ada and cy.
    fn world() -> World {
        let mut world = World {
            maas360_groups: vec![
                Maas360Group {
                    id: "g-sales".to_owned(),
                    name: "Sales".to_owned(),
                    distributions: vec![app("crm"), app("maps")],
                },
                Maas360Group {
                    id: "g-all".to_owned(),
                    name: "Everyone".to_owned(),
                    distributions: vec![app("crm")],
                },
            ],
            ..World::default()
        };
        world.maas360_members.insert(
            "g-sales".to_owned(),
            vec![maas360("ada"), maas360("bob"), maas360("kiosk")],
        );
        world
            .maas360_members
            .insert("g-all".to_owned(), vec![maas360("bob")]);
        world.maas360_users = vec![maas360("ada"), maas360("bob"), maas360("kiosk")];
        world.entra_groups = vec![EntraGroup {
            id: "e-sales".to_owned(),
            name: "Sales Team".to_owned(),
        }];
        for name in ["ada", "bob", "cy"] {
            world.entra_users.insert(
                format!("e-{name}"),
                EntraUser {
                    id: format!("e-{name}"),
                    key: format!("{name}@contoso.example"),
                    email: String::new(),
                },
            );
        }
        world.entra_members.insert(
            "e-sales".to_owned(),
            vec!["e-ada".to_owned(), "e-cy".to_owned()],
        );
        world
    }

    fn mapping(mode: &str, prune: bool, state: &str) -> group_mapping::Model {
        group_mapping::Model {
            tenant_id: "t".to_owned(),
            mapping_id: "m1".to_owned(),
            entra_group_id: "e-sales".to_owned(),
            entra_group_name: "Sales Team".to_owned(),
            maas360_group_id: Some("g-sales".to_owned()),
            maas360_group_name: Some("Sales".to_owned()),
            mode: mode.to_owned(),
            state: state.to_owned(),
            prune,
            target_group_id: String::new(),
            target_group_name: String::new(),
            operation_id: String::new(),
            last_error: String::new(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn users(members: &[pb::PlannedMember]) -> Vec<&str> {
        members.iter().map(|m| m.user.as_str()).collect()
    }

    #[test]
    fn adopting_removes_nobody_and_reports_legacy_members() {
        let plan = plan("t", &world(), &[mapping("adopt", false, "confirmed")])
            .unwrap_or_else(|e| panic!("{e}"));
        let group = &plan.groups[0];
        assert_eq!(users(&group.staying), ["ada@contoso.example"]);
        assert_eq!(users(&group.joining), ["cy@contoso.example"]);
        assert!(group.joining[0].maas360_user_id.is_empty());
        assert_eq!(
            users(&group.legacy),
            ["bob@contoso.example", "kiosk@contoso.example"]
        );
        assert!(group.leaving.is_empty());
        assert!(plan.losses.is_empty());
        assert_eq!(plan.unmatched_members.len(), 1);
        assert_eq!(plan.unmatched_members[0].user, "kiosk@contoso.example");
    }

    #[test]
    fn pruning_lists_what_leaving_members_lose_from_every_group() {
        let plan = plan("t", &world(), &[mapping("adopt", true, "confirmed")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            users(&plan.groups[0].leaving),
            ["bob@contoso.example", "kiosk@contoso.example"]
        );
        let lost: Vec<(String, String)> = plan
            .losses
            .iter()
            .map(|l| {
                (
                    l.user.clone(),
                    l.distribution.clone().unwrap_or_default().id,
                )
            })
            .collect();
        // Bob keeps crm through Everyone; the kiosk loses both.
        assert_eq!(
            lost,
            [
                ("bob@contoso.example".to_owned(), "maps".to_owned()),
                ("kiosk@contoso.example".to_owned(), "crm".to_owned()),
                ("kiosk@contoso.example".to_owned(), "maps".to_owned()),
            ]
        );
    }

    #[test]
    fn a_copy_starts_empty_and_leaves_the_old_group_alone() {
        let plan = plan("t", &world(), &[mapping("copy", true, "confirmed")])
            .unwrap_or_else(|e| panic!("{e}"));
        let group = &plan.groups[0];
        assert_eq!(group.target_group_name, "Sales Team");
        assert_eq!(
            users(&group.joining),
            ["ada@contoso.example", "cy@contoso.example"]
        );
        assert!(group.staying.is_empty() && group.leaving.is_empty() && group.legacy.is_empty());
        assert!(plan.losses.is_empty());
        assert_eq!(group.distributions.len(), 2);
    }

    #[test]
    fn the_plan_id_changes_exactly_when_the_plan_does() {
        let adopt = [mapping("adopt", false, "confirmed")];
        let first = plan("t", &world(), &adopt).unwrap_or_else(|e| panic!("{e}"));
        let again = plan("t", &world(), &adopt).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.plan_id, again.plan_id);
        let pruned = plan("t", &world(), &[mapping("adopt", true, "confirmed")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(first.plan_id, pruned.plan_id);
        let mut changed = world();
        changed
            .maas360_members
            .get_mut("g-sales")
            .unwrap_or_else(|| panic!("g-sales"))
            .pop();
        let fewer = plan("t", &changed, &adopt).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(first.plan_id, fewer.plan_id);
    }

    #[test]
    fn proposed_and_applied_mappings_are_left_out_and_a_vanished_group_is_refused() {
        let proposed = plan("t", &world(), &[mapping("adopt", false, "proposed")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(proposed.groups.is_empty());
        let applied = plan("t", &world(), &[mapping("adopt", false, "applied")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(applied.groups.is_empty());
        let mut gone = world();
        gone.maas360_groups.remove(0);
        assert!(plan("t", &gone, &[mapping("adopt", false, "confirmed")]).is_err());
    }
}
