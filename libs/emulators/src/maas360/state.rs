//! The emulated directory: users, groups with distributions, and memberships, with MaaS360's
//! uniqueness rules. Pure data; no HTTP here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::seed::{Seed, SeedError};

/// `groupType` of a user group in the group list (docs/maas360.md §5.1: numeric, 3 is a
/// user group).
pub const USER_GROUP_TYPE: u8 = 3;
/// `groupType`s of the kinds of device group; which kind each is has no public evidence.
pub const DEVICE_GROUP_TYPES: [u8; 3] = [0, 1, 2];

/// The status a user shows while its deletion waits for the daily job. The real text is not
/// public (\[inferred\]); the queue itself is (docs/maas360.md §4.5).
pub const PENDING_DELETION: &str = "Pending Deletion";

/// Caps that keep a runaway client from growing the emulator without limit.
const MAX_USERS: usize = 200_000;
const MAX_GROUPS: usize = 20_000;

/// An app or policy distributed to a group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub platform: String,
    /// An app's numeric `appType` (docs/maas360.md §6); empty for policies.
    #[serde(default)]
    pub app_type: String,
}

/// Everything the emulator holds, for assertions and `GET /_emulator/state`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDump {
    pub users: Vec<UserDump>,
    pub groups: Vec<GroupDump>,
    /// Group identifier → member user identifiers.
    pub memberships: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDump {
    pub user_identifier: String,
    pub user_name: String,
    pub domain: String,
    pub email: String,
    pub full_name: String,
    /// "Active", "Inactive", or [`PENDING_DELETION`] while the deletion job has not run.
    pub status: String,
    pub devices: Vec<Device>,
    /// What reaches the user's devices through its groups, as `app:<id>` and `policy:<id>`:
    /// everything its groups carry while it is active, nothing while it is deactivated or
    /// pending deletion, so reactivating restores it (docs/maas360.md §4.5).
    pub distributions: Vec<String>,
}

impl UserDump {
    pub fn is_pending_deletion(&self) -> bool {
        self.status == PENDING_DELETION
    }
}

/// A device enrolled for a user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// The device's id (CSN); generated when a seed leaves it empty.
    #[serde(default)]
    pub csn: String,
    #[serde(default)]
    pub platform: String,
    /// An active device blocks deleting its user (docs/maas360.md §4.5).
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDump {
    pub group_identifier: String,
    pub name: String,
    /// 3 for a user group, 0–2 for device groups.
    pub group_type: u8,
    pub category: String,
    pub apps: Vec<Distribution>,
    pub policies: Vec<Distribution>,
}

impl StateDump {
    /// The user with this user name and domain, compared case-insensitively.
    pub fn user(&self, user_name: &str, domain: &str) -> Option<&UserDump> {
        self.users.iter().find(|u| {
            u.user_name.eq_ignore_ascii_case(user_name) && u.domain.eq_ignore_ascii_case(domain)
        })
    }

    /// The group with this name, compared case-insensitively.
    pub fn group(&self, name: &str) -> Option<&GroupDump> {
        self.groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
    }

    /// Users whose deletion is queued for the daily job.
    pub fn pending_deletions(&self) -> Vec<&UserDump> {
        self.users
            .iter()
            .filter(|u| u.is_pending_deletion())
            .collect()
    }

    /// Member user identifiers of a group; empty when it has none or does not exist.
    pub fn members(&self, group_identifier: &str) -> Vec<String> {
        self.memberships
            .get(group_identifier)
            .cloned()
            .unwrap_or_default()
    }
}

/// Why a directory change was refused; becomes an actionResponse "Failure" description.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// Deleting a user with an active device (docs/maas360.md §4.5).
    #[error("{0}")]
    ActiveDevice(String),
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deletion {
    /// Queued for the daily job; the user stays visible, pending deletion.
    Queued,
    /// Gone now.
    Deleted,
}

