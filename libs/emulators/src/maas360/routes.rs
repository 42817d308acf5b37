//! The MaaS360 paths the emulator serves, with the evidence behind each (docs/maas360.md), and
//! the matching of a request to one of them.
//!
//! This table is written out on purpose, not imported from `dirsync-maas360`: an emulator that
//! served the client's own paths could never catch a wrong one. A test in the client crate
//! compares the two tables and fails on any difference it does not declare.
//!
//! Paths are data: a route can be moved to another path at start ([`EmulatorConfig::routes`])
//! or at run time (`PUT /_emulator/routes/{name}`), so a test can show that a routes file
//! fixes a moved route without a rebuild.
//!
//! [`EmulatorConfig::routes`]: super::EmulatorConfig::routes

use std::collections::BTreeMap;

use axum::http::Method;
use serde::{Deserialize, Serialize};

/// One operation the emulator implements, named as the client names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Operation {
    AuthV1,
    AuthV2,
    RefreshToken,
    SearchUsers,
    UsersInGroup,
    AddUser,
    EditUser,
    DeactivateUser,
    ReactivateUser,
    DeleteUser,
    AddGroupsToUser,
    RemoveGroupsFromUser,
    ListGroups,
    CreateUserGroup,
    DeleteUserGroup,
    DistributeApp,
    ChangeGroupPolicy,
}

const BILLING: &str = "billingID";
const USER: &str = "userIdentifier";
const GROUP: &str = "groupID";

impl Operation {
    pub(crate) const ALL: [Operation; 17] = [
        Self::AuthV1,
        Self::AuthV2,
        Self::RefreshToken,
        Self::SearchUsers,
        Self::UsersInGroup,
        Self::AddUser,
        Self::EditUser,
        Self::DeactivateUser,
        Self::ReactivateUser,
        Self::DeleteUser,
        Self::AddGroupsToUser,
        Self::RemoveGroupsFromUser,
        Self::ListGroups,
        Self::CreateUserGroup,
        Self::DeleteUserGroup,
        Self::DistributeApp,
        Self::ChangeGroupPolicy,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::AuthV1 => "auth_v1",
            Self::AuthV2 => "auth_v2",
            Self::RefreshToken => "refresh_token",
            Self::SearchUsers => "search_users",
            Self::UsersInGroup => "users_in_group",
            Self::AddUser => "add_user",
            Self::EditUser => "edit_user",
            Self::DeactivateUser => "deactivate_user",
            Self::ReactivateUser => "reactivate_user",
            Self::DeleteUser => "delete_user",
            Self::AddGroupsToUser => "add_groups_to_user",
            Self::RemoveGroupsFromUser => "remove_groups_from_user",
            Self::ListGroups => "list_groups",
            Self::CreateUserGroup => "create_user_group",
            Self::DeleteUserGroup => "delete_user_group",
            Self::DistributeApp => "distribute_app",
            Self::ChangeGroupPolicy => "change_group_policy",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    pub(crate) fn method(self) -> Method {
        match self {
            Self::SearchUsers | Self::UsersInGroup | Self::ListGroups => Method::GET,
            Self::DeleteUserGroup => Method::DELETE,
            _ => Method::POST,
        }
    }

    /// Where MaaS360 serves the operation, as far as the evidence goes.
    fn default_path(self) -> &'static str {
        match self {
            // [IBM-code][code] docs/maas360.md §2.2.
            Self::AuthV1 => "/auth-apis/auth/1.0/authenticate/{billingID}",
            // [code] docs/maas360.md §2.3.
            Self::AuthV2 => "/auth-apis/auth/2.0/authenticate/customer/{billingID}",
            // [code, production] docs/maas360.md §2.3.
            Self::RefreshToken => "/auth-apis/auth/2.0/refreshToken/customer/{billingID}",
            // [code ×6] docs/maas360.md §4.1.
            Self::SearchUsers => "/user-apis/user/1.0/search/{billingID}",
            // [code ×3] docs/maas360.md §4.2; the path takes the list's groupID (§5.1).
            Self::UsersInGroup => {
                "/user-apis/user/1.0/searchByGroup/customer/{billingID}/groupIdentifier/{groupID}"
            }
            // [code] docs/maas360.md §4.3; form fields per §4.3.
            Self::AddUser => "/user-apis/user/1.0/addUser/customer/{billingID}",
            // [inferred] docs/maas360.md §4.5: no public evidence of the user write paths.
            Self::EditUser => {
                "/user-apis/user/1.0/editUser/customer/{billingID}/user/{userIdentifier}"
            }
            Self::DeactivateUser => {
                "/user-apis/user/1.0/deactivateUser/customer/{billingID}/user/{userIdentifier}"
            }
            Self::ReactivateUser => {
                "/user-apis/user/1.0/reactivateUser/customer/{billingID}/user/{userIdentifier}"
            }
            Self::DeleteUser => {
                "/user-apis/user/1.0/deleteUser/customer/{billingID}/user/{userIdentifier}"
            }
            Self::AddGroupsToUser => {
                "/user-apis/user/1.0/addGroups/customer/{billingID}/user/{userIdentifier}"
            }
            Self::RemoveGroupsFromUser => {
                "/user-apis/user/1.0/removeGroups/customer/{billingID}/user/{userIdentifier}"
            }
            // [IBM-code][code ×4] docs/maas360.md §5.1; shape per §5.1.
            Self::ListGroups => "/group-apis/group/1.0/groups/customer/{billingID}",
            // [gap] emulator-only: no source shows a user-group create or delete API
            // (docs/maas360.md §5.4); modelled on deviceGroups 2.0 (§5.3).
            Self::CreateUserGroup => "/group-apis/group/2.0/userGroups/customer/{billingID}",
            Self::DeleteUserGroup => {
                "/group-apis/group/2.0/userGroups/customer/{billingID}/groupIdentifier/{groupID}"
            }
            // [IBM-code][code] docs/maas360.md §6; a user group as the target is [inferred].
            Self::DistributeApp => "/application-apis/applications/1.0/distributeApp/{billingID}",
            // [code, one source] docs/maas360.md §5.3.
            Self::ChangeGroupPolicy => {
                "/group-apis/group/1.0/changeGroupPolicy/customer/{billingID}"
            }
        }
    }

