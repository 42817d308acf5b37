//! The MaaS360 objects the client reads and writes, and how they are read from (tolerant) JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lenient::{list, nested_list, number, text_of};

/// Filters for the user search API (docs/maas360.md §4.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserSearch {
    pub partial_user_name: Option<String>,
    pub domain: Option<String>,
    pub email: Option<String>,
    /// `match=1`: exact instead of substring matching.
    pub exact: bool,
    pub page_number: u32,
    /// Rounded up to an allowed size (25, 50, 100, 200, 250).
    pub page_size: u32,
}

/// A MaaS360 directory user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maas360User {
    pub user_identifier: String,
    pub user_name: String,
    pub domain: String,
    pub email: String,
    pub full_name: String,
    /// "Active", "Inactive", or whatever else MaaS360 reports.
    pub status: String,
    pub groups: Vec<GroupRef>,
}

impl Maas360User {
    /// Whether MaaS360 has queued the user's deletion for its daily job (docs/maas360.md §4.5):
    /// the status says so ("Pending Deletion" in the emulator; [inferred] wording).
    pub fn is_pending_deletion(&self) -> bool {
        let status = self.status.to_ascii_lowercase();
        status.contains("pending") && status.contains("delet")
    }
}

/// A group as listed on a user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRef {
    pub group_identifier: String,
    pub name: String,
}

/// A local user to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewUser {
    pub user_name: String,
    pub domain: String,
    pub email: String,
    pub full_name: String,
}

/// Fields to change on a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserChanges {
    pub email: Option<String>,
    pub full_name: Option<String>,
    /// \[inferred\] a new username (Entra renamed the UPN); MaaS360 keeps the
    /// same userIdentifier, so devices stay with the user.
    pub user_name: Option<String>,
    pub domain: Option<String>,
}

/// How a user deletion ended. MaaS360 queues deletions for a daily job (within 24 hours), so
/// a queued deletion is a success the caller counts as done-pending and never repeats
/// (docs/maas360.md §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteOutcome {
    /// MaaS360 said the user is deleted.
    Deleted,
    /// MaaS360 accepted the deletion for later; the user stays visible until then.
    Queued,
}

impl DeleteOutcome {
    /// Reads MaaS360's success description. Anything that does not plainly say the user is
    /// deleted now counts as queued, because queueing is what MaaS360 documents.
    pub(crate) fn from_description(description: &str) -> Self {
        let d = description.to_ascii_lowercase();
        let later = [
            "queue", "pending", "marked", "schedul", "within", "will be", "later",
        ]
        .iter()
        .any(|w| d.contains(w));
        if !later && d.contains("deleted") {
            Self::Deleted
        } else {
            Self::Queued
        }
    }
}

/// A user or device group with what is distributed to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maas360Group {
    /// The list's `groupID` (docs/maas360.md §5.1), the id `users_in_group` takes.
    pub group_identifier: String,
    pub name: String,
    /// `groupType` as MaaS360 sent it: numeric, 3 for a user group and 0–2 for kinds of
    /// device group (docs/maas360.md §5.1); see [`Maas360Group::type_code`].
    pub group_type: String,
    /// "System", "Public" or "Private" (docs/maas360.md §5.2), when the list carries it (\[inferred\] field).
    pub category: String,
    /// When the list carries them (\[inferred\] field names, docs/maas360.md §5.2).
    pub app_distributions: Vec<Distribution>,
    pub policy_distributions: Vec<Distribution>,
}

impl Maas360Group {
    /// The numeric `groupType`, if it is one.
    pub fn type_code(&self) -> Option<i64> {
        self.group_type.trim().parse().ok()
    }
}

/// A user group with its real member count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGroup {
    pub group: Maas360Group,
    /// Users in the group, with or without devices: `searchByGroup`'s total `count`.
    pub member_count: u64,
}

/// An app or policy distributed to a group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    pub id: String,
    pub name: String,
    pub platform: String,
    /// An app's numeric `appType` (docs/maas360.md §6), when the group list carries it
    /// (\[inferred\] field); `distributeApp` needs it.
    pub app_type: String,
}

/// One page of a search, with the total number of matches across all pages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page_number: u32,
    pub page_size: u32,
}

impl<T> Page<T> {
    /// Whether pages after this one hold more items.
    pub fn has_more(&self) -> bool {
        u64::from(self.page_number) * u64::from(self.page_size) < self.total
    }
}

