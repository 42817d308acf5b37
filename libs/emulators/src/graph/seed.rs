//! What a Graph emulator starts with: the `--seed FILE` JSON (Graph's own field names), or the
//! Entra simulator's seeded [`Directory`] plus optional group nesting, and the transitive
//! user members of every group computed from a seed alone, for expectations.
//!
//! Nesting (`--nesting D`) is deterministic from the seed number: going through the groups in
//! order, group `j > 0` is nested when a SHA-256 draw over `(seed, j)` falls in one quarter;
//! its parent is drawn among the groups before it whose depth is below `D`, and one nested
//! group in eight gets a second such parent (a diamond). Parents always come earlier, so the
//! nesting has no cycle, and no chain of groups inside groups is longer than `D`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dirsync_entra_simulator::Directory;
use ring::digest;
use serde::{Deserialize, Serialize};

/// Users and groups, as Graph names their fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GraphSeed {
    pub users: Vec<SeedUser>,
    pub groups: Vec<SeedGroup>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedUser {
    /// Generated when empty.
    #[serde(default)]
    pub id: String,
    pub user_principal_name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default = "enabled")]
    pub account_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
}

fn enabled() -> bool {
    true
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedGroup {
    /// Generated when empty.
    #[serde(default)]
    pub id: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Ids of member users and member groups.
    #[serde(default)]
    pub members: Vec<String>,
}

/// Why a seed cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("seed is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("seed: {0}")]
    Invalid(String),
}

impl From<SeedError> for std::io::Error {
    fn from(error: SeedError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, error)
    }
}

impl GraphSeed {
    pub fn from_json(text: &str) -> Result<Self, SeedError> {
        Ok(serde_json::from_str(text)?)
    }

    /// The users and groups of an Entra simulator directory, field for field: the same ids,
    /// UPNs, names, mail, enabled flags, group names and (user) memberships.
    pub fn from_directory(directory: &Directory) -> Self {
        let users = directory
            .users
            .iter()
            .map(|u| SeedUser {
                id: u.object_id.clone(),
                user_principal_name: u.user_principal_name.clone(),
                display_name: Some(u.display_name.clone()),
                given_name: Some(u.given_name.clone()),
                surname: Some(u.surname.clone()),
                mail: Some(u.mail.clone()).filter(|m| !m.is_empty()),
                account_enabled: u.account_enabled,
                job_title: Some(u.job_title.clone()).filter(|t| !t.is_empty()),
                department: Some(u.department.clone()).filter(|d| !d.is_empty()),
                employee_id: Some(u.employee_id.clone()).filter(|e| !e.is_empty()),
            })
            .collect();
        let groups = directory
            .groups
            .iter()
            .map(|g| SeedGroup {
                id: g.object_id.clone(),
                display_name: g.display_name.clone(),
                description: None,
                members: g.members.iter().cloned().collect(),
            })
            .collect();
        Self { users, groups }
    }

    /// `Directory::generate(users, groups, seed)`, as the Entra simulator builds it, with
    /// groups nested up to `nesting` deep (see the module doc).
    pub fn generate(users: usize, groups: usize, nesting: usize, seed: u64) -> Self {
        let mut generated = Self::from_directory(&Directory::generate(users, groups, seed));
        generated.nest(nesting, seed);
        generated
    }

    /// Nests groups inside earlier groups, at most `depth` deep, deterministically from
    /// `seed` (see the module doc). Depth 0 changes nothing.
    pub fn nest(&mut self, depth: usize, seed: u64) {
        if depth == 0 {
            return;
        }
        let mut level = vec![0usize; self.groups.len()];
        let mut parents: Vec<(usize, usize)> = Vec::new();
        for j in 1..self.groups.len() {
            if !draw(seed, j, 0).is_multiple_of(4) {
                continue;
            }
            let wanted = if draw(seed, j, 1).is_multiple_of(8) {
                2
            } else {
                1
            };
            let mut chosen: Vec<usize> = Vec::new();
            for attempt in 2..18 {
                let candidate = usize::try_from(draw(seed, j, attempt) % j as u64).unwrap_or(0);
                if level.get(candidate).is_some_and(|l| *l < depth) && !chosen.contains(&candidate)
                {
                    chosen.push(candidate);
                    if chosen.len() == wanted {
                        break;
                    }
                }
            }
            for parent in chosen {
                let parent_level = level.get(parent).copied().unwrap_or(0);
                if let Some(own) = level.get_mut(j) {
                    *own = (*own).max(parent_level + 1);
                }
                parents.push((parent, j));
            }
        }
        for (parent, child) in parents {
            let Some(child_id) = self.groups.get(child).map(|g| g.id.clone()) else {
                continue;
            };
            if let Some(group) = self.groups.get_mut(parent) {
                group.members.push(child_id);
            }
        }
    }