    /// The path parameters the handler reads.
    fn placeholders(self) -> &'static [&'static str] {
        match self {
            Self::UsersInGroup | Self::DeleteUserGroup => &[BILLING, GROUP],
            Self::EditUser
            | Self::DeactivateUser
            | Self::ReactivateUser
            | Self::DeleteUser
            | Self::AddGroupsToUser
            | Self::RemoveGroupsFromUser => &[BILLING, USER],
            _ => &[BILLING],
        }
    }

    pub(crate) fn is_auth(self) -> bool {
        matches!(self, Self::AuthV1 | Self::AuthV2 | Self::RefreshToken)
    }

    /// Clients send `.../authenticate/{billingID}/` too ([IBM-code], docs/maas360.md §2.2).
    fn accepts_trailing_slash(self) -> bool {
        self == Self::AuthV1
    }

    /// The key a token refusal is wrapped in, named after the resource as MaaS360 does:
    /// `{"adminChanges":{"errorCode":1009,…}}` (docs/maas360.md §2.5). Which key each
    /// of these routes uses is [inferred]: the root element of its normal answer.
    pub(crate) fn resource(self) -> &'static str {
        match self {
            Self::AuthV1 | Self::AuthV2 | Self::RefreshToken => "authResponse",
            Self::SearchUsers | Self::UsersInGroup => "users",
            Self::ListGroups => "groups",
            Self::CreateUserGroup | Self::DeleteUserGroup | Self::ChangeGroupPolicy => "response",
            _ => "actionResponse",
        }
    }
}

/// A route as served, for the admin API and for comparing with the client's table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedRoute {
    pub name: String,
    pub method: String,
    pub path: String,
}

/// The routes an emulator serves before any is moved.
pub fn default_routes() -> Vec<ServedRoute> {
    RouteMap::default().served()
}