pub(crate) fn parse_user(value: &Value) -> Maas360User {
    Maas360User {
        user_identifier: text_of(value, &["userIdentifier", "UserIdentifier", "id"]),
        user_name: text_of(value, &["userName"]),
        domain: text_of(value, &["domain"]),
        email: text_of(value, &["emailAddress", "email"]),
        full_name: text_of(value, &["fullName"]),
        status: text_of(value, &["status"]),
        groups: nested_list(value, "groups", "group")
            .into_iter()
            .map(|g| GroupRef {
                group_identifier: text_of(g, &["groupID", "groupIdentifier", "groupId", "id"]),
                name: text_of(g, &["name", "groupName"]),
            })
            .collect(),
    }
}

pub(crate) fn parse_group(value: &Value) -> Maas360Group {
    let distribution = |d: &Value, id_keys: &[&str], name_keys: &[&str]| Distribution {
        id: text_of(d, id_keys),
        name: text_of(d, name_keys),
        platform: text_of(d, &["platform"]),
        app_type: text_of(d, &["appType"]),
    };
    Maas360Group {
        group_identifier: text_of(value, &["groupID", "groupIdentifier", "groupId", "id"]),
        name: text_of(value, &["groupName", "name"]),
        group_type: text_of(value, &["groupType", "type"]),
        category: text_of(value, &["category"]),
        app_distributions: nested_list(value, "apps", "app")
            .into_iter()
            .map(|d| distribution(d, &["appId", "appID", "id"], &["appName", "name"]))
            .collect(),
        policy_distributions: nested_list(value, "policies", "policy")
            .into_iter()
            .map(|d| distribution(d, &["policyId", "policyID", "id"], &["policyName", "name"]))
            .collect(),
    }
}

/// Reads a search envelope such as `{"users":{"count":…,"user":[…]}}`. A missing `count`
/// falls back to what this page shows, so paging still ends.
pub(crate) fn parse_page<T>(
    body: &Value,
    outer: &str,
    inner: &str,
    requested_page: u32,
    requested_size: u32,
    parse: impl Fn(&Value) -> T,
) -> Page<T> {
    let envelope = body.get(outer);
    let items: Vec<T> = list(envelope.and_then(|e| e.get(inner)))
        .into_iter()
        .map(parse)
        .collect();
    let field = |name: &str| envelope.and_then(|e| number(e.get(name)));
    let page_number = field("pageNumber")
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(requested_page);
    let page_size = field("pageSize")
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(requested_size);
    let seen = u64::from(page_number.saturating_sub(1)) * u64::from(page_size) + items.len() as u64;
    let total = field("count").unwrap_or(seen).max(seen);
    Page {
        items,
        total,
        page_number,
        page_size,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_a_user_with_quirks() {
        let v = json!({"userIdentifier": 12, "userName": "jdoe", "domain": "contoso.com",
            "emailAddress": "jdoe@contoso.com", "status": "Active",
            "groups": {"group": {"name": "Sales", "groupID": "7"}}});
        let user = parse_user(&v);
        assert_eq!(user.user_identifier, "12");
        assert_eq!(user.full_name, "");
        assert_eq!(user.groups.len(), 1);
        assert_eq!(user.groups[0].group_identifier, "7");
    }

    #[test]
    fn a_deletion_is_queued_unless_it_says_it_is_done() {
        for queued in [
            "User marked for deletion. The user will be deleted within 24 hours.",
            "Delete request queued",
            "Operation completed successfully",
            "",
        ] {
            assert_eq!(
                DeleteOutcome::from_description(queued),
                DeleteOutcome::Queued,
                "{queued}"
            );
        }
        for done in ["User deleted successfully.", "The user has been deleted"] {
            assert_eq!(
                DeleteOutcome::from_description(done),
                DeleteOutcome::Deleted,
                "{done}"
            );
        }
    }

    #[test]
    fn page_total_never_below_what_was_seen() {
        let v = json!({"users": {"pageNumber": "2", "pageSize": "25", "user": {"userName": "x"}}});
        let page = parse_page(&v, "users", "user", 2, 25, parse_user);
        assert_eq!(page.total, 26);
        assert!(!page.has_more());
        let v = json!({"users": {"count": "", "user": []}});
        let page = parse_page(&v, "users", "user", 1, 50, parse_user);
        assert_eq!(page.total, 0);
        assert_eq!(page.page_size, 50);
    }
}
