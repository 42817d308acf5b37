//! Every MaaS360 operation the client calls, as data: method, path template, how parameters
//! travel and which answer means success, each default labelled with the evidence behind it.
//!
//! The evidence tags and sections follow `docs/maas360.md`. Eight of the routes are
//! [`Evidence::Inferred`] or [`Evidence::Gap`]: guesses, not MaaS360's documented API. An operator corrects any of them without a rebuild through a routes file
//! ([`RouteTable::from_toml`], format in [`crate::routes_file`] and `docs/maas360-routes.md`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The stable name of one operation: the key of a routes file, of call counts and of the
/// emulator's request counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteName {
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

impl RouteName {
    /// Every operation, in the order the docs list them.
    pub const ALL: [RouteName; 17] = [
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

    pub fn as_str(self) -> &'static str {
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

    /// The placeholders the path template must contain: the client fills exactly these.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            Self::UsersInGroup | Self::DeleteUserGroup => &[BILLING_ID, GROUP_ID],
            Self::EditUser
            | Self::DeactivateUser
            | Self::ReactivateUser
            | Self::DeleteUser
            | Self::AddGroupsToUser
            | Self::RemoveGroupsFromUser => &[BILLING_ID, USER_IDENTIFIER],
            _ => &[BILLING_ID],
        }
    }

    /// Authentication routes answer an `authResponse` and carry no token themselves.
    pub fn is_auth(self) -> bool {
        matches!(self, Self::AuthV1 | Self::AuthV2 | Self::RefreshToken)
    }
}

impl fmt::Display for RouteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RouteName {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|name| name.as_str() == text)
            .ok_or(())
    }
}

/// The customer billing id; every MaaS360 path carries it (docs/maas360.md §1).
pub const BILLING_ID: &str = "billingID";
/// A user's `userIdentifier` (docs/maas360.md §4.1).
pub const USER_IDENTIFIER: &str = "userIdentifier";
/// A group's `groupID`, as the group list returns it (docs/maas360.md §5.1).
pub const GROUP_ID: &str = "groupID";
/// Every placeholder a template may use.
pub const PLACEHOLDERS: [&str; 3] = [BILLING_ID, USER_IDENTIFIER, GROUP_ID];

/// HTTP method of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

impl FromStr for Method {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Self::Get, Self::Post, Self::Put, Self::Patch, Self::Delete]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or(())
    }
}

/// How a route's parameters travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// In the query string (the search APIs, docs/maas360.md §4.1).
    Query,
    /// `application/x-www-form-urlencoded` body (v1 POST operations, docs/maas360.md §3).
    Form,
    /// A JSON object of string fields, wrapped in the route's [`Route::envelope`] if it has
    /// one (authentication, docs/maas360.md §2.2; 2.0 operations, §3).
    Json,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Form => "form",
            Self::Json => "json",
        }
    }
}

impl FromStr for Encoding {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Self::Query, Self::Form, Self::Json]
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or(())
    }
}

/// Which answer means the operation succeeded. Whatever the rule, a non-2xx status, a non-zero
/// `errorCode`, a failed `actionResponse` or a non-zero `responseCode` is always a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Success {
    /// Any 2xx answer with a JSON body (reads).
    HttpOk,
    /// A 2xx answer whose `actionResponse` says `actionStatus` 0 (or `status` "Success"): the
    /// older v1 write routes (docs/maas360.md §3.4; §3).
    ActionStatus,
    /// A 2xx answer without a non-zero `responseCode` (2.0 routes, docs/maas360.md §3).
    ResponseCode,
    /// An `authResponse` with `errorCode` 0 and an `authToken` (authentication, docs/maas360.md §2.2).
    AuthToken,
}

impl Success {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpOk => "http_ok",
            Self::ActionStatus => "action_status",
            Self::ResponseCode => "response_code",
            Self::AuthToken => "auth_token",
        }
    }
}

impl FromStr for Success {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [
            Self::HttpOk,
            Self::ActionStatus,
            Self::ResponseCode,
            Self::AuthToken,
        ]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
        .ok_or(())
    }
}