#[derive(Clone, Debug)]
struct User {
    id: String,
    user_name: String,
    domain: String,
    email: String,
    full_name: String,
    active: bool,
    /// 0 local, 1 user directory (docs/maas360.md §4.1).
    auth_type: u8,
    devices: Vec<Device>,
}

#[derive(Clone, Debug)]
struct Group {
    id: String,
    name: String,
    group_type: u8,
    category: String,
    apps: Vec<Distribution>,
    policies: Vec<Distribution>,
}

/// Search filters of the user search API (docs/maas360.md §4.1).
#[derive(Clone, Debug, Default)]
pub(crate) struct UserFilter {
    pub(crate) partial_user_name: Option<String>,
    pub(crate) partial_full_name: Option<String>,
    pub(crate) partial_email: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) exact: bool,
    /// 0 = only users with devices, 1 = all, 2 = only users without devices.
    pub(crate) include_all_users: u8,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Directory {
    users: BTreeMap<String, User>,
    /// User ids by login (userName and domain, lowercased): MaaS360 refuses a second user of
    /// one login, and a directory of 100k users cannot check that by walking them all.
    logins: HashMap<(String, String), String>,
    groups: BTreeMap<String, Group>,
    members: BTreeMap<String, BTreeSet<String>>,
    next_group: u64,
    /// Users whose deletion is queued, with when it was asked for.
    pending: BTreeMap<String, Instant>,
    next_device: u64,
}

fn matches(value: &str, wanted: &str, exact: bool) -> bool {
    if exact {
        value.eq_ignore_ascii_case(wanted)
    } else {
        value.to_lowercase().contains(&wanted.to_lowercase())
    }
}

fn login(user_name: &str, domain: &str) -> (String, String) {
    (user_name.to_ascii_lowercase(), domain.to_ascii_lowercase())
}

fn valid_email(email: &str) -> bool {
    let mut parts = email.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty())
}