/// Why a route could not be moved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("unknown route {0:?}")]
    UnknownRoute(String),
    #[error("route {route}: path {path:?}: {reason}")]
    BadPath {
        route: String,
        path: String,
        reason: String,
    },
    #[error("route {route}: {method} {path} is already served by {other}")]
    Conflict {
        route: String,
        method: String,
        path: String,
        other: String,
    },
}

/// What a request path matched.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Match {
    Found(Operation, BTreeMap<String, String>),
    /// The path is an operation's, the method is not.
    WrongMethod(Operation),
    None,
}

/// The path of every operation, as served now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RouteMap {
    paths: BTreeMap<Operation, String>,
}

impl Default for RouteMap {
    fn default() -> Self {
        Self {
            paths: Operation::ALL
                .into_iter()
                .map(|op| (op, op.default_path().to_owned()))
                .collect(),
        }
    }
}

impl RouteMap {
    /// The defaults with the given `name → path` moves applied.
    pub(crate) fn with_moves(moves: &BTreeMap<String, String>) -> Result<Self, RouteError> {
        let mut map = Self::default();
        for (name, path) in moves {
            map.move_route(name, path)?;
        }
        Ok(map)
    }

    pub(crate) fn served(&self) -> Vec<ServedRoute> {
        self.paths
            .iter()
            .map(|(op, path)| ServedRoute {
                name: op.name().to_owned(),
                method: op.method().as_str().to_owned(),
                path: path.clone(),
            })
            .collect()
    }