/// How well a route is established, in the tags of docs/maas360.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// \[IBM\]: stated in IBM documentation.
    Ibm,
    /// [IBM-code]: seen in code written by IBM staff.
    IbmCode,
    /// \[code\]: seen in third-party clients that ran against MaaS360.
    Code,
    /// [code-weak]: seen in one client that may never have run.
    CodeWeak,
    /// \[inferred\]: a hypothesis; the path is a guess.
    Inferred,
    /// \[gap\]: no source found; the path is dirsync's own choice.
    Gap,
    /// Set by the operator's routes file: what their tenant's documentation says.
    Operator,
}

impl Evidence {
    /// The tag as docs/maas360.md writes it.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Ibm => "[IBM]",
            Self::IbmCode => "[IBM-code]",
            Self::Code => "[code]",
            Self::CodeWeak => "[code-weak]",
            Self::Inferred => "[inferred]",
            Self::Gap => "[gap]",
            Self::Operator => "[operator]",
        }
    }

    /// Whether the path is a guess rather than something seen working.
    pub fn is_guess(self) -> bool {
        matches!(self, Self::Inferred | Self::Gap | Self::CodeWeak)
    }
}

/// One operation: where it lives and how to talk to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Route {
    pub name: RouteName,
    pub method: Method,
    /// A path with `{billingID}`, `{userIdentifier}` or `{groupID}` placeholders; each is
    /// replaced by exactly one percent-encoded path segment.
    pub template: String,
    pub encoding: Encoding,
    /// For [`Encoding::Json`]: dotted keys the fields are wrapped in, for example
    /// `authRequest.maaS360AdminAuth`; empty for a flat object.
    pub envelope: String,
    pub success: Success,
    pub evidence: Evidence,
    /// Where the evidence is: a section of docs/maas360.md, or the routes file that set it.
    pub source: String,
}

/// The route table a client is built with: the built-in defaults, each overridable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTable {
    /// Indexed by `RouteName as usize`, which follows [`RouteName::ALL`].
    routes: [Route; RouteName::ALL.len()],
}

impl Default for RouteTable {
    fn default() -> Self {
        Self::defaults()
    }
}

impl RouteTable {
    /// The built-in routes, each labelled with its evidence.
    pub fn defaults() -> Self {
        Self {
            routes: RouteName::ALL.map(default_route),
        }
    }

    pub fn get(&self, name: RouteName) -> &Route {
        &self.routes[name as usize]
    }

    /// Every route, in [`RouteName::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// Replaces one route; used by the routes file after validation.
    pub(crate) fn set(&mut self, route: Route) {
        let index = route.name as usize;
        self.routes[index] = route;
    }
}

/// A built-in route before it is turned into a [`Route`].
struct Spec {
    method: Method,
    template: &'static str,
    encoding: Encoding,
    envelope: &'static str,
    success: Success,
    evidence: Evidence,
    source: &'static str,
}

