//! Both sides as one migration sees them, read at one moment: MaaS360's user groups with their
//! distributions and members, MaaS360's users, and Entra's groups, users and transitive members.
//! Users are keyed as MaaS360 holds them (`name@domain`, lower-cased) so that the two sides
//! meet: an Entra user's key is its userName under the tenant's rule.

use std::collections::{BTreeMap, HashMap};

use dirsync_proto::directory::v1 as directory;
use dirsync_proto::provisioner::v1 as provisioner;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::upstream::{Tenant, Upstream};

/// Calls made at once while reading members, group by group.
const READ_CONCURRENCY: usize = 8;
/// MaaS360's status of a user that is on its way out.
const PENDING_DELETION: &str = "pending deletion";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    App,
    Policy,
}

/// An app or a policy distributed to a MaaS360 group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct Distribution {
    pub(crate) kind: Kind,
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) platform: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) app_type: String,
}

impl Distribution {
    /// What makes two distributions the same one, wherever they come from.
    pub(crate) fn identity(&self) -> (Kind, &str) {
        (self.kind, self.id.as_str())
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Maas360Group {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) distributions: Vec<Distribution>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Maas360User {
    pub(crate) id: String,
    /// name@domain, lower-cased.
    pub(crate) key: String,
    pub(crate) email: String,
}

#[derive(Clone, Debug)]
pub(crate) struct EntraGroup {
    pub(crate) id: String,
    pub(crate) name: String,
}

#[derive(Clone, Debug)]
pub(crate) struct EntraUser {
    pub(crate) id: String,
    /// The userName under the tenant's rule, lower-cased: the key MaaS360 would hold.
    pub(crate) key: String,
    pub(crate) email: String,
}

/// Which Entra groups' members to read.
#[derive(Clone, Debug)]
pub(crate) enum EntraNeed {
    /// None: Entra is not read at all.
    Nothing,
    /// Groups and users, and the members of these groups.
    MembersOf(Vec<String>),
    /// Groups and users, and every group's members.
    Everything,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct World {
    pub(crate) maas360_groups: Vec<Maas360Group>,
    /// Members of each group that carries distributions or was asked for, by group id.
    pub(crate) maas360_members: HashMap<String, Vec<Maas360User>>,
    /// Every live MaaS360 user.
    pub(crate) maas360_users: Vec<Maas360User>,
    pub(crate) entra_groups: Vec<EntraGroup>,
    /// User object ids of each group read, by group id.
    pub(crate) entra_members: HashMap<String, Vec<String>>,
    pub(crate) entra_users: BTreeMap<String, EntraUser>,
}

fn is_live(user: &provisioner::Maas360User) -> bool {
    !user.status.eq_ignore_ascii_case(PENDING_DELETION)
}

/// The lower-cased userName a MaaS360 user stands for.
pub(crate) fn maas360_key(user: &provisioner::Maas360User, full_username: bool) -> String {
    if full_username || user.domain.is_empty() || user.username.contains('@') {
        user.username.to_lowercase()
    } else {
        format!("{}@{}", user.username, user.domain).to_lowercase()
    }
}

fn maas360_user(user: &provisioner::Maas360User, full_username: bool) -> Maas360User {
    Maas360User {
        id: user.user_id.clone(),
        key: maas360_key(user, full_username),
        email: user.email.trim().to_lowercase(),
    }
}

/// The userName an Entra user gets under `attribute` (as the pull sync derives it): a value
/// without '@' takes the UPN's domain.
pub(crate) fn entra_key(user: &directory::DirectoryUser, attribute: &str) -> String {
    let value = match attribute {
        "mail" => &user.mail,
        "mailNickname" => &user.mail_nickname,
        "employeeId" => &user.employee_id,
        _ => &user.user_principal_name,
    }
    .trim();
    let value = if value.is_empty() {
        user.user_principal_name.trim()
    } else {
        value
    };
    let user_name = match (
        value.contains('@'),
        user.user_principal_name.rsplit_once('@'),
    ) {
        (false, Some((_, domain))) if !domain.is_empty() => format!("{value}@{domain}"),
        _ => value.to_owned(),
    };
    user_name.to_lowercase()
}

fn distributions(group: &provisioner::Maas360UserGroup) -> Vec<Distribution> {
    let of = |kind: Kind, list: &[provisioner::Distribution]| {
        list.iter()
            .map(move |d| Distribution {
                kind,
                id: d.id.clone(),
                name: d.name.clone(),
                platform: d.platform.clone(),
                app_type: d.app_type.clone(),
            })
            .collect::<Vec<_>>()
    };
    let mut all = of(Kind::App, &group.app_distributions);
    all.extend(of(Kind::Policy, &group.policy_distributions));
    all.sort();
    all.dedup();
    all
}

/// Runs `read` for every item, `READ_CONCURRENCY` at a time, keeping the first error.
async fn each<T, F, Fut>(items: Vec<String>, read: F) -> Result<HashMap<String, T>>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut found = HashMap::new();
    // A bounded batch at a time: every call has a deadline, so one slow read delays only its
    // batch.
    for chunk in items.chunks(READ_CONCURRENCY) {
        let reads = chunk
            .iter()
            .map(|item| {
                let read = &read;
                async move { (item.clone(), read(item.clone()).await) }
            })
            .collect();
        for (item, result) in join_all(reads).await {
            found.insert(item, result?);
        }
    }
    Ok(found)
}

/// Polls every future to completion together (no extra dependency for a handful of calls).
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

impl World {
    /// Reads MaaS360 (user groups, members of those that carry distributions and of
    /// `maas360_groups`, every user) and Entra as `entra` asks.
    pub(crate) async fn read(
        upstream: &Upstream,
        tenant: &Tenant,
        maas360_groups: &[String],
        entra: EntraNeed,
    ) -> Result<Self> {
        let groups: Vec<Maas360Group> = upstream
            .maas360_groups(&tenant.id)
            .await?
            .iter()
            .map(|group| Maas360Group {
                id: group.group_id.clone(),
                name: group.name.clone(),
                distributions: distributions(group),
            })
            .collect();
        let wanted: Vec<String> = groups
            .iter()
            .filter(|group| !group.distributions.is_empty() || maas360_groups.contains(&group.id))
            .map(|group| group.id.clone())
            .collect();
        let members = each(wanted, |group_id| async move {
            upstream.maas360_group_users(&tenant.id, &group_id).await
        })
        .await?;
        let maas360_members = members
            .into_iter()
            .map(|(group_id, users)| {
                let users = users
                    .iter()
                    .filter(|u| is_live(u))
                    .map(|u| maas360_user(u, tenant.full_username))
                    .collect();
                (group_id, users)
            })
            .collect();
        let maas360_users = upstream
            .maas360_users(&tenant.id)
            .await?
            .iter()
            .filter(|u| is_live(u))
            .map(|u| maas360_user(u, tenant.full_username))
            .collect();
        let mut world = World {
            maas360_groups: groups,
            maas360_members,
            maas360_users,
            ..World::default()
        };
        let member_groups = match entra {
            EntraNeed::Nothing => return Ok(world),
            EntraNeed::MembersOf(ids) => Some(ids),
            EntraNeed::Everything => None,
        };
        let attribute = upstream.username_attribute(&tenant.id).await?;
        world.entra_groups = upstream
            .entra_groups(&tenant.id)
            .await?
            .into_iter()
            .map(|group| EntraGroup {
                id: group.id,
                name: group.display_name,
            })
            .collect();
        world.entra_users = upstream
            .entra_users(&tenant.id)
            .await?
            .iter()
            .map(|user| {
                (
                    user.id.clone(),
                    EntraUser {
                        id: user.id.clone(),
                        key: entra_key(user, &attribute),
                        email: if user.mail.trim().is_empty() {
                            user.user_principal_name.trim().to_lowercase()
                        } else {
                            user.mail.trim().to_lowercase()
                        },
                    },
                )
            })
            .collect();
        let ids = member_groups
            .unwrap_or_else(|| world.entra_groups.iter().map(|g| g.id.clone()).collect());
        world.entra_members = each(ids, |group_id| async move {
            upstream.entra_transitive_users(&tenant.id, &group_id).await
        })
        .await?;
        Ok(world)
    }

    pub(crate) fn maas360_group(&self, id: &str) -> Option<&Maas360Group> {
        self.maas360_groups.iter().find(|group| group.id == id)
    }

    pub(crate) fn entra_group(&self, id: &str) -> Option<&EntraGroup> {
        self.entra_groups.iter().find(|group| group.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(upn: &str, mail: &str, nickname: &str) -> directory::DirectoryUser {
        directory::DirectoryUser {
            user_principal_name: upn.to_owned(),
            mail: mail.to_owned(),
            mail_nickname: nickname.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn an_entra_user_is_keyed_by_its_username_rule() {
        let ada = user("Ada@Contoso.example", "ada.l@fabrikam.example", "adal");
        assert_eq!(entra_key(&ada, "userPrincipalName"), "ada@contoso.example");
        assert_eq!(entra_key(&ada, "mail"), "ada.l@fabrikam.example");
        // A value without a domain takes the UPN's.
        assert_eq!(entra_key(&ada, "mailNickname"), "adal@contoso.example");
        // An empty attribute falls back to the UPN.
        assert_eq!(entra_key(&ada, "employeeId"), "ada@contoso.example");
    }

    #[test]
    fn a_maas360_user_is_keyed_by_name_and_domain_or_by_the_whole_name() {
        let user = provisioner::Maas360User {
            username: "Ada".to_owned(),
            domain: "Contoso.example".to_owned(),
            ..Default::default()
        };
        assert_eq!(maas360_key(&user, false), "ada@contoso.example");
        assert_eq!(maas360_key(&user, true), "ada");
    }
}