    /// Serves `name` at `path` from now on; its old path answers 404.
    pub(crate) fn move_route(&mut self, name: &str, path: &str) -> Result<(), RouteError> {
        let op =
            Operation::from_name(name).ok_or_else(|| RouteError::UnknownRoute(name.to_owned()))?;
        let path = path.trim();
        let bad = |reason: String| RouteError::BadPath {
            route: name.to_owned(),
            path: path.to_owned(),
            reason,
        };
        let placeholders = placeholders_of(path).map_err(bad)?;
        let mut wanted = op.placeholders().to_vec();
        wanted.sort_unstable();
        let mut found = placeholders.clone();
        found.sort_unstable();
        if found != wanted {
            return Err(bad(format!(
                "needs exactly the placeholders {}",
                wanted
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let shape = shape_of(path);
        if let Some(other) = self.paths.iter().find(|(other, p)| {
            **other != op && other.method() == op.method() && shape_of(p) == shape
        }) {
            return Err(RouteError::Conflict {
                route: name.to_owned(),
                method: op.method().as_str().to_owned(),
                path: path.to_owned(),
                other: other.0.name().to_owned(),
            });
        }
        self.paths.insert(op, path.to_owned());
        Ok(())
    }

    /// The operation a request is for, with its decoded path parameters. Where several paths
    /// match, one with the request's method wins, then the one with the most literal segments.
    pub(crate) fn find(&self, method: &Method, path: &str) -> Match {
        let best = self
            .paths
            .iter()
            .filter_map(|(op, template)| {
                let request = if op.accepts_trailing_slash() && path.len() > 1 {
                    path.strip_suffix('/').unwrap_or(path)
                } else {
                    path
                };
                let (literals, params) = match_template(template, request)?;
                Some(((op.method() == *method, literals), *op, params))
            })
            .max_by_key(|(score, ..)| *score);
        match best {
            Some(((true, _), op, params)) => Match::Found(op, params),
            Some(((false, _), op, _)) => Match::WrongMethod(op),
            None => Match::None,
        }
    }
}

/// The placeholders of a path in order, or why it cannot be served.
fn placeholders_of(path: &str) -> Result<Vec<&str>, String> {
    if !path.starts_with('/') {
        return Err("must start with /".to_owned());
    }
    if path.contains(['?', '#']) || path.chars().any(char::is_whitespace) {
        return Err("must be a bare path".to_owned());
    }
    let mut found = Vec::new();
    for segment in path.split('/').skip(1) {
        if segment.is_empty() {
            return Err("has an empty segment".to_owned());
        }
        if segment.contains(['{', '}']) {
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) if !name.is_empty() && !name.contains(['{', '}']) => found.push(name),
                _ => {
                    return Err(format!(
                        "segment {segment:?} is not a whole {{placeholder}}"
                    ));
                }
            }
        }
    }
    Ok(found)
}

/// A path with its placeholder names erased, so two paths that match the same requests compare
/// equal.
fn shape_of(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// Literal segments matched and the captured parameters, or `None` if the path does not fit.
fn match_template(template: &str, path: &str) -> Option<(usize, BTreeMap<String, String>)> {
    let mut wanted = template.split('/');
    let mut got = path.split('/');
    let mut literals = 0;
    let mut params = BTreeMap::new();
    loop {
        match (wanted.next(), got.next()) {
            (None, None) => return Some((literals, params)),
            (Some(w), Some(g)) => {
                if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.insert(name.to_owned(), percent_decode_segment(g));
                } else if w == g {
                    literals += 1;
                } else {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// A path segment's `%XX` escapes decoded (`+` stays a plus in a path); undecodable bytes are
/// kept as they are.
fn percent_decode_segment(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = (b == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_operations_and_decodes_parameters() {
        let map = RouteMap::default();
        let found = map.find(
            &Method::POST,
            "/user-apis/user/1.0/editUser/customer/30012345/user/A%2FB",
        );
        let Match::Found(op, params) = found else {
            panic!("{found:?}")
        };
        assert_eq!(op, Operation::EditUser);
        assert_eq!(
            params.get("userIdentifier").map(String::as_str),
            Some("A/B")
        );
        assert_eq!(
            params.get("billingID").map(String::as_str),
            Some("30012345")
        );
        assert!(matches!(
            map.find(&Method::POST, "/auth-apis/auth/1.0/authenticate/1/"),
            Match::Found(Operation::AuthV1, _)
        ));
        assert_eq!(
            map.find(&Method::GET, "/auth-apis/auth/1.0/authenticate/1"),
            Match::WrongMethod(Operation::AuthV1)
        );
        assert_eq!(
            map.find(&Method::GET, "/user-apis/user/9.9/nothing"),
            Match::None
        );
        assert_eq!(
            map.find(&Method::GET, "/user-apis/user/1.0/search/"),
            Match::None,
            "an empty parameter is no match"
        );
    }

    #[test]
    fn a_moved_route_answers_only_at_its_new_path() {
        let mut map = RouteMap::default();
        assert!(
            map.move_route(
                "edit_user",
                "/user-apis/user/2.0/users/customer/{billingID}/{userIdentifier}"
            )
            .is_ok()
        );
        assert_eq!(
            map.find(
                &Method::POST,
                "/user-apis/user/1.0/editUser/customer/1/user/2"
            ),
            Match::None
        );
        assert!(matches!(
            map.find(&Method::POST, "/user-apis/user/2.0/users/customer/1/2"),
            Match::Found(Operation::EditUser, _)
        ));
        let served = map.served();
        assert!(
            served
                .iter()
                .any(|r| r.name == "edit_user" && r.path.contains("2.0/users"))
        );
    }

    #[test]
    fn moves_are_validated() {
        let mut map = RouteMap::default();
        assert_eq!(
            map.move_route("editUser", "/x/{billingID}/{userIdentifier}"),
            Err(RouteError::UnknownRoute("editUser".to_owned()))
        );
        for bad in [
            "x/{billingID}/{userIdentifier}",
            "/x/{billingID}",
            "/x/{billingID}/{userIdentifier}/{groupID}",
            "/x/{billingID}/u{userIdentifier}",
            "/x//{billingID}/{userIdentifier}",
        ] {
            assert!(
                matches!(
                    map.move_route("edit_user", bad),
                    Err(RouteError::BadPath { .. })
                ),
                "{bad}"
            );
        }
        let clash = map.move_route(
            "edit_user",
            "/user-apis/user/1.0/deleteUser/customer/{billingID}/user/{userIdentifier}",
        );
        assert!(
            matches!(clash, Err(RouteError::Conflict { ref other, .. }) if other == "delete_user")
        );
        assert_eq!(map, RouteMap::default(), "a refused move changes nothing");
    }
}
