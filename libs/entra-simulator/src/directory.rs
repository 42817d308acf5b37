//! The synthetic Entra directory: generation, realistic churn, and the state a
//! correct SCIM target must hold after provisioning it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::names::{
    DEPARTMENTS, DOMAIN, GIVEN_NAMES, LOCATIONS, PROJECTS, SURNAMES, TEAM_SUFFIXES,
};

/// Most users belong to this many groups at generation time (inclusive).
const MIN_GROUPS_PER_USER: usize = 1;
const MAX_GROUPS_PER_USER: usize = 5;
/// Share of accounts already disabled when provisioning first starts.
const DISABLED_AT_START: f64 = 0.03;

/// An Entra user with the attributes the default SCIM mapping reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectoryUser {
    /// GUID-like Entra object id; never changes.
    pub object_id: String,
    /// Lower-case `first.last@contoso.example`, unique across the directory.
    pub user_principal_name: String,
    pub mail_nickname: String,
    pub given_name: String,
    pub surname: String,
    pub display_name: String,
    pub mail: String,
    pub job_title: String,
    pub department: String,
    pub employee_id: String,
    /// Object id of the manager, if any.
    pub manager: Option<String>,
    pub account_enabled: bool,
}

/// An Entra security group with direct user members only (Entra does not
/// provision nested groups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectoryGroup {
    pub object_id: String,
    pub display_name: String,
    /// Object ids of member users.
    pub members: BTreeSet<String>,
}

/// The whole synthetic tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Directory {
    pub users: Vec<DirectoryUser>,
    pub groups: Vec<DirectoryGroup>,
    /// Object ids of users that have been enabled at some point. Entra never
    /// creates a user that is disabled, so a user disabled from the start is
    /// never provisioned, while one disabled later must still exist on the
    /// target (inactive). [`Directory::expected`] needs this history.
    pub ever_enabled: BTreeSet<String>,
    /// Users hard-deleted by [`Directory::apply_changes`], oldest first.
    pub deleted_users: Vec<DirectoryUser>,
    /// Lower-cased UPNs that were renamed away or deleted. They are never
    /// handed out again: a reused UPN would make Entra's `userName eq` match
    /// adopt the stale target user instead of creating a new one.
    pub retired_upns: BTreeSet<String>,
}

/// One change made by [`Directory::apply_changes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Surname change (e.g. marriage): UPN, mail, mailNickname, surname and
    /// displayName all change.
    UserRenamed {
        object_id: String,
        old_user_principal_name: String,
        new_user_principal_name: String,
    },
    DisplayNameChanged {
        object_id: String,
        old: String,
        new: String,
    },
    JobChanged {
        object_id: String,
        department: String,
        job_title: String,
    },
    UserDisabled {
        object_id: String,
    },
    UserEnabled {
        object_id: String,
    },
    UserDeleted {
        object_id: String,
        user_principal_name: String,
    },
    MemberAdded {
        group_id: String,
        user_id: String,
    },
    MemberRemoved {
        group_id: String,
        user_id: String,
    },
    UserCreated {
        object_id: String,
        user_principal_name: String,
        /// Object ids of the groups the new user joined.
        groups: Vec<String>,
    },
}

impl Change {
    /// Stable snake_case name of the change kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::UserRenamed { .. } => "user_renamed",
            Change::DisplayNameChanged { .. } => "display_name_changed",
            Change::JobChanged { .. } => "job_changed",
            Change::UserDisabled { .. } => "user_disabled",
            Change::UserEnabled { .. } => "user_enabled",
            Change::UserDeleted { .. } => "user_deleted",
            Change::MemberAdded { .. } => "member_added",
            Change::MemberRemoved { .. } => "member_removed",
            Change::UserCreated { .. } => "user_created",
        }
    }
}

/// What [`Directory::apply_changes`] did, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChangeSummary {
    pub changes: Vec<Change>,
}

impl ChangeSummary {
    /// Number of changes per [`Change::kind`].
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        for change in &self.changes {
            *counts.entry(change.kind()).or_insert(0) += 1;
        }
        counts
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

impl fmt::Display for ChangeSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = self.counts();
        if counts.is_empty() {
            return f.write_str("no changes");
        }
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// A user a correct SCIM target must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExpectedUser {
    pub object_id: String,
    /// SCIM `userName` (= UPN).
    pub user_name: String,
    /// SCIM `externalId` (= mailNickname).
    pub external_id: String,
    pub active: bool,
    pub display_name: String,
    pub given_name: String,
    pub family_name: String,
    /// `emails[type eq "work"].value`.
    pub mail: String,
    pub title: String,
    pub department: String,
    pub employee_number: String,
    /// `userName` of the manager, when the manager is itself expected.
    pub manager_user_name: Option<String>,
}