fn default_route(name: RouteName) -> Route {
    use Encoding::{Form, Json, Query};
    use Evidence::{Code, Gap, IbmCode, Inferred};
    use Method::{Delete, Get, Post};
    use Success::{ActionStatus, AuthToken, HttpOk, ResponseCode};
    const AUTH_ENVELOPE: &str = "authRequest.maaS360AdminAuth";
    let d = match name {
        RouteName::AuthV1 => Spec {
            method: Post,
            template: "/auth-apis/auth/1.0/authenticate/{billingID}",
            encoding: Json,
            envelope: AUTH_ENVELOPE,
            success: AuthToken,
            evidence: IbmCode,
            source: "docs/maas360.md §2.2",
        },
        RouteName::AuthV2 => Spec {
            method: Post,
            template: "/auth-apis/auth/2.0/authenticate/customer/{billingID}",
            encoding: Json,
            envelope: AUTH_ENVELOPE,
            success: AuthToken,
            evidence: Code,
            source: "docs/maas360.md §2.3",
        },
        RouteName::RefreshToken => Spec {
            method: Post,
            template: "/auth-apis/auth/2.0/refreshToken/customer/{billingID}",
            encoding: Json,
            envelope: AUTH_ENVELOPE,
            success: AuthToken,
            evidence: Code,
            source: "docs/maas360.md §2.3",
        },
        RouteName::SearchUsers => Spec {
            method: Get,
            template: "/user-apis/user/1.0/search/{billingID}",
            encoding: Query,
            envelope: "",
            success: HttpOk,
            evidence: Code,
            source: "docs/maas360.md §4.1",
        },
        RouteName::UsersInGroup => Spec {
            method: Get,
            template: "/user-apis/user/1.0/searchByGroup/customer/{billingID}/groupIdentifier/{groupID}",
            encoding: Query,
            envelope: "",
            success: HttpOk,
            evidence: Code,
            source: "docs/maas360.md §4.2; §5.1",
        },
        RouteName::AddUser => Spec {
            method: Post,
            template: "/user-apis/user/1.0/addUser/customer/{billingID}",
            encoding: Form,
            envelope: "",
            success: ActionStatus,
            evidence: Code,
            source: "docs/maas360.md §4.3",
        },
        RouteName::EditUser => Spec {
            method: Post,
            template: "/user-apis/user/1.0/editUser/customer/{billingID}/user/{userIdentifier}",
            encoding: Form,
            envelope: "",
            success: ActionStatus,
            evidence: Inferred,
            source: "docs/maas360.md §4.5",
        },
        RouteName::DeactivateUser => Spec {
            method: Post,
            template: "/user-apis/user/1.0/deactivateUser/customer/{billingID}/user/{userIdentifier}",
            encoding: Form,
            envelope: "",
            success: ActionStatus,
            evidence: Inferred,
            source: "docs/maas360.md §4.5",
        },
        RouteName::ReactivateUser => Spec {
            method: Post,
            template: "/user-apis/user/1.0/reactivateUser/customer/{billingID}/user/{userIdentifier}",
            encoding: Form,
            envelope: "",
            success: ActionStatus,
            evidence: Inferred,
            source: "docs/maas360.md §4.5",
        },
        RouteName::DeleteUser => Spec {
            method: Post,
            template: "/user-apis/user/1.0/deleteUser/customer/{billingID}/user/{userIdentifier}",
            encoding: Form,
            envelope: "",
            success: ActionStatus,
            evidence: Inferred,
            source: "docs/maas360.md §4.5",
        },
        RouteName::AddGroupsToUser => Spec {
            method: Post,
            template: "/user-apis/user/1.0/addGroups/customer/{billingID}/user/{userIdentifier}",
            encoding: Form,
            envelope: "",
            success: ActionStatus,
            evidence: Inferred,
            source: "docs/maas360.md §4.5",
        },
        RouteName::RemoveGroupsFromUser => Spec {
            method: Post,
            template: "/user-apis/user/1.0/removeGroups/customer/{billingID}/user/{userIdentifier}",
            encoding: Form,
            envelope: "",
            success: ActionStatus,
            evidence: Inferred,
            source: "docs/maas360.md §4.5",
        },
        RouteName::ListGroups => Spec {
            method: Get,
            template: "/group-apis/group/1.0/groups/customer/{billingID}",
            encoding: Query,
            envelope: "",
            success: HttpOk,
            evidence: IbmCode,
            source: "docs/maas360.md §5.1",
        },
        RouteName::CreateUserGroup => Spec {
            method: Post,
            template: "/group-apis/group/2.0/userGroups/customer/{billingID}",
            encoding: Json,
            envelope: "",
            success: ResponseCode,
            evidence: Gap,
            source: "docs/maas360.md §5.4 (modelled on §5.3)",
        },
        RouteName::DeleteUserGroup => Spec {
            method: Delete,
            template: "/group-apis/group/2.0/userGroups/customer/{billingID}/groupIdentifier/{groupID}",
            encoding: Query,
            envelope: "",
            success: ResponseCode,
            evidence: Gap,
            source: "docs/maas360.md §5.4",
        },
        // The path and form are IBM's; that it takes a *user* group's id as `deviceGroupId`
        // is [inferred] (docs/maas360.md §6).
        RouteName::DistributeApp => Spec {
            method: Post,
            template: "/application-apis/applications/1.0/distributeApp/{billingID}",
            encoding: Form,
            envelope: "",
            success: ActionStatus,
            evidence: IbmCode,
            source: "docs/maas360.md §6",
        },
        // One source, a device-group example; the answer's shape is a [gap].
        RouteName::ChangeGroupPolicy => Spec {
            method: Post,
            template: "/group-apis/group/1.0/changeGroupPolicy/customer/{billingID}",
            encoding: Json,
            envelope: "changePolicyRequest",
            success: ResponseCode,
            evidence: Code,
            source: "docs/maas360.md §5.3; §6",
        },
    };
    Route {
        name,
        method: d.method,
        template: d.template.to_owned(),
        encoding: d.encoding,
        envelope: d.envelope.to_owned(),
        success: d.success,
        evidence: d.evidence,
        source: d.source.to_owned(),
    }
}