    /// Every group's users, direct or through nested groups, computed from the seed alone
    /// (cycle-safe), so a test can check the emulator's `transitiveMembers` independently.
    pub fn transitive_user_members(&self) -> BTreeMap<String, BTreeSet<String>> {
        let users: BTreeSet<&str> = self.users.iter().map(|u| u.id.as_str()).collect();
        let groups: HashMap<&str, &SeedGroup> =
            self.groups.iter().map(|g| (g.id.as_str(), g)).collect();
        let mut result = BTreeMap::new();
        for group in &self.groups {
            let mut found = BTreeSet::new();
            let mut seen = BTreeSet::from([group.id.as_str()]);
            let mut stack = vec![group];
            while let Some(current) = stack.pop() {
                for member in &current.members {
                    if users.contains(member.as_str()) {
                        found.insert(member.clone());
                    } else if let Some(nested) = groups.get(member.as_str())
                        && seen.insert(member.as_str())
                    {
                        stack.push(nested);
                    }
                }
            }
            result.insert(group.id.clone(), found);
        }
        result
    }
}

/// A deterministic 64-bit draw for group `index`, try `attempt`, under `seed`.
fn draw(seed: u64, index: usize, attempt: u64) -> u64 {
    let mut input = Vec::with_capacity(48);
    input.extend_from_slice(b"dirsync-graph-nesting");
    input.extend_from_slice(&seed.to_le_bytes());
    input.extend_from_slice(&(index as u64).to_le_bytes());
    input.extend_from_slice(&attempt.to_le_bytes());
    let hash = digest::digest(&digest::SHA256, &input);
    let mut first = [0u8; 8];
    first.copy_from_slice(hash.as_ref().get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_of(seed: &GraphSeed) -> usize {
        let index: HashMap<&str, &SeedGroup> =
            seed.groups.iter().map(|g| (g.id.as_str(), g)).collect();
        fn down(id: &str, index: &HashMap<&str, &SeedGroup>) -> usize {
            index.get(id).map_or(0, |g| {
                g.members
                    .iter()
                    .filter(|m| index.contains_key(m.as_str()))
                    .map(|m| 1 + down(m, index))
                    .max()
                    .unwrap_or(0)
            })
        }
        seed.groups
            .iter()
            .map(|g| down(&g.id, &index))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn same_directory_as_the_entra_simulator() {
        let directory = Directory::generate(40, 8, 7);
        let seed = GraphSeed::generate(40, 8, 0, 7);
        assert_eq!(seed.users.len(), 40);
        for (user, entra) in seed.users.iter().zip(&directory.users) {
            assert_eq!(user.id, entra.object_id);
            assert_eq!(user.user_principal_name, entra.user_principal_name);
            assert_eq!(user.account_enabled, entra.account_enabled);
            assert_eq!(user.mail.as_deref(), Some(entra.mail.as_str()));
        }
        for (group, entra) in seed.groups.iter().zip(&directory.groups) {
            assert_eq!(group.display_name, entra.display_name);
            let members: BTreeSet<String> = group.members.iter().cloned().collect();
            assert_eq!(members, entra.members);
        }
    }

    #[test]
    fn nesting_is_deterministic_acyclic_and_bounded() {
        for depth in 1..4 {
            let a = GraphSeed::generate(60, 40, depth, 11);
            let b = GraphSeed::generate(60, 40, depth, 11);
            assert_eq!(a, b);
            let nested = depth_of(&a);
            assert!(
                nested >= 1 && nested <= depth,
                "depth {nested} for --nesting {depth}"
            );
        }
        assert_eq!(depth_of(&GraphSeed::generate(60, 40, 0, 11)), 0);
    }

    #[test]
    fn transitive_members_follow_nesting_and_survive_cycles() {
        let user = |id: &str| SeedUser {
            id: id.to_owned(),
            user_principal_name: format!("{id}@contoso.example"),
            account_enabled: true,
            ..SeedUser::default()
        };
        let group = |id: &str, members: &[&str]| SeedGroup {
            id: id.to_owned(),
            display_name: id.to_owned(),
            description: None,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        };
        let seed = GraphSeed {
            users: vec![user("u1"), user("u2"), user("u3")],
            groups: vec![
                group("a", &["u1", "b"]),
                group("b", &["u2", "c"]),
                group("c", &["u3", "a"]),
            ],
        };
        let all: BTreeSet<String> = ["u1", "u2", "u3"].map(str::to_owned).into();
        let transitive = seed.transitive_user_members();
        assert_eq!(transitive.get("a"), Some(&all));
        assert_eq!(transitive.get("c"), Some(&all));
    }

    #[test]
    fn reads_graph_field_names() {
        let seed = GraphSeed::from_json(
            r#"{"users":[{"id":"u1","userPrincipalName":"a@b.c","displayName":"A","givenName":"A","surname":"B","mail":"a@b.c","accountEnabled":false}],
                "groups":[{"id":"g1","displayName":"G","members":["u1"]}]}"#,
        );
        let Ok(seed) = seed else {
            panic!("{seed:?}");
        };
        assert!(!seed.users[0].account_enabled);
        assert_eq!(seed.groups[0].members, vec!["u1".to_owned()]);
        assert!(GraphSeed::from_json("{").is_err());
    }
}
