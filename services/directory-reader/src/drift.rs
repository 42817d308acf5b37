//! Drift: what Entra holds now (read in full through Graph, under the tenant's pull settings),
//! dirsync's desired state (the provisioner's), and what MaaS360 holds (through the
//! provisioner's MaaS360 reads), compared user by user and group by group. Each difference
//! names the attribute and each side's value (empty where the object is absent).
//!
//! MaaS360 knows a user by username and domain: the username is the userName's local part
//! unless the tenant's policy maps the whole userName; its full name is the display name. A
//! user whose MaaS360 deletion is queued counts as absent. Groups are compared by name; their
//! members as userNames.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dirsync_proto::common::v1::ResourceKind;
use dirsync_proto::directory::v1 as pb;

use crate::desired::{DesiredState, DesiredUser};
use crate::plan::{CurrentGroup, CurrentUser};

/// Rows sent at most; the counts still cover everything.
pub(crate) const MAX_DIFFERENCES: usize = 10_000;
const PENDING_DELETION: &str = "pending deletion";

/// One user's compared attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Side {
    active: bool,
    email: String,
    full_name: String,
}

fn flag(value: bool) -> String {
    value.to_string()
}

/// The sides' views, keyed by lower-cased userName (MaaS360's by the userName it stands for).
pub(crate) struct Views<'a> {
    pub(crate) entra: &'a DesiredState,
    pub(crate) users: &'a [CurrentUser],
    pub(crate) groups: &'a [CurrentGroup],
    pub(crate) maas360_users: &'a [dirsync_proto::provisioner::v1::Maas360User],
    /// MaaS360 group name → members' userNames (lower-cased, as `maas360_key` gives them).
    pub(crate) maas360_groups: &'a BTreeMap<String, BTreeSet<String>>,
    pub(crate) full_username: bool,
}

/// The lower-cased userName a MaaS360 user stands for.
pub(crate) fn maas360_key(
    user: &dirsync_proto::provisioner::v1::Maas360User,
    full_username: bool,
) -> String {
    if full_username || user.domain.is_empty() || user.username.contains('@') {
        user.username.to_lowercase()
    } else {
        format!("{}@{}", user.username, user.domain).to_lowercase()
    }
}

pub(crate) fn is_live(user: &dirsync_proto::provisioner::v1::Maas360User) -> bool {
    !user.status.eq_ignore_ascii_case(PENDING_DELETION)
}