/// Placeholders of a template in order, or why the template is malformed.
pub(crate) fn template_placeholders(template: &str) -> Result<Vec<&str>, String> {
    if !template.starts_with('/') {
        return Err("the path must start with /".to_owned());
    }
    if template.contains(['?', '#']) {
        return Err("the path must not carry a query string or fragment".to_owned());
    }
    if template.chars().any(char::is_whitespace) {
        return Err("the path must not contain whitespace".to_owned());
    }
    let mut found = Vec::new();
    for segment in template.split('/') {
        let opens = segment.matches('{').count();
        let closes = segment.matches('}').count();
        if opens == 0 && closes == 0 {
            continue;
        }
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if opens == 1 && closes == 1 && !name.is_empty() => found.push(name),
            _ => {
                return Err(format!(
                    "segment {segment:?}: a placeholder must be a whole segment, like {{billingID}}"
                ));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_fills_exactly_its_placeholders() {
        let table = RouteTable::defaults();
        for name in RouteName::ALL {
            let route = table.get(name);
            assert_eq!(route.name, name);
            let mut found = template_placeholders(&route.template).unwrap_or_default();
            found.sort_unstable();
            let mut wanted = name.placeholders().to_vec();
            wanted.sort_unstable();
            assert_eq!(found, wanted, "{name}");
            assert_eq!(
                route.success == Success::AuthToken,
                name.is_auth(),
                "{name}"
            );
            assert!(route.source.starts_with("docs/maas360.md §"));
        }
        let guesses = table.iter().filter(|r| r.evidence.is_guess()).count();
        assert_eq!(
            guesses, 8,
            "six inferred user routes and two user-group gaps"
        );
    }

    #[test]
    fn names_round_trip() {
        for (index, name) in RouteName::ALL.into_iter().enumerate() {
            assert_eq!(name as usize, index, "ALL follows the declaration order");
            assert_eq!(name.as_str().parse::<RouteName>(), Ok(name));
        }
        assert!("editUser".parse::<RouteName>().is_err());
        assert_eq!("post".parse::<Method>(), Ok(Method::Post));
        assert_eq!("JSON".parse::<Encoding>(), Ok(Encoding::Json));
        assert_eq!(
            "action_status".parse::<Success>(),
            Ok(Success::ActionStatus)
        );
    }

    #[test]
    fn malformed_templates_are_explained() {
        assert_eq!(
            template_placeholders("/a/{billingID}/b/{groupID}"),
            Ok(vec!["billingID", "groupID"])
        );
        for bad in [
            "a/{billingID}",
            "/a/x{billingID}",
            "/a/{billingID",
            "/a/{}",
            "/a/{billingID}?x=1",
            "/a b/{billingID}",
        ] {
            assert!(template_placeholders(bad).is_err(), "{bad}");
        }
    }
}
