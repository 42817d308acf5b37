//! How alike a MaaS360 group and an Entra group are: by name (ignoring case, spaces and
//! punctuation) and by members (users matched by key, then by email). Pure.

use std::collections::{HashMap, HashSet};

use crate::world::{EntraUser, Maas360User, World};

/// A name as the look-alike rule compares it: lower-case letters and digits only, so that
/// "Sales-Team", "sales team" and "SALES_TEAM" are one name. The provisioner parks an unmapped
/// Entra group whose name has the key of a distribution-carrying MaaS360 group.
pub(crate) fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// 0..1: one minus the edit distance between the names' keys over the longer key's length.
pub(crate) fn name_similarity(a: &str, b: &str) -> f64 {
    let a: Vec<char> = name_key(a).chars().collect();
    let b: Vec<char> = name_key(b).chars().collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 0.0;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    let distance = previous[b.len()];
    #[allow(clippy::cast_precision_loss)] // names are short
    let similarity = 1.0 - distance as f64 / longest as f64;
    similarity
}

/// What the ranking uses: either signal alone makes a strong candidate, both together the
/// strongest.
pub(crate) fn score(name_similarity: f64, member_overlap: f64) -> f64 {
    0.6 * name_similarity.max(member_overlap) + 0.4 * name_similarity.min(member_overlap)
}

/// The score from which a candidate counts as resembling a group (Option 1 recommended).
pub(crate) const RESEMBLES: f64 = 0.5;

/// Entra users found from MaaS360's side: by key, then by email.
pub(crate) struct UserIndex<'a> {
    by_key: HashMap<&'a str, &'a EntraUser>,
    by_email: HashMap<&'a str, &'a EntraUser>,
    maas360_by_key: HashMap<&'a str, &'a Maas360User>,
    maas360_by_email: HashMap<&'a str, &'a Maas360User>,
}

impl<'a> UserIndex<'a> {
    pub(crate) fn new(world: &'a World) -> Self {
        let mut by_key = HashMap::new();
        let mut by_email = HashMap::new();
        for user in world.entra_users.values() {
            by_key.entry(user.key.as_str()).or_insert(user);
            if !user.email.is_empty() {
                by_email.entry(user.email.as_str()).or_insert(user);
            }
        }
        let mut maas360_by_key = HashMap::new();
        let mut maas360_by_email = HashMap::new();
        for user in &world.maas360_users {
            maas360_by_key.entry(user.key.as_str()).or_insert(user);
            if !user.email.is_empty() {
                maas360_by_email.entry(user.email.as_str()).or_insert(user);
            }
        }
        Self {
            by_key,
            by_email,
            maas360_by_key,
            maas360_by_email,
        }
    }

    /// The Entra user a MaaS360 user is.
    pub(crate) fn entra_of(&self, user: &Maas360User) -> Option<&'a EntraUser> {
        self.by_key.get(user.key.as_str()).copied().or_else(|| {
            (!user.email.is_empty())
                .then(|| self.by_email.get(user.email.as_str()).copied())
                .flatten()
        })
    }

    /// The MaaS360 user an Entra user is, when MaaS360 holds one.
    pub(crate) fn maas360_of(&self, user: &EntraUser) -> Option<&'a Maas360User> {
        self.maas360_by_key
            .get(user.key.as_str())
            .copied()
            .or_else(|| {
                (!user.email.is_empty())
                    .then(|| self.maas360_by_email.get(user.email.as_str()).copied())
                    .flatten()
            })
    }
}

/// Jaccard overlap of a MaaS360 group's members and an Entra group's users.
pub(crate) struct Overlap {
    pub(crate) ratio: f64,
    pub(crate) matched: u64,
    pub(crate) entra_members: u64,
}

pub(crate) fn overlap(
    index: &UserIndex<'_>,
    maas360_members: &[Maas360User],
    entra_members: &[String],
) -> Overlap {
    let entra: HashSet<&str> = entra_members.iter().map(String::as_str).collect();
    let matched: HashSet<&str> = maas360_members
        .iter()
        .filter_map(|member| index.entra_of(member))
        .map(|user| user.id.as_str())
        .filter(|id| entra.contains(id))
        .collect();
    let matched_count = matched.len();
    let union = maas360_members.len() + entra.len() - matched_count;
    #[allow(clippy::cast_precision_loss)] // member counts are far below 2^52
    let ratio = if union == 0 {
        0.0
    } else {
        matched_count as f64 / union as f64
    };
    Overlap {
        ratio,
        matched: matched_count as u64,
        entra_members: entra.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_ignoring_case_spaces_and_punctuation() {
        assert_eq!(name_key("Sales-Team (EU)"), "salesteameu");
        assert!((name_similarity("Sales Team", "sales_team") - 1.0).abs() < 1e-9);
        assert!(name_similarity("Sales", "Sales (MaaS360)") < 0.5);
        assert!(name_similarity("Sales", "Sale") > 0.75);
        assert!(name_similarity("Sales", "Finance") < 0.3);
        assert!(name_similarity("", "") < 1e-9);
    }

    #[test]
    fn either_signal_alone_ranks_below_both() {
        assert!(score(1.0, 1.0) > score(1.0, 0.0));
        assert!(score(0.0, 1.0) >= RESEMBLES);
        assert!(score(1.0, 0.0) >= RESEMBLES);
        assert!(score(0.4, 0.3) < RESEMBLES);
    }

    fn world() -> World {
        let mut world = World::default();
        for (id, key, email) in [
            ("e1", "ada@contoso.example", "ada@contoso.example"),
            ("e2", "bob@contoso.example", "robert@fabrikam.example"),
            ("e3", "cy@contoso.example", ""),
        ] {
            world.entra_users.insert(
                id.to_owned(),
                EntraUser {
                    id: id.to_owned(),
                    key: key.to_owned(),
                    email: email.to_owned(),
                },
            );
        }
        world
    }

    fn member(key: &str, email: &str) -> Maas360User {
        Maas360User {
            id: format!("m-{key}"),
            key: key.to_owned(),
            email: email.to_owned(),
        }
    }

    #[test]
    fn members_match_by_key_then_by_email() {
        let world = world();
        let index = UserIndex::new(&world);
        let members = [
            member("ada@contoso.example", ""),
            member("robert@fabrikam.example", "robert@fabrikam.example"),
            member("kiosk@contoso.example", "kiosk@contoso.example"),
        ];
        let found = overlap(
            &index,
            &members,
            &["e1".to_owned(), "e2".to_owned(), "e3".to_owned()],
        );
        assert_eq!(found.matched, 2);
        assert_eq!(found.entra_members, 3);
        // 2 in both of 4 distinct people.
        assert!((found.ratio - 0.5).abs() < 1e-9);
    }
}