/// A group a correct SCIM target must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExpectedGroup {
    pub object_id: String,
    pub display_name: String,
    /// `userName`s of the members that are expected users.
    pub member_user_names: BTreeSet<String>,
}

/// The target state after a complete, failure-free provisioning of the
/// directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// Keyed by `userName`.
    pub users: BTreeMap<String, ExpectedUser>,
    /// Keyed by `displayName`.
    pub groups: BTreeMap<String, ExpectedGroup>,
    pub user_count: usize,
    pub active_user_count: usize,
    pub group_count: usize,
    /// Sum of member counts over all expected groups.
    pub membership_count: usize,
}

/// Hands out unique UPNs, adding a digit on collision.
#[derive(Default)]
struct UpnAllocator {
    taken: HashSet<String>,
}

impl UpnAllocator {
    fn for_directory(directory: &Directory) -> Self {
        let mut taken: HashSet<String> = directory.retired_upns.iter().cloned().collect();
        let live = directory.users.iter().chain(&directory.deleted_users);
        taken.extend(live.map(|u| u.user_principal_name.to_ascii_lowercase()));
        Self { taken }
    }

    fn allocate(&mut self, given: &str, surname: &str) -> String {
        let mut base = format!("{}.{}", slug(given), slug(surname));
        if base == "." {
            base = "user".to_owned();
        }
        let mut n: u64 = 1;
        loop {
            let candidate = if n == 1 {
                format!("{base}@{DOMAIN}")
            } else {
                format!("{base}{n}@{DOMAIN}")
            };
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

/// UPN-safe local-part fragment: ASCII letters and digits only, so the UPN
/// never needs escaping inside a SCIM filter.
fn slug(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn local_part(upn: &str) -> String {
    upn.split('@').next().unwrap_or(upn).to_owned()
}

/// A version-4-shaped GUID, like Entra object ids, drawn from the directory's seeded
/// generator so that ids are as reproducible as everything else.
fn random_guid(rng: &mut StdRng) -> String {
    let high: u64 = rng.random();
    let low: u64 = rng.random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0x0fff,
        8 + ((low >> 62) & 0x3),
        (low >> 48) & 0x0fff,
        low & 0xffff_ffff_ffff
    )
}

fn pick_str(rng: &mut StdRng, items: &[&'static str], fallback: &'static str) -> &'static str {
    items.choose(rng).copied().unwrap_or(fallback)
}

fn pick_job(rng: &mut StdRng) -> (&'static str, &'static str) {
    match DEPARTMENTS.choose(rng) {
        Some((dept, titles)) => (dept, pick_str(rng, titles, "Specialist")),
        None => ("General", "Specialist"),
    }
}

/// The mail domain of an acquired company: its people kept their mailboxes, so
/// their mail differs from their UPN, as it does in many real tenants. A
/// product that copies the UPN into MaaS360's email is caught by it.
const SECONDARY_MAIL_DOMAIN: &str = "fabrikam.example";

/// One person in eight has mail on the acquired domain; chosen by employee
/// number so that the random sequence (and every seeded directory) is unchanged.
fn mail_for(upn: &str, employee_number: u64) -> String {
    if employee_number % 8 == 3 {
        format!("{}@{SECONDARY_MAIL_DOMAIN}", local_part(upn))
    } else {
        upn.to_owned()
    }
}

fn make_user(
    rng: &mut StdRng,
    upns: &mut UpnAllocator,
    employee_number: u64,
    manager: Option<String>,
) -> DirectoryUser {
    let given = pick_str(rng, GIVEN_NAMES, "Alex");
    let surname = pick_str(rng, SURNAMES, "Doe");
    let (department, job_title) = pick_job(rng);
    let upn = upns.allocate(given, surname);
    DirectoryUser {
        object_id: random_guid(rng),
        mail_nickname: local_part(&upn),
        mail: mail_for(&upn, employee_number),
        user_principal_name: upn,
        given_name: given.to_owned(),
        surname: surname.to_owned(),
        display_name: format!("{given} {surname}"),
        job_title: job_title.to_owned(),
        department: department.to_owned(),
        employee_id: format!("{employee_number:06}"),
        manager,
        account_enabled: true,
    }
}

/// Realistic, unique group names: departments, offices and projects first
/// (interleaved so that small directories get a mix), then team variants, then
/// numbered project phases without bound.
fn group_names(count: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(count);
    let mut seen = HashSet::new();
    let mut push = |name: String, out: &mut Vec<String>| {
        if out.len() < count && seen.insert(name.to_ascii_lowercase()) {
            out.push(name);
        }
    };
    let longest = DEPARTMENTS.len().max(LOCATIONS.len()).max(PROJECTS.len());
    for i in 0..longest {
        if let Some((dept, _)) = DEPARTMENTS.get(i) {
            push((*dept).to_owned(), &mut out);
        }
        if let Some(city) = LOCATIONS.get(i) {
            push(format!("Office {city}"), &mut out);
        }
        if let Some(project) = PROJECTS.get(i) {
            push(format!("Project {project}"), &mut out);
        }
    }
    for suffix in TEAM_SUFFIXES {
        for (dept, _) in DEPARTMENTS {
            push(format!("{dept} {suffix}"), &mut out);
        }
    }
    let mut phase: u64 = 2;
    while out.len() < count {
        for project in PROJECTS {
            push(format!("Project {project} Phase {phase}"), &mut out);
        }
        phase += 1;
    }
    out
}

/// Weighted draw of a group index not yet in `chosen`. Callers guarantee that
/// at least one index is free.
fn pick_weighted(rng: &mut StdRng, cumulative: &[u64], chosen: &BTreeSet<usize>) -> Option<usize> {
    let total = cumulative.last().copied().unwrap_or(0);
    if total > 0 {
        for _ in 0..16 {
            let drawn = rng.random_range(0..total);
            let idx = cumulative.partition_point(|&bound| bound <= drawn);
            if idx < cumulative.len() && !chosen.contains(&idx) {
                return Some(idx);
            }
        }
    }
    (0..cumulative.len()).find(|i| !chosen.contains(i))
}

/// Kinds of change and their relative frequency in a batch.
#[derive(Debug, Clone, Copy)]
enum ChangeKind {
    Rename,
    DisplayName,
    Job,
    Disable,
    Enable,
    Delete,
    AddMember,
    RemoveMember,
    NewUser,
}

const CHANGE_WEIGHTS: &[(ChangeKind, usize)] = &[
    (ChangeKind::Rename, 2),
    (ChangeKind::DisplayName, 1),
    (ChangeKind::Job, 2),
    (ChangeKind::Disable, 2),
    (ChangeKind::Enable, 1),
    (ChangeKind::Delete, 1),
    (ChangeKind::AddMember, 3),
    (ChangeKind::RemoveMember, 2),
    (ChangeKind::NewUser, 2),
];

fn pick_change_kind(rng: &mut StdRng) -> ChangeKind {
    let total: usize = CHANGE_WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut r = rng.random_range(0..total);
    for (kind, weight) in CHANGE_WEIGHTS {
        if r < *weight {
            return *kind;
        }
        r -= weight;
    }
    ChangeKind::NewUser
}

/// Per-batch bookkeeping for [`Directory::apply_changes`].
struct Batch {
    upns: UpnAllocator,
    next_employee_number: u64,
    /// Users whose lifecycle (create/disable/enable) already changed in this
    /// batch. Touching them twice could yield a user that was enabled and
    /// disabled between two cycles, which Entra would never have provisioned
    /// but [`Directory::expected`] would expect.
    lifecycle_touched: HashSet<String>,
}

impl Directory {
    /// Builds a deterministic directory: the same arguments always give the
    /// same users, groups and memberships (for one version of `rand`, whose
    /// `StdRng` algorithm may change between its major versions).
    pub fn generate(users: usize, groups: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut dir = Directory::default();
        let mut upns = UpnAllocator::default();
        // About one user in eight can manage others; drawing a manager only
        // from earlier users keeps the hierarchy acyclic by construction.
        let manager_pool = (users / 8).max(1);
        for i in 0..users {
            let manager = if i == 0 {
                None
            } else {
                let idx = rng.random_range(0..i.min(manager_pool));
                dir.users.get(idx).map(|m| m.object_id.clone())
            };
            let mut user = make_user(&mut rng, &mut upns, 100_001 + i as u64, manager);
            // The root of the hierarchy stays enabled so there is always a
            // provisioned top manager.
            if i > 0 && rng.random_bool(DISABLED_AT_START) {
                user.account_enabled = false;
            } else {
                dir.ever_enabled.insert(user.object_id.clone());
            }
            dir.users.push(user);
        }

        for name in group_names(groups) {
            dir.groups.push(DirectoryGroup {
                object_id: random_guid(&mut rng),
                display_name: name,
                members: BTreeSet::new(),
            });
        }
        dir.assign_initial_memberships(&mut rng);
        dir
    }

    fn assign_initial_memberships(&mut self, rng: &mut StdRng) {
        let group_count = self.groups.len();
        if group_count == 0 {
            return;
        }
        // Squared weights give a long tail: a few big groups, many small ones.
        let mut cumulative = Vec::with_capacity(group_count);
        let mut running = 0u64;
        for _ in 0..group_count {
            let w = rng.random_range(1..=12u64);
            running += w * w;
            cumulative.push(running);
        }
        let dept_group: HashMap<String, usize> = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.display_name.clone(), i))
            .collect();

        for user in &self.users {
            let wanted = rng
                .random_range(MIN_GROUPS_PER_USER..=MAX_GROUPS_PER_USER)
                .min(group_count);
            let mut chosen = BTreeSet::new();
            if let Some(&idx) = dept_group.get(&user.department) {
                chosen.insert(idx);
            }
            while chosen.len() < wanted {
                match pick_weighted(rng, &cumulative, &chosen) {
                    Some(idx) => {
                        chosen.insert(idx);
                    }
                    None => break,
                }
            }
            for idx in chosen {
                if let Some(group) = self.groups.get_mut(idx) {
                    group.members.insert(user.object_id.clone());
                }
            }
        }
    }

    /// Applies `count` realistic changes and says what changed. Deterministic
    /// for a given directory and seed. A batch of at least nine changes holds
    /// at least one of every kind the directory allows (an enable needs a
    /// disabled user, a member removal a membership).
    ///
    /// [`Directory::expected`] assumes a provisioning cycle runs between two
    /// batches (as Entra's 40-minute cycles would); within a batch no user has
    /// its lifecycle changed twice.
    pub fn apply_changes(&mut self, count: usize, seed: u64) -> ChangeSummary {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED_C4A1_6E5D_0001);
        let mut batch = Batch {
            upns: UpnAllocator::for_directory(self),
            next_employee_number: self.max_employee_number() + 1,
            lifecycle_touched: HashSet::new(),
        };
        // A batch large enough to hold every kind holds every kind the directory allows: a test
        // that churns 80 changes must see a display-name change and a delete every time, not in
        // 99.4% of seeds. Those first slots come in a shuffled order, so they are not a pattern.
        let mut coverage: Vec<ChangeKind> = if count >= CHANGE_WEIGHTS.len() {
            CHANGE_WEIGHTS.iter().map(|(kind, _)| *kind).collect()
        } else {
            Vec::new()
        };
        coverage.shuffle(&mut rng);
        let mut changes = Vec::with_capacity(count);
        for slot in 0..count {
            let mut applied = None;
            if let Some(kind) = coverage.get(slot).copied() {
                for _ in 0..16 {
                    applied = self.try_change(kind, &mut rng, &mut batch);
                    if applied.is_some() {
                        break;
                    }
                }
            }
            for _ in 0..16 {
                if applied.is_some() {
                    break;
                }
                let kind = pick_change_kind(&mut rng);
                applied = self.try_change(kind, &mut rng, &mut batch);
            }
            // A new user is always possible, so every requested change lands.
            let change = match applied {
                Some(change) => change,
                None => self.new_user(&mut rng, &mut batch),
            };
            changes.push(change);
        }
        ChangeSummary { changes }
    }