impl Directory {
    pub(crate) fn from_seed(seed: Option<&Seed>) -> Result<Self, SeedError> {
        let mut dir = Self {
            next_group: 1001,
            ..Self::default()
        };
        let Some(seed) = seed else {
            return Ok(dir);
        };
        for u in &seed.users {
            let id = dir
                .add_user(
                    &u.user_name,
                    &u.domain,
                    &u.email,
                    &u.full_name,
                    u.user_identifier.clone(),
                )
                .map_err(|e| SeedError::Invalid(format!("user {}: {e}", u.user_name)))?;
            dir.set_devices(&id, u.devices.clone())
                .map_err(|e| SeedError::Invalid(format!("user {}: {e}", u.user_name)))?;
            if let Some(user) = dir.users.get_mut(&id) {
                user.active = u
                    .status
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case("active"));
            }
        }
        for g in &seed.groups {
            let group_type = g.group_type.unwrap_or(USER_GROUP_TYPE);
            if group_type != USER_GROUP_TYPE && !DEVICE_GROUP_TYPES.contains(&group_type) {
                return Err(SeedError::Invalid(format!(
                    "group {}: groupType {group_type} is neither 3 (user group) nor 0-2 (device groups)",
                    g.name
                )));
            }
            let category = g.category.clone().unwrap_or_else(|| "Public".to_owned());
            let id = dir
                .create_group(&g.name, group_type, &category, g.group_identifier.clone())
                .map_err(|e| SeedError::Invalid(format!("group {}: {e}", g.name)))?;
            if let Some(group) = dir.groups.get_mut(&id) {
                group.apps.clone_from(&g.apps);
                group.policies.clone_from(&g.policies);
            }
            for member in &g.members {
                let user_id = dir.resolve_member(member).ok_or_else(|| {
                    SeedError::Invalid(format!(
                        "group {}: member {member:?} is not one seeded user",
                        g.name
                    ))
                })?;
                dir.members.entry(id.clone()).or_default().insert(user_id);
            }
        }
        Ok(dir)
    }

    fn resolve_member(&self, member: &str) -> Option<String> {
        let by_name: Vec<&User> = self
            .users
            .values()
            .filter(|u| u.user_name.eq_ignore_ascii_case(member))
            .collect();
        if let [only] = by_name.as_slice() {
            return Some(only.id.clone());
        }
        self.users
            .values()
            .find(|u| format!("{}@{}", u.user_name, u.domain).eq_ignore_ascii_case(member))
            .map(|u| u.id.clone())
    }

    pub(crate) fn add_user(
        &mut self,
        user_name: &str,
        domain: &str,
        email: &str,
        full_name: &str,
        id: Option<String>,
    ) -> Result<String, Refusal> {
        for (field, value) in [
            ("userName", user_name),
            ("domain", domain),
            ("email", email),
        ] {
            if value.trim().is_empty() {
                return Err(Refusal::Invalid(format!(
                    "Missing required parameter: {field}"
                )));
            }
        }
        if !valid_email(email) {
            return Err(Refusal::Invalid(format!("Invalid email address: {email}")));
        }
        if self.logins.contains_key(&login(user_name, domain)) {
            return Err(Refusal::AlreadyExists(
                "User already exists with the same username and domain".to_owned(),
            ));
        }
        if self.users.len() >= MAX_USERS {
            return Err(Refusal::Invalid(
                "User limit of the emulator reached".to_owned(),
            ));
        }
        let id = id.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string().to_uppercase());
        if self.users.contains_key(&id) {
            return Err(Refusal::AlreadyExists(format!(
                "User identifier {id} already exists"
            )));
        }
        self.logins.insert(login(user_name, domain), id.clone());
        self.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                user_name: user_name.to_owned(),
                domain: domain.to_owned(),
                email: email.to_owned(),
                full_name: full_name.to_owned(),
                active: true,
                auth_type: 0,
                devices: Vec::new(),
            },
        );
        Ok(id)
    }

    /// A user a write may change: present and not pending deletion.
    fn user_mut(&mut self, id: &str) -> Result<&mut User, Refusal> {
        if self.pending.contains_key(id) {
            return Err(Refusal::Invalid(format!("User {id} is pending deletion")));
        }
        self.users
            .get_mut(id)
            .ok_or_else(|| Refusal::NotFound(format!("User not found: {id}")))
    }

    /// The addUser `authType` (0 local, 1 user directory; docs/maas360.md §4.1, §4.3).
    pub(crate) fn set_auth_type(&mut self, id: &str, auth_type: u8) -> Result<(), Refusal> {
        if auth_type > 1 {
            return Err(Refusal::Invalid(format!("Invalid authType: {auth_type}")));
        }
        self.user_mut(id)?.auth_type = auth_type;
        Ok(())
    }

    /// Replaces a user's devices; a device without a CSN gets one.
    pub(crate) fn set_devices(&mut self, id: &str, devices: Vec<Device>) -> Result<(), Refusal> {
        let mut next = self.next_device;
        let devices = devices
            .into_iter()
            .map(|mut d| {
                if d.csn.trim().is_empty() {
                    next += 1;
                    d.csn = format!("EMU{next:08}");
                }
                if d.platform.is_empty() {
                    "iOS".clone_into(&mut d.platform);
                }
                d
            })
            .collect();
        let user = self
            .users
            .get_mut(id)
            .ok_or_else(|| Refusal::NotFound(format!("User not found: {id}")))?;
        user.devices = devices;
        self.next_device = next;
        Ok(())
    }

    pub(crate) fn edit_user(
        &mut self,
        id: &str,
        email: Option<&str>,
        full_name: Option<&str>,
        rename: (Option<&str>, Option<&str>),
    ) -> Result<(), Refusal> {
        if let Some(email) = email
            && !valid_email(email)
        {
            return Err(Refusal::Invalid(format!("Invalid email address: {email}")));
        }
        let (new_name, new_domain) = rename;
        if new_name.is_some() || new_domain.is_some() {
            let current = self.user_mut(id)?;
            let user_name = new_name.unwrap_or(&current.user_name).to_owned();
            let domain = new_domain.unwrap_or(&current.domain).to_owned();
            if user_name.trim().is_empty() || domain.trim().is_empty() {
                return Err(Refusal::Invalid(
                    "userName and domain must not be empty".to_owned(),
                ));
            }
            let taken = self
                .logins
                .get(&login(&user_name, &domain))
                .is_some_and(|holder| holder != id);
            if taken {
                return Err(Refusal::AlreadyExists(
                    "User already exists with the same username and domain".to_owned(),
                ));
            }
            let user = self.user_mut(id)?;
            let old = login(&user.user_name, &user.domain);
            user.user_name = user_name;
            user.domain = domain;
            let new = login(&user.user_name, &user.domain);
            self.logins.remove(&old);
            self.logins.insert(new, id.to_owned());
        }
        let user = self.user_mut(id)?;
        if let Some(email) = email {
            email.clone_into(&mut user.email);
        }
        if let Some(full_name) = full_name {
            full_name.clone_into(&mut user.full_name);
        }
        Ok(())
    }

    /// Idempotent, so a retry after a lost response succeeds.
    pub(crate) fn set_active(&mut self, id: &str, active: bool) -> Result<(), Refusal> {
        self.user_mut(id)?.active = active;
        Ok(())
    }

    /// MaaS360 queues a deletion for a daily job and refuses it while the user has an active
    /// device (docs/maas360.md §4.5). `now` deletes at once instead of queueing.
    pub(crate) fn delete_user(
        &mut self,
        id: &str,
        queued_at: Instant,
        now: bool,
    ) -> Result<Deletion, Refusal> {
        let user = self
            .users
            .get(id)
            .ok_or_else(|| Refusal::NotFound(format!("User not found: {id}")))?;
        if self.pending.contains_key(id) {
            return Ok(Deletion::Queued);
        }
        let active = user.devices.iter().filter(|d| d.active).count();
        if active > 0 {
            return Err(Refusal::ActiveDevice(format!(
                "Cannot delete user {id}: the user has {active} active device(s); retire or wipe them first"
            )));
        }
        if now {
            self.remove_user(id);
            return Ok(Deletion::Deleted);
        }
        self.pending.insert(id.to_owned(), queued_at);
        Ok(Deletion::Queued)
    }

    fn remove_user(&mut self, id: &str) {
        if let Some(user) = self.users.remove(id) {
            self.logins.remove(&login(&user.user_name, &user.domain));
        }
        self.pending.remove(id);
        for members in self.members.values_mut() {
            members.remove(id);
        }
    }

    /// The daily job: carries out the queued deletions asked for at least `older_than` ago
    /// (all of them with zero) and says how many.
    pub(crate) fn run_deletion_job(&mut self, older_than: Duration) -> usize {
        let now = Instant::now();
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, queued)| now.saturating_duration_since(**queued) >= older_than)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &due {
            self.remove_user(id);
        }
        due.len()
    }

    pub(crate) fn create_group(
        &mut self,
        name: &str,
        group_type: u8,
        category: &str,
        id: Option<String>,
    ) -> Result<String, Refusal> {
        if name.trim().is_empty() {
            return Err(Refusal::Invalid(
                "Missing required parameter: groupName".to_owned(),
            ));
        }
        if self
            .groups
            .values()
            .any(|g| g.name.eq_ignore_ascii_case(name))
        {
            return Err(Refusal::AlreadyExists(format!(
                "Group name already exists: {name}"
            )));
        }
        if self.groups.len() >= MAX_GROUPS {
            return Err(Refusal::Invalid(
                "Group limit of the emulator reached".to_owned(),
            ));
        }
        let id = match id {
            Some(id) => id,
            None => loop {
                let candidate = self.next_group.to_string();
                self.next_group += 1;
                if !self.groups.contains_key(&candidate) {
                    break candidate;
                }
            },
        };
        if self.groups.contains_key(&id) {
            return Err(Refusal::AlreadyExists(format!(
                "Group identifier {id} already exists"
            )));
        }
        self.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                name: name.to_owned(),
                group_type,
                category: category.to_owned(),
                apps: Vec::new(),
                policies: Vec::new(),
            },
        );
        Ok(id)
    }

    pub(crate) fn delete_group(&mut self, id: &str) -> Result<(), Refusal> {
        let group = self
            .groups
            .get(id)
            .ok_or_else(|| Refusal::NotFound(format!("Group not found: {id}")))?;
        if group.group_type != USER_GROUP_TYPE {
            return Err(Refusal::Invalid(format!(
                "Only local user groups can be deleted; {id} is a device group (type {})",
                group.group_type
            )));
        }
        self.groups.remove(id);
        self.members.remove(id);
        Ok(())
    }

    /// Puts an app on a group, once. The app's name and platform come from any group that
    /// already carries it (the emulator has no app catalogue); an unknown app keeps its id.
    pub(crate) fn distribute_app(
        &mut self,
        group_id: &str,
        app_type: &str,
        app_id: &str,
    ) -> Result<(), Refusal> {
        if !self.groups.contains_key(group_id) {
            return Err(Refusal::NotFound(format!("Group not found: {group_id}")));
        }
        let known = self
            .groups
            .values()
            .flat_map(|g| g.apps.iter())
            .find(|a| a.id == app_id)
            .cloned();
        let app = known.unwrap_or_else(|| Distribution {
            id: app_id.to_owned(),
            name: app_id.to_owned(),
            platform: String::new(),
            app_type: app_type.to_owned(),
        });
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or_else(|| Refusal::NotFound(format!("Group not found: {group_id}")))?;
        if !group.apps.iter().any(|a| a.id == app_id) {
            group.apps.push(app);
        }
        Ok(())
    }

    /// Makes a group's policies of `policy_type` exactly `names` (each known policy keeps its
    /// id; an unknown one is named by itself).
    pub(crate) fn set_group_policies(
        &mut self,
        group_id: &str,
        policy_type: &str,
        names: &[String],
    ) -> Result<(), Refusal> {
        if !self.groups.contains_key(group_id) {
            return Err(Refusal::NotFound(format!("Group not found: {group_id}")));
        }
        let resolved: Vec<Distribution> = names
            .iter()
            .map(|name| {
                self.groups
                    .values()
                    .flat_map(|g| g.policies.iter())
                    .find(|p| p.name.eq_ignore_ascii_case(name) && p.platform == policy_type)
                    .cloned()
                    .unwrap_or_else(|| Distribution {
                        id: name.clone(),
                        name: name.clone(),
                        platform: policy_type.to_owned(),
                        app_type: String::new(),
                    })
            })
            .collect();
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or_else(|| Refusal::NotFound(format!("Group not found: {group_id}")))?;
        group.policies.retain(|p| p.platform != policy_type);
        group.policies.extend(resolved);
        Ok(())
    }

    /// Adds or removes one user to or from several groups, all or nothing, idempotently.
    pub(crate) fn change_membership(
        &mut self,
        user_id: &str,
        group_ids: &[String],
        add: bool,
    ) -> Result<(), Refusal> {
        self.user_mut(user_id)?;
        if group_ids.is_empty() {
            return Err(Refusal::Invalid(
                "Missing required parameter: groupIds".to_owned(),
            ));
        }
        for gid in group_ids {
            let group = self
                .groups
                .get(gid)
                .ok_or_else(|| Refusal::NotFound(format!("Group not found: {gid}")))?;
            if group.group_type != USER_GROUP_TYPE {
                return Err(Refusal::Invalid(format!(
                    "Group {gid} is a device group (type {}), not a user group",
                    group.group_type
                )));
            }
        }
        for gid in group_ids {
            let members = self.members.entry(gid.clone()).or_default();
            if add {
                members.insert(user_id.to_owned());
            } else {
                members.remove(user_id);
            }
        }
        Ok(())
    }

    pub(crate) fn has_group(&self, id: &str) -> bool {
        self.groups.contains_key(id)
    }

    /// The users `filter` finds, in MaaS360's order: how many, and the page asked for rendered.
    pub(crate) fn search_users(&self, filter: &UserFilter, window: Window) -> (usize, Vec<Value>) {
        // An exact user name and a domain name one login: the index answers at once, where a
        // walk over a directory of 100k users would take each worker's lookup milliseconds.
        let candidates: Box<dyn Iterator<Item = &User>> =
            match (filter.exact, &filter.partial_user_name, &filter.domain) {
                (true, Some(name), Some(domain)) => Box::new(
                    self.logins
                        .get(&login(name, domain))
                        .and_then(|id| self.users.get(id))
                        .into_iter(),
                ),
                _ => Box::new(self.users.values()),
            };
        let found: Vec<&User> = candidates
            .filter(|u| match filter.include_all_users {
                1 => true,
                2 => u.devices.is_empty(),
                _ => !u.devices.is_empty(),
            })
            .filter(|u| {
                filter
                    .partial_user_name
                    .as_deref()
                    .is_none_or(|w| matches(&u.user_name, w, filter.exact))
                    && filter
                        .partial_full_name
                        .as_deref()
                        .is_none_or(|w| matches(&u.full_name, w, filter.exact))
                    && filter
                        .partial_email
                        .as_deref()
                        .is_none_or(|w| matches(&u.email, w, filter.exact))
                    && filter
                        .domain
                        .as_deref()
                        .is_none_or(|w| u.domain.eq_ignore_ascii_case(w))
            })
            .collect();
        self.render_page(found, window)
    }

    /// A group's users: how many, and the page asked for rendered.
    pub(crate) fn users_in_group(
        &self,
        group_id: &str,
        include_all_users: u8,
        window: Window,
    ) -> (usize, Vec<Value>) {
        let found: Vec<&User> = self
            .members
            .get(group_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.users.get(id))
            .filter(|u| match include_all_users {
                1 => true,
                2 => u.devices.is_empty(),
                _ => !u.devices.is_empty(),
            })
            .collect();
        self.render_page(found, window)
    }

    /// Sorts `found` and renders only the page asked for: rendering a user walks the groups,
    /// and a count (a page of one) of a group of thousands would render them all.
    fn render_page(&self, mut found: Vec<&User>, window: Window) -> (usize, Vec<Value>) {
        sort_users(&mut found);
        let total = found.len();
        let items = found
            .into_iter()
            .skip(window.skip_count())
            .take(window.size)
            .map(|u| self.user_json(u))
            .collect();
        (total, items)
    }

    /// A user in the search response shape of docs/maas360.md §4.1 (canonical form: real
    /// arrays and numbers; the XML-to-JSON habits are applied later).
    fn user_json(&self, u: &User) -> Value {
        let groups: Vec<Value> = self
            .members
            .iter()
            .filter(|(_, m)| m.contains(&u.id))
            .filter_map(|(gid, _)| self.groups.get(gid))
            .map(|g| json!({"name": g.name, "groupID": g.id}))
            .collect();
        json!({
            "userIdentifier": u.id,
            "userName": u.user_name,
            "domain": u.domain,
            "emailAddress": u.email,
            "fullName": u.full_name,
            "authType": u.auth_type,
            "source": if u.auth_type == 0 { "Local" } else { "User Directory" },
            "status": self.status_of(u),
            "upn": format!("{}@{}", u.user_name, u.domain),
            "groups": {"group": groups},
        })
    }

    /// All groups in the list shape of docs/maas360.md §5.1:
    /// `{"groupName","groupID","groupType"}` with a numeric type. Category and distributions
    /// are [inferred] (the mapping service needs them; their real field names are a gap).
    pub(crate) fn groups_json(&self) -> Vec<Value> {
        let mut groups: Vec<&Group> = self.groups.values().collect();
        groups.sort_by_key(|g| g.name.to_lowercase());
        groups
            .into_iter()
            .map(|g| {
                let apps: Vec<Value> = g
                    .apps
                    .iter()
                    .map(|d| {
                        json!({"appId": d.id, "appName": d.name, "platform": d.platform,
                               "appType": d.app_type})
                    })
                    .collect();
                let policies: Vec<Value> = g
                    .policies
                    .iter()
                    .map(
                        |d| json!({"policyId": d.id, "policyName": d.name, "platform": d.platform}),
                    )
                    .collect();
                json!({
                    "groupName": g.name,
                    "groupID": g.id,
                    "groupType": g.group_type,
                    "category": g.category,
                    "apps": {"app": apps},
                    "policies": {"policy": policies},
                })
            })
            .collect()
    }

    fn status_of(&self, u: &User) -> &'static str {
        if self.pending.contains_key(&u.id) {
            PENDING_DELETION
        } else if u.active {
            "Active"
        } else {
            "Inactive"
        }
    }

    /// What a user's groups distribute to its devices: everything while it is active, nothing
    /// while it is deactivated or pending deletion.
    fn distributions_of(&self, u: &User) -> Vec<String> {
        if self.status_of(u) != "Active" {
            return Vec::new();
        }
        let mut found = BTreeSet::new();
        for (gid, members) in &self.members {
            if !members.contains(&u.id) {
                continue;
            }
            if let Some(group) = self.groups.get(gid) {
                found.extend(group.apps.iter().map(|d| format!("app:{}", d.id)));
                found.extend(group.policies.iter().map(|d| format!("policy:{}", d.id)));
            }
        }
        found.into_iter().collect()
    }

    pub(crate) fn dump(&self) -> StateDump {
        let mut users: Vec<&User> = self.users.values().collect();
        sort_users(&mut users);
        StateDump {
            users: users
                .into_iter()
                .map(|u| UserDump {
                    user_identifier: u.id.clone(),
                    user_name: u.user_name.clone(),
                    domain: u.domain.clone(),
                    email: u.email.clone(),
                    full_name: u.full_name.clone(),
                    status: self.status_of(u).to_owned(),
                    devices: u.devices.clone(),
                    distributions: self.distributions_of(u),
                })
                .collect(),
            groups: self
                .groups
                .values()
                .map(|g| GroupDump {
                    group_identifier: g.id.clone(),
                    name: g.name.clone(),
                    group_type: g.group_type,
                    category: g.category.clone(),
                    apps: g.apps.clone(),
                    policies: g.policies.clone(),
                })
                .collect(),
            memberships: self
                .members
                .iter()
                .filter(|(_, m)| !m.is_empty())
                .map(|(gid, m)| (gid.clone(), m.iter().cloned().collect()))
                .collect(),
        }
    }
}