pub(crate) fn compare(views: &Views<'_>) -> pb::GetDriftResponse {
    let mut rows: Vec<pb::Difference> = Vec::new();
    let push = |rows: &mut Vec<pb::Difference>, row: pb::Difference| {
        if rows.len() < MAX_DIFFERENCES {
            rows.push(row);
        }
    };

    let dirsync: BTreeMap<String, Side> = views
        .users
        .iter()
        .map(|u| {
            (
                u.attrs.user_name.to_lowercase(),
                Side {
                    active: u.attrs.active,
                    email: u.attrs.email.to_lowercase(),
                    full_name: u.attrs.display_name.clone(),
                },
            )
        })
        .collect();
    // Entra's users as dirsync should hold them: a disabled user nobody holds yet is not one
    // (the pull sync creates only enabled users, as Entra's provisioning does).
    let made = |u: &&DesiredUser| {
        u.create && (u.attrs.active || dirsync.contains_key(&u.attrs.user_name.to_lowercase()))
    };
    let entra: BTreeMap<String, Side> = views
        .entra
        .users
        .iter()
        .filter(made)
        .map(|u| {
            (
                u.attrs.user_name.to_lowercase(),
                Side {
                    active: u.attrs.active,
                    email: u.attrs.email.to_lowercase(),
                    full_name: u.attrs.display_name.clone(),
                },
            )
        })
        .collect();
    let live_maas360: Vec<&dirsync_proto::provisioner::v1::Maas360User> =
        views.maas360_users.iter().filter(|u| is_live(u)).collect();
    let maas360: BTreeMap<String, Side> = live_maas360
        .iter()
        .map(|u| {
            (
                maas360_key(u, views.full_username),
                Side {
                    active: u.status.eq_ignore_ascii_case("active"),
                    email: u.email.to_lowercase(),
                    full_name: u.full_name.clone(),
                },
            )
        })
        .collect();

    let names: BTreeSet<&String> = entra
        .keys()
        .chain(dirsync.keys())
        .chain(maas360.keys())
        .collect();
    for name in names {
        let sides = [entra.get(name), dirsync.get(name), maas360.get(name)];
        let row = |attribute: &str, value: &dyn Fn(&Side) -> String| pb::Difference {
            kind: ResourceKind::User as i32,
            name: name.clone(),
            attribute: attribute.to_owned(),
            entra: sides[0].map(value).unwrap_or_default(),
            dirsync: sides[1].map(value).unwrap_or_default(),
            maas360: sides[2].map(value).unwrap_or_default(),
        };
        if sides.iter().any(Option::is_none) {
            push(&mut rows, row("present", &|_| "present".to_owned()));
            continue;
        }
        let differs = |value: &dyn Fn(&Side) -> String| {
            let values: Vec<String> = sides.iter().flatten().map(|s| value(s)).collect();
            values.windows(2).any(|w| w[0] != w[1])
        };
        let active = |s: &Side| flag(s.active);
        let email = |s: &Side| s.email.clone();
        let full_name = |s: &Side| s.full_name.clone();
        for (attribute, value) in [
            ("active", &active as &dyn Fn(&Side) -> String),
            ("email", &email),
            ("full_name", &full_name),
        ] {
            if differs(value) {
                push(&mut rows, row(attribute, value));
            }
        }
    }

    // Groups and their members, as userNames.
    let entra_names: HashMap<&str, String> = views
        .entra
        .users
        .iter()
        .filter(made)
        .map(|u| (u.entra_id.as_str(), u.attrs.user_name.to_lowercase()))
        .collect();
    let entra_groups: BTreeMap<String, (String, BTreeSet<String>)> = views
        .entra
        .groups
        .iter()
        .map(|g| {
            (
                g.display_name.to_lowercase(),
                (
                    g.display_name.clone(),
                    g.members
                        .iter()
                        .filter_map(|id| entra_names.get(id.as_str()).cloned())
                        .collect(),
                ),
            )
        })
        .collect();
    let dirsync_names: HashMap<&str, String> = views
        .users
        .iter()
        .map(|u| (u.id.as_str(), u.attrs.user_name.to_lowercase()))
        .collect();
    let dirsync_groups: BTreeMap<String, (String, BTreeSet<String>)> = views
        .groups
        .iter()
        .map(|g| {
            (
                g.display_name.to_lowercase(),
                (
                    g.display_name.clone(),
                    g.members
                        .iter()
                        .filter_map(|id| dirsync_names.get(id.as_str()).cloned())
                        .collect(),
                ),
            )
        })
        .collect();
    let maas360_groups: BTreeMap<String, (String, BTreeSet<String>)> = views
        .maas360_groups
        .iter()
        .map(|(name, members)| (name.to_lowercase(), (name.clone(), members.clone())))
        .collect();
    let keys: BTreeSet<&String> = entra_groups
        .keys()
        .chain(dirsync_groups.keys())
        .chain(maas360_groups.keys())
        .collect();
    for key in keys {
        let sides = [
            entra_groups.get(key),
            dirsync_groups.get(key),
            maas360_groups.get(key),
        ];
        let display = sides
            .iter()
            .flatten()
            .map(|(name, _)| name.clone())
            .next()
            .unwrap_or_default();
        if sides.iter().any(Option::is_none) {
            let present = |side: Option<&(String, BTreeSet<String>)>| {
                side.map(|_| "present".to_owned()).unwrap_or_default()
            };
            push(
                &mut rows,
                pb::Difference {
                    kind: ResourceKind::Group as i32,
                    name: display,
                    attribute: "present".to_owned(),
                    entra: present(sides[0]),
                    dirsync: present(sides[1]),
                    maas360: present(sides[2]),
                },
            );
            continue;
        }
        let members: BTreeSet<&String> =
            sides.iter().flatten().flat_map(|(_, m)| m.iter()).collect();
        for member in members {
            let has = |side: Option<&(String, BTreeSet<String>)>| {
                side.is_some_and(|(_, m)| m.contains(member))
            };
            if sides.iter().all(|s| has(*s)) {
                continue;
            }
            let value = |side: Option<&(String, BTreeSet<String>)>| {
                if has(side) {
                    member.clone()
                } else {
                    String::new()
                }
            };
            push(
                &mut rows,
                pb::Difference {
                    kind: ResourceKind::Group as i32,
                    name: display.clone(),
                    attribute: "member".to_owned(),
                    entra: value(sides[0]),
                    dirsync: value(sides[1]),
                    maas360: value(sides[2]),
                },
            );
        }
    }

    pb::GetDriftResponse {
        differences: rows,
        entra_users: entra.len() as u64,
        dirsync_users: dirsync.len() as u64,
        maas360_users: maas360.len() as u64,
    }
}