    fn max_employee_number(&self) -> u64 {
        self.users
            .iter()
            .chain(&self.deleted_users)
            .filter_map(|u| u.employee_id.parse::<u64>().ok())
            .max()
            .unwrap_or(100_000)
    }

    /// Index of a random user matching `pred`: a few blind draws first, since
    /// most predicates are common, then an exact scan for the rare ones.
    fn find_user(&self, rng: &mut StdRng, pred: impl Fn(&DirectoryUser) -> bool) -> Option<usize> {
        let n = self.users.len();
        if n == 0 {
            return None;
        }
        for _ in 0..16 {
            let idx = rng.random_range(0..n);
            if self.users.get(idx).is_some_and(&pred) {
                return Some(idx);
            }
        }
        let candidates: Vec<usize> = (0..n)
            .filter(|&i| self.users.get(i).is_some_and(&pred))
            .collect();
        candidates.choose(rng).copied()
    }

    fn groups_of(&self, user_id: &str) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&i| {
                self.groups
                    .get(i)
                    .is_some_and(|g| g.members.contains(user_id))
            })
            .collect()
    }

    fn try_change(
        &mut self,
        kind: ChangeKind,
        rng: &mut StdRng,
        batch: &mut Batch,
    ) -> Option<Change> {
        match kind {
            ChangeKind::Rename => self.rename_user(rng, batch),
            ChangeKind::DisplayName => self.change_display_name(rng),
            ChangeKind::Job => self.change_job(rng),
            ChangeKind::Disable => {
                let touched = &batch.lifecycle_touched;
                let idx = self.find_user(rng, |u| {
                    u.account_enabled && !touched.contains(&u.object_id)
                })?;
                let user = self.users.get_mut(idx)?;
                user.account_enabled = false;
                batch.lifecycle_touched.insert(user.object_id.clone());
                Some(Change::UserDisabled {
                    object_id: user.object_id.clone(),
                })
            }
            ChangeKind::Enable => {
                let touched = &batch.lifecycle_touched;
                let idx = self.find_user(rng, |u| {
                    !u.account_enabled && !touched.contains(&u.object_id)
                })?;
                let user = self.users.get_mut(idx)?;
                user.account_enabled = true;
                self.ever_enabled.insert(user.object_id.clone());
                batch.lifecycle_touched.insert(user.object_id.clone());
                Some(Change::UserEnabled {
                    object_id: user.object_id.clone(),
                })
            }
            ChangeKind::Delete => self.delete_user(rng, batch),
            ChangeKind::AddMember => self.add_membership(rng),
            ChangeKind::RemoveMember => self.remove_membership(rng),
            ChangeKind::NewUser => Some(self.new_user(rng, batch)),
        }
    }

    fn rename_user(&mut self, rng: &mut StdRng, batch: &mut Batch) -> Option<Change> {
        let idx = self.find_user(rng, |_| true)?;
        let user = self.users.get_mut(idx)?;
        let mut surname = pick_str(rng, SURNAMES, "Doe");
        if surname == user.surname {
            surname = pick_str(rng, SURNAMES, "Doe");
            if surname == user.surname {
                return None;
            }
        }
        let new_upn = batch.upns.allocate(&user.given_name, surname);
        let old_upn = std::mem::replace(&mut user.user_principal_name, new_upn.clone());
        self.retired_upns.insert(old_upn.to_ascii_lowercase());
        user.surname = surname.to_owned();
        user.display_name = format!("{} {}", user.given_name, surname);
        user.mail = if user.mail.eq_ignore_ascii_case(&old_upn) {
            new_upn.clone()
        } else {
            format!("{}@{SECONDARY_MAIL_DOMAIN}", local_part(&new_upn))
        };
        user.mail_nickname = local_part(&new_upn);
        Some(Change::UserRenamed {
            object_id: user.object_id.clone(),
            old_user_principal_name: old_upn,
            new_user_principal_name: new_upn,
        })
    }

    fn change_display_name(&mut self, rng: &mut StdRng) -> Option<Change> {
        let idx = self.find_user(rng, |_| true)?;
        let user = self.users.get_mut(idx)?;
        let initial = char::from(rng.random_range(b'A'..=b'Z'));
        let candidates = [
            format!("{} {initial}. {}", user.given_name, user.surname),
            format!("{}, {}", user.surname, user.given_name),
            format!("{} {} ({})", user.given_name, user.surname, user.department),
        ];
        let new = candidates.choose(rng)?.clone();
        if new == user.display_name {
            return None;
        }
        let old = std::mem::replace(&mut user.display_name, new.clone());
        Some(Change::DisplayNameChanged {
            object_id: user.object_id.clone(),
            old,
            new,
        })
    }

    fn change_job(&mut self, rng: &mut StdRng) -> Option<Change> {
        let idx = self.find_user(rng, |_| true)?;
        let user = self.users.get_mut(idx)?;
        let (department, job_title) = pick_job(rng);
        if department == user.department && job_title == user.job_title {
            return None;
        }
        department.clone_into(&mut user.department);
        job_title.clone_into(&mut user.job_title);
        Some(Change::JobChanged {
            object_id: user.object_id.clone(),
            department: department.to_owned(),
            job_title: job_title.to_owned(),
        })
    }

    fn delete_user(&mut self, rng: &mut StdRng, batch: &mut Batch) -> Option<Change> {
        let touched = &batch.lifecycle_touched;
        let idx = self.find_user(rng, |u| !touched.contains(&u.object_id))?;
        if idx >= self.users.len() {
            return None;
        }
        let user = self.users.remove(idx);
        for group in &mut self.groups {
            group.members.remove(&user.object_id);
        }
        // Reports move up to the deleted user's manager, which keeps the
        // hierarchy acyclic and free of dangling references.
        for other in &mut self.users {
            if other.manager.as_deref() == Some(user.object_id.as_str()) {
                other.manager.clone_from(&user.manager);
            }
        }
        self.retired_upns
            .insert(user.user_principal_name.to_ascii_lowercase());
        self.ever_enabled.remove(&user.object_id);
        let change = Change::UserDeleted {
            object_id: user.object_id.clone(),
            user_principal_name: user.user_principal_name.clone(),
        };
        self.deleted_users.push(user);
        Some(change)
    }

    fn add_membership(&mut self, rng: &mut StdRng) -> Option<Change> {
        if self.groups.is_empty() {
            return None;
        }
        for _ in 0..16 {
            let idx = self.find_user(rng, |_| true)?;
            let user_id = self.users.get(idx)?.object_id.clone();
            if self.groups_of(&user_id).len() >= MAX_GROUPS_PER_USER {
                continue;
            }
            let g = rng.random_range(0..self.groups.len());
            let group = self.groups.get_mut(g)?;
            if group.members.insert(user_id.clone()) {
                return Some(Change::MemberAdded {
                    group_id: group.object_id.clone(),
                    user_id,
                });
            }
        }
        None
    }

    fn remove_membership(&mut self, rng: &mut StdRng) -> Option<Change> {
        for _ in 0..16 {
            let idx = self.find_user(rng, |_| true)?;
            let user_id = self.users.get(idx)?.object_id.clone();
            let groups = self.groups_of(&user_id);
            if groups.len() <= MIN_GROUPS_PER_USER {
                continue;
            }
            let g = *groups.choose(rng)?;
            let group = self.groups.get_mut(g)?;
            group.members.remove(&user_id);
            return Some(Change::MemberRemoved {
                group_id: group.object_id.clone(),
                user_id,
            });
        }
        None
    }

    fn new_user(&mut self, rng: &mut StdRng, batch: &mut Batch) -> Change {
        let manager = self
            .find_user(rng, |u| u.account_enabled)
            .and_then(|i| self.users.get(i))
            .map(|m| m.object_id.clone());
        let user = make_user(rng, &mut batch.upns, batch.next_employee_number, manager);
        batch.next_employee_number += 1;
        let mut joined = Vec::new();
        if !self.groups.is_empty() {
            let wanted = rng.random_range(1..=3).min(self.groups.len());
            let mut chosen = BTreeSet::new();
            while chosen.len() < wanted {
                chosen.insert(rng.random_range(0..self.groups.len()));
            }
            for g in chosen {
                if let Some(group) = self.groups.get_mut(g) {
                    group.members.insert(user.object_id.clone());
                    joined.push(group.object_id.clone());
                }
            }
        }
        self.ever_enabled.insert(user.object_id.clone());
        batch.lifecycle_touched.insert(user.object_id.clone());
        let change = Change::UserCreated {
            object_id: user.object_id.clone(),
            user_principal_name: user.user_principal_name.clone(),
            groups: joined,
        };
        self.users.push(user);
        change
    }

    /// Whether a correct provisioning run has created this user on the target:
    /// Entra creates only enabled users, and keeps (disables) them afterwards.
    pub fn is_provisioned(&self, user: &DirectoryUser) -> bool {
        user.account_enabled || self.ever_enabled.contains(&user.object_id)
    }

    /// What a correct target holds after provisioning this directory.
    pub fn expected(&self) -> Expected {
        let provisioned: HashMap<&str, &DirectoryUser> = self
            .users
            .iter()
            .filter(|u| self.is_provisioned(u))
            .map(|u| (u.object_id.as_str(), u))
            .collect();

        let mut expected = Expected::default();
        for user in provisioned.values() {
            let manager_user_name = user
                .manager
                .as_deref()
                .and_then(|m| provisioned.get(m))
                .map(|m| m.user_principal_name.clone());
            expected.users.insert(
                user.user_principal_name.clone(),
                ExpectedUser {
                    object_id: user.object_id.clone(),
                    user_name: user.user_principal_name.clone(),
                    external_id: user.mail_nickname.clone(),
                    active: user.account_enabled,
                    display_name: user.display_name.clone(),
                    given_name: user.given_name.clone(),
                    family_name: user.surname.clone(),
                    mail: user.mail.clone(),
                    title: user.job_title.clone(),
                    department: user.department.clone(),
                    employee_number: user.employee_id.clone(),
                    manager_user_name,
                },
            );
        }
        for group in &self.groups {
            let member_user_names: BTreeSet<String> = group
                .members
                .iter()
                .filter_map(|m| provisioned.get(m.as_str()))
                .map(|u| u.user_principal_name.clone())
                .collect();
            expected.membership_count += member_user_names.len();
            expected.groups.insert(
                group.display_name.clone(),
                ExpectedGroup {
                    object_id: group.object_id.clone(),
                    display_name: group.display_name.clone(),
                    member_user_names,
                },
            );
        }
        expected.user_count = expected.users.len();
        expected.active_user_count = expected.users.values().filter(|u| u.active).count();
        expected.group_count = expected.groups.len();
        expected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_guids() {
        let mut first = StdRng::seed_from_u64(42);
        let mut second = StdRng::seed_from_u64(42);
        for _ in 0..100 {
            assert_eq!(random_guid(&mut first), random_guid(&mut second));
        }
    }

    #[test]
    fn guid_shape() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let guid = random_guid(&mut rng);
            assert_eq!(guid.len(), 36, "{guid}");
            let parts: Vec<&str> = guid.split('-').collect();
            assert_eq!(
                parts.iter().map(|part| part.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(parts[2].starts_with('4'));
            assert!(matches!(
                parts[3].chars().next(),
                Some('8' | '9' | 'a' | 'b')
            ));
            assert!(guid.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        }
    }

    fn membership_counts(dir: &Directory) -> HashMap<&str, usize> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for g in &dir.groups {
            for m in &g.members {
                *counts.entry(m.as_str()).or_default() += 1;
            }
        }
        counts
    }

    fn assert_invariants(dir: &Directory) {
        let upns: HashSet<String> = dir
            .users
            .iter()
            .map(|u| u.user_principal_name.to_ascii_lowercase())
            .collect();
        assert_eq!(upns.len(), dir.users.len(), "UPNs unique");
        assert!(upns.is_disjoint(&dir.retired_upns.iter().cloned().collect()));
        let ids: HashSet<&str> = dir.users.iter().map(|u| u.object_id.as_str()).collect();
        assert_eq!(ids.len(), dir.users.len(), "object ids unique");
        let names: HashSet<String> = dir
            .groups
            .iter()
            .map(|g| g.display_name.to_ascii_lowercase())
            .collect();
        assert_eq!(names.len(), dir.groups.len(), "group names unique");
        for g in &dir.groups {
            for m in &g.members {
                assert!(ids.contains(m.as_str()), "member {m} exists");
            }
        }
        // Acyclic and no dangling managers: every chain ends within n steps.
        let by_id: HashMap<&str, &DirectoryUser> = dir
            .users
            .iter()
            .map(|u| (u.object_id.as_str(), u))
            .collect();
        for u in &dir.users {
            let mut cursor = u.manager.as_deref();
            let mut steps = 0;
            while let Some(m) = cursor {
                let manager = by_id.get(m).expect("manager exists");
                assert_ne!(manager.object_id, u.object_id, "no cycle");
                cursor = manager.manager.as_deref();
                steps += 1;
                assert!(steps <= dir.users.len(), "manager chain is acyclic");
            }
            assert!(u.user_principal_name.ends_with("@contoso.example"));
            assert!(
                u.mail == u.user_principal_name
                    || u.mail == format!("{}@{SECONDARY_MAIL_DOMAIN}", u.mail_nickname),
                "{} has mail {}",
                u.user_principal_name,
                u.mail
            );
            assert!(u.user_principal_name.starts_with(&u.mail_nickname));
        }
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(
            Directory::generate(200, 20, 7),
            Directory::generate(200, 20, 7)
        );
        assert_ne!(
            Directory::generate(200, 20, 7),
            Directory::generate(200, 20, 8)
        );
    }

    #[test]
    fn generation_invariants() {
        let dir = Directory::generate(2_000, 60, 42);
        assert_eq!(dir.users.len(), 2_000);
        assert_eq!(dir.groups.len(), 60);
        assert_invariants(&dir);
        let mail_differs = dir
            .users
            .iter()
            .filter(|u| u.mail != u.user_principal_name)
            .count();
        assert!(
            (200..=300).contains(&mail_differs),
            "{mail_differs} of 2000 have mail apart from their UPN"
        );
        // Collisions are resolved with a digit.
        assert!(dir.users.iter().any(|u| {
            u.mail_nickname
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_digit())
        }));
        let counts = membership_counts(&dir);
        for u in &dir.users {
            let n = counts.get(u.object_id.as_str()).copied().unwrap_or(0);
            assert!(
                (1..=5).contains(&n),
                "{} in {n} groups",
                u.user_principal_name
            );
        }
        let sizes: Vec<usize> = dir.groups.iter().map(|g| g.members.len()).collect();
        let (min, max) = (sizes.iter().min(), sizes.iter().max());
        assert!(max > min, "group sizes vary: {sizes:?}");
        let disabled = dir.users.iter().filter(|u| !u.account_enabled).count();
        assert!(disabled > 0 && disabled < 200, "{disabled} disabled");
        assert!(dir.users.iter().filter(|u| u.manager.is_none()).count() == 1);
        assert!(dir.groups.iter().any(|g| g.display_name == "Engineering"));
        assert!(
            dir.groups
                .iter()
                .any(|g| g.display_name.starts_with("Office "))
        );
        assert!(
            dir.groups
                .iter()
                .any(|g| g.display_name.starts_with("Project "))
        );
    }

    #[test]
    fn many_groups_stay_unique() {
        let dir = Directory::generate(50, 500, 3);
        assert_eq!(dir.groups.len(), 500);
        assert_invariants(&dir);
    }

    #[test]
    fn degenerate_sizes() {
        let empty = Directory::generate(0, 0, 1);
        assert!(empty.users.is_empty() && empty.groups.is_empty());
        let no_groups = Directory::generate(10, 0, 1);
        assert_invariants(&no_groups);
        let few_groups = Directory::generate(30, 2, 1);
        assert_invariants(&few_groups);
        let counts = membership_counts(&few_groups);
        assert!(counts.values().all(|&n| (1..=2).contains(&n)));

        let mut empty = empty;
        let summary = empty.apply_changes(5, 9);
        assert_eq!(summary.len(), 5);
        assert_eq!(
            empty.users.len(),
            summary.counts()["user_created"] as usize
                - summary.counts().get("user_deleted").copied().unwrap_or(0) as usize
        );
        assert_invariants(&empty);
    }

    #[test]
    fn every_batch_of_nine_or_more_holds_every_kind() {
        let kinds = CHANGE_WEIGHTS.len();
        for seed in 0..200 {
            let mut directory = Directory::generate(120, 8, seed);
            let can_enable = directory.users.iter().any(|u| !u.account_enabled);
            let summary = directory.apply_changes(kinds, seed);
            let counts = summary.counts();
            assert_eq!(
                counts.contains_key("user_enabled"),
                can_enable,
                "seed {seed}"
            );
            assert_eq!(
                counts.len(),
                kinds - usize::from(!can_enable),
                "seed {seed}: {:?}",
                summary.counts()
            );
            assert_invariants(&directory);
        }
    }

    #[test]
    fn apply_changes_is_deterministic_and_consistent() {
        let mut a = Directory::generate(300, 25, 11);
        let mut b = a.clone();
        let sa = a.apply_changes(150, 5);
        let sb = b.apply_changes(150, 5);
        assert_eq!(sa, sb);
        assert_eq!(a, b);
        assert_eq!(sa.len(), 150);
        assert_invariants(&a);
        let counts = sa.counts();
        for kind in [
            "user_renamed",
            "display_name_changed",
            "job_changed",
            "user_disabled",
            "user_enabled",
            "user_deleted",
            "member_added",
            "member_removed",
            "user_created",
        ] {
            assert!(counts.contains_key(kind), "{kind} in {counts:?}");
        }
        assert!(sa.to_string().contains("user_created"));

        for change in &sa.changes {
            match change {
                Change::UserDeleted {
                    object_id,
                    user_principal_name,
                } => {
                    assert!(a.users.iter().all(|u| &u.object_id != object_id));
                    assert!(a.retired_upns.contains(user_principal_name));
                    assert!(a.deleted_users.iter().any(|u| &u.object_id == object_id));
                }
                Change::UserRenamed {
                    old_user_principal_name,
                    ..
                } => {
                    assert!(a.retired_upns.contains(old_user_principal_name));
                }
                _ => {}
            }
        }
        // Memberships stay within 1..=5 for users who had at least one.
        let memberships = membership_counts(&a);
        assert!(memberships.values().all(|&n| n <= 5));
    }

    #[test]
    fn lifecycle_changes_once_per_batch() {
        let mut dir = Directory::generate(40, 5, 2);
        let summary = dir.apply_changes(200, 3);
        let mut seen = HashSet::new();
        for change in &summary.changes {
            let id = match change {
                Change::UserDisabled { object_id }
                | Change::UserEnabled { object_id }
                | Change::UserCreated { object_id, .. } => object_id,
                Change::UserDeleted { object_id, .. } => {
                    assert!(
                        !seen.contains(object_id),
                        "deleted after a lifecycle change"
                    );
                    continue;
                }
                _ => continue,
            };
            assert!(seen.insert(id.clone()), "{id} changed lifecycle twice");
        }
    }

    #[test]
    fn expected_follows_provisioning_rules() {
        let mut dir = Directory::generate(100, 10, 4);
        let never = dir
            .users
            .iter()
            .find(|u| !u.account_enabled)
            .cloned()
            .expect("a user disabled from the start");
        let expected = dir.expected();
        assert!(!expected.users.contains_key(&never.user_principal_name));
        assert_eq!(
            expected.user_count,
            dir.users.iter().filter(|u| u.account_enabled).count()
        );
        assert_eq!(expected.active_user_count, expected.user_count);
        assert_eq!(expected.group_count, 10);
        for g in expected.groups.values() {
            assert!(!g.member_user_names.contains(&never.user_principal_name));
        }

        // Disable a provisioned user and delete another.
        let victim = dir
            .users
            .iter()
            .position(|u| u.account_enabled && u.manager.is_some());
        let victim = victim.expect("an enabled user");
        dir.users[victim].account_enabled = false;
        let victim_id = dir.users[victim].object_id.clone();
        let expected = dir.expected();
        let disabled = expected
            .users
            .get(&dir.users[victim].user_principal_name)
            .expect("a disabled user stays provisioned");
        assert!(!disabled.active);
        assert!(expected.active_user_count < expected.user_count);
        let summary = dir.apply_changes(30, 1);
        let deleted: Vec<&String> = summary
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::UserDeleted {
                    user_principal_name,
                    ..
                } => Some(user_principal_name),
                _ => None,
            })
            .collect();
        let expected = dir.expected();
        for upn in deleted {
            assert!(!expected.users.contains_key(upn));
        }
        // The batch may rename, re-enable or delete the victim: expect what it is now.
        if let Some(victim) = dir.users.iter().find(|u| u.object_id == victim_id)
            && let Some(u) = expected.users.get(&victim.user_principal_name)
        {
            assert_eq!(u.active, victim.account_enabled);
            if !victim.account_enabled {
                assert!(expected.active_user_count < expected.user_count);
            }
        }
        let members: usize = expected
            .groups
            .values()
            .map(|g| g.member_user_names.len())
            .sum();
        assert_eq!(members, expected.membership_count);
        for u in expected.users.values() {
            if let Some(m) = &u.manager_user_name {
                assert!(expected.users.contains_key(m));
            }
        }
    }
}