fn sort_users(users: &mut [&User]) {
    // Keys made once per user, not once per comparison.
    users.sort_by_cached_key(|u| {
        (
            u.user_name.to_lowercase(),
            u.domain.to_lowercase(),
            u.id.clone(),
        )
    });
}

/// A page of a listing: 1-based page number and page size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) number: u32,
    pub(crate) size: usize,
}

impl Window {
    /// Everything, on one page.
    #[cfg(test)]
    pub(crate) const ALL: Self = Self {
        number: 1,
        size: usize::MAX,
    };

    pub(crate) fn skip_count(self) -> usize {
        usize::try_from(u64::from(self.number.saturating_sub(1)))
            .unwrap_or(usize::MAX)
            .saturating_mul(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_freed_by_a_rename_and_by_a_deletion() {
        let mut dir = Directory::default();
        let ann = dir
            .add_user("ann", "contoso.com", "ann@contoso.com", "", None)
            .expect("ann");
        let bob = dir
            .add_user("bob", "contoso.com", "bob@contoso.com", "", None)
            .expect("bob");
        let onto_ann = dir.edit_user(&bob, None, None, (Some("ANN"), None));
        assert!(matches!(onto_ann, Err(Refusal::AlreadyExists(_))));
        dir.edit_user(&ann, None, None, (Some("anne"), None))
            .expect("rename");
        dir.edit_user(&bob, None, None, (Some("Ann"), None))
            .expect("the old login is free");
        let anne_again = dir.add_user("ANNE", "contoso.com", "a@contoso.com", "", None);
        assert!(matches!(anne_again, Err(Refusal::AlreadyExists(_))));
        dir.delete_user(&ann, Instant::now(), true).expect("delete");
        dir.add_user("anne", "contoso.com", "a@contoso.com", "", None)
            .expect("a deleted user's login is free");
    }

    #[test]
    fn an_exact_search_by_login_finds_the_one_user_whatever_the_case() {
        let mut dir = Directory::default();
        for (name, domain) in [
            ("jdoe", "contoso.com"),
            ("jdoe", "fabrikam.com"),
            ("jdoe2", "contoso.com"),
        ] {
            dir.add_user(name, domain, &format!("{name}@{domain}"), "", None)
                .expect("added");
        }
        let search = |name: &str, domain: Option<&str>, exact: bool| {
            let filter = UserFilter {
                partial_user_name: Some(name.to_owned()),
                domain: domain.map(str::to_owned),
                exact,
                include_all_users: 1,
                ..UserFilter::default()
            };
            dir.search_users(&filter, Window::ALL)
                .1
                .iter()
                .map(|u| format!("{}@{}", u["userName"], u["domain"]).replace('"', ""))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            search("JDoe", Some("CONTOSO.com"), true),
            ["jdoe@contoso.com"]
        );
        assert!(search("jdo", Some("contoso.com"), true).is_empty());
        assert_eq!(
            search("jdoe", None, true),
            ["jdoe@contoso.com", "jdoe@fabrikam.com"]
        );
        assert_eq!(
            search("jdoe", Some("contoso.com"), false),
            ["jdoe@contoso.com", "jdoe2@contoso.com"]
        );
        // Only users with devices unless all are asked for: the index does not skip the filters.
        let without_devices = UserFilter {
            partial_user_name: Some("jdoe".to_owned()),
            domain: Some("contoso.com".to_owned()),
            exact: true,
            include_all_users: 0,
            ..UserFilter::default()
        };
        assert!(dir.search_users(&without_devices, Window::ALL).1.is_empty());
    }

    #[test]
    fn user_unique_by_name_and_domain_case_insensitively() {
        let mut dir = Directory::default();
        assert!(
            dir.add_user("jdoe", "contoso.com", "j@contoso.com", "", None)
                .is_ok()
        );
        let again = dir.add_user("JDOE", "Contoso.COM", "x@contoso.com", "", None);
        assert!(matches!(again, Err(Refusal::AlreadyExists(_))));
        assert!(
            dir.add_user("jdoe", "fabrikam.com", "j@fabrikam.com", "", None)
                .is_ok()
        );
        let bad = dir.add_user("amy", "contoso.com", "not-an-email", "", None);
        assert!(matches!(bad, Err(Refusal::Invalid(_))));
    }

    #[test]
    fn group_names_unique_and_membership_checked() {
        let mut dir = Directory::default();
        let gid = dir.create_group("Sales", USER_GROUP_TYPE, "Public", None);
        assert!(gid.is_ok());
        let again = dir.create_group("sales", USER_GROUP_TYPE, "Public", None);
        assert!(matches!(again, Err(Refusal::AlreadyExists(_))));
        let missing = dir.change_membership("nobody", &["1".to_owned()], true);
        assert!(matches!(missing, Err(Refusal::NotFound(_))));
    }

    #[test]
    fn seed_with_unknown_member_is_refused() {
        let seed = Seed {
            users: Vec::new(),
            groups: vec![super::super::seed::SeedGroup {
                name: "G".to_owned(),
                members: vec!["ghost".to_owned()],
                ..Default::default()
            }],
        };
        assert!(Directory::from_seed(Some(&seed)).is_err());
    }
}
