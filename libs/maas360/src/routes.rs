//! Every MaaS360 path the client calls, in one table, with how sure we are of each.
//!
//! The evidence tags follow `/work/shared/reference/maas360-api.md`. Paths marked
//! [`Evidence::Inferred`] or [`Evidence::Gap`] are guesses that the emulator mirrors; correct
//! them here (and in the emulator's `routes` module) once the tenant's Swagger or the v10.91
//! Reference Guide has been checked (§4.5, §5.7, §11).

/// HTTP method of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

/// How well a route's path and verb are established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// Stated by IBM or seen in IBM code or working third-party clients.
    Confirmed,
    /// Named in the reference guide's TOC or remembered from it; exact path unverified.
    Inferred,
    /// No source found; the path is our own choice, served by the emulator only.
    Gap,
}

/// One MaaS360 operation. `template` uses `{billingID}`, `{userIdentifier}` and
/// `{groupIdentifier}` placeholders; each is replaced by one percent-encoded path segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Stable short name, used for call counts and shared with the emulator's request counts.
    pub name: &'static str,
    pub method: Method,
    pub template: &'static str,
    pub evidence: Evidence,
}

/// [code ×4] maas360-api.md §2.2.
pub const AUTH_V1: Route = Route {
    name: "auth_v1",
    method: Method::Post,
    template: "/auth-apis/auth/1.0/authenticate/{billingID}",
    evidence: Evidence::Confirmed,
};

/// [code] maas360-api.md §2.3 (Go lib, Splunk TA).
pub const AUTH_V2: Route = Route {
    name: "auth_v2",
    method: Method::Post,
    template: "/auth-apis/auth/2.0/authenticate/customer/{billingID}",
    evidence: Evidence::Confirmed,
};

/// [code ×6] maas360-api.md §4.1.
pub const SEARCH_USERS: Route = Route {
    name: "search_users",
    method: Method::Get,
    template: "/user-apis/user/1.0/search/{billingID}",
    evidence: Evidence::Confirmed,
};

/// [code ×3] maas360-api.md §4.2.
pub const USERS_IN_GROUP: Route = Route {
    name: "users_in_group",
    method: Method::Get,
    template: "/user-apis/user/1.0/searchByGroup/customer/{billingID}/groupIdentifier/{groupIdentifier}",
    evidence: Evidence::Confirmed,
};

/// [code] path confirmed by two clients; form-urlencoded body and the `userIdentifier` in the
/// actionResponse are [inferred] (maas360-api.md §4.3).
pub const ADD_USER: Route = Route {
    name: "add_user",
    method: Method::Post,
    template: "/user-apis/user/1.0/addUser/customer/{billingID}",
    evidence: Evidence::Confirmed,
};

/// [inferred] "Edit Local User Account"; path not confirmed by IBM docs (maas360-api.md §4.5).
pub const EDIT_USER: Route = Route {
    name: "edit_user",
    method: Method::Post,
    template: "/user-apis/user/1.0/editUser/customer/{billingID}/user/{userIdentifier}",
    evidence: Evidence::Inferred,
};

/// [inferred] portal "Deactivate"; API path not confirmed (maas360-api.md §4.5).
pub const DEACTIVATE_USER: Route = Route {
    name: "deactivate_user",
    method: Method::Post,
    template: "/user-apis/user/1.0/deactivateUser/customer/{billingID}/user/{userIdentifier}",
    evidence: Evidence::Inferred,
};

/// [inferred] portal "Reactivate"; API path not confirmed (maas360-api.md §4.5).
pub const REACTIVATE_USER: Route = Route {
    name: "reactivate_user",
    method: Method::Post,
    template: "/user-apis/user/1.0/reactivateUser/customer/{billingID}/user/{userIdentifier}",
    evidence: Evidence::Inferred,
};

/// [inferred] portal "Delete"; API path not confirmed (maas360-api.md §4.5).
pub const DELETE_USER: Route = Route {
    name: "delete_user",
    method: Method::Post,
    template: "/user-apis/user/1.0/deleteUser/customer/{billingID}/user/{userIdentifier}",
    evidence: Evidence::Inferred,
};

/// [inferred] "Add Groups to Local User Account", form `groupIds` (comma-separated);
/// path not confirmed by IBM docs (maas360-api.md §4.5).
pub const ADD_GROUPS_TO_USER: Route = Route {
    name: "add_groups_to_user",
    method: Method::Post,
    template: "/user-apis/user/1.0/addGroups/customer/{billingID}/user/{userIdentifier}",
    evidence: Evidence::Inferred,
};

/// [inferred] "Remove Groups from Local User Account"; path not confirmed (maas360-api.md §4.5).
pub const REMOVE_GROUPS_FROM_USER: Route = Route {
    name: "remove_groups_from_user",
    method: Method::Post,
    template: "/user-apis/user/1.0/removeGroups/customer/{billingID}/user/{userIdentifier}",
    evidence: Evidence::Inferred,
};

/// [IBM-code][code ×4] maas360-api.md §5.1; the paging parameters and the distribution fields
/// of each group are [inferred].
pub const LIST_GROUPS: Route = Route {
    name: "list_groups",
    method: Method::Get,
    template: "/group-apis/group/1.0/groups/customer/{billingID}",
    evidence: Evidence::Confirmed,
};

/// [gap] no source shows a user-group create API (maas360-api.md §5.7); modelled on the
/// 2.0 deviceGroups call (§5.3): JSON body, `{"response":{"groupIdentifier":…}}`.
pub const CREATE_USER_GROUP: Route = Route {
    name: "create_user_group",
    method: Method::Post,
    template: "/group-apis/group/2.0/userGroups/customer/{billingID}",
    evidence: Evidence::Gap,
};

/// [gap] no source shows a user-group delete API (maas360-api.md §5.7).
pub const DELETE_USER_GROUP: Route = Route {
    name: "delete_user_group",
    method: Method::Delete,
    template: "/group-apis/group/2.0/userGroups/customer/{billingID}/groupIdentifier/{groupIdentifier}",
    evidence: Evidence::Gap,
};

/// Every route, for documentation and for tests that compare with the emulator.
pub const ALL: &[Route] = &[
    AUTH_V1,
    AUTH_V2,
    SEARCH_USERS,
    USERS_IN_GROUP,
    ADD_USER,
    EDIT_USER,
    DEACTIVATE_USER,
    REACTIVATE_USER,
    DELETE_USER,
    ADD_GROUPS_TO_USER,
    REMOVE_GROUPS_FROM_USER,
    LIST_GROUPS,
    CREATE_USER_GROUP,
    DELETE_USER_GROUP,
];
