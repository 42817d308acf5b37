//! What a cycle sends, decided from the directory and Entra's cache before anything is sent:
//! one job per object and phase.

use std::collections::{BTreeMap, HashSet};

use super::Simulator;
use super::jobs::Job;
use crate::directory::Directory;
use crate::requests::{UserImage, diff_user};

impl Simulator {
    /// Users first: a matching query (and create or adopt) for every enabled user Entra has
    /// not linked, or for all of them in an initial cycle; a PATCH for what differs from
    /// what Entra last wrote; a DELETE for a user gone from the directory.
    pub(super) fn plan_users(&self, directory: &Directory, initial: bool) -> Vec<Job> {
        let mut jobs = Vec::new();
        for user in &directory.users {
            let desired = UserImage::from_directory(user);
            let cached = self.users.get(&user.object_id);
            // Entra never creates a disabled user, but keeps updating (and
            // disabling) one it already provisioned.
            if user.account_enabled && (initial || cached.is_none()) {
                jobs.push(Job::MatchUser {
                    object_id: user.object_id.clone(),
                    desired,
                    previous: cached.cloned(),
                });
            } else if let Some(state) = cached
                && !diff_user(&state.written, &desired).is_empty()
            {
                jobs.push(Job::UpdateUser {
                    object_id: user.object_id.clone(),
                    state: state.clone(),
                    desired,
                });
            }
        }
        let present: HashSet<&str> = directory
            .users
            .iter()
            .map(|user| user.object_id.as_str())
            .collect();
        for (object_id, state) in &self.users {
            if !present.contains(object_id.as_str()) {
                jobs.push(Job::DeleteUser {
                    object_id: object_id.clone(),
                    state: state.clone(),
                });
            }
        }
        jobs
    }

    /// Managers in a second round, once both users exist on the target
    /// (`docs/entra-scim.md §3.1`).
    pub(super) fn plan_managers(&self, directory: &Directory) -> Vec<Job> {
        let mut jobs = Vec::new();
        for user in &directory.users {
            let Some(state) = self.users.get(&user.object_id) else {
                continue;
            };
            // A manager is linked only when it is provisioned itself.
            let desired = user
                .manager
                .as_ref()
                .and_then(|manager| self.users.get(manager))
                .map(|manager| manager.target_id.clone());
            if desired != state.manager {
                jobs.push(Job::Manager {
                    object_id: user.object_id.clone(),
                    label: user.user_principal_name.clone(),
                    target_id: state.target_id.clone(),
                    previous: state.manager.clone(),
                    desired,
                });
            }
        }
        jobs
    }

    /// Groups last: matched (and created empty) as users are, then renamed and given the
    /// member changes in PATCHes; a DELETE for a group gone from the directory.
    pub(super) fn plan_groups(&self, directory: &Directory, initial: bool) -> Vec<Job> {
        let mut jobs = Vec::new();
        for group in &directory.groups {
            // Members not provisioned (yet) are left out; Entra counts them as
            // reference failures and adds them once the user exists.
            let desired_members: BTreeMap<String, String> = group
                .members
                .iter()
                .filter_map(|member| {
                    let state = self.users.get(member)?;
                    Some((member.clone(), state.target_id.clone()))
                })
                .collect();
            let cached = self.groups.get(&group.object_id);
            let force_match = initial || cached.is_none();
            let changed = cached.is_none_or(|state| {
                state.display_name.as_deref() != Some(group.display_name.as_str())
                    || state.external_id.as_deref() != Some(group.object_id.as_str())
                    || state.members != desired_members
            });
            if force_match || changed {
                jobs.push(Job::Group {
                    object_id: group.object_id.clone(),
                    display_name: group.display_name.clone(),
                    previous: cached.cloned(),
                    force_match,
                    desired_members,
                });
            }
        }
        let present: HashSet<&str> = directory
            .groups
            .iter()
            .map(|group| group.object_id.as_str())
            .collect();
        for (object_id, state) in &self.groups {
            if !present.contains(object_id.as_str()) {
                jobs.push(Job::DeleteGroup {
                    object_id: object_id.clone(),
                    state: state.clone(),
                });
            }
        }
        jobs
    }
}
