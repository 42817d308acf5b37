//! The MaaS360 paths the emulator serves, named as the client names them, with the evidence
//! behind each (maas360-api.md). Keep in step with `dirsync-maas360`'s `routes` module.

/// `(name, path)`; paths use axum's `{param}` syntax, which is also the client's template
/// syntax.
pub(crate) const AUTH_V1: (&str, &str) =
    ("auth_v1", "/auth-apis/auth/1.0/authenticate/{billingID}");
/// Clients also send a trailing slash after the billing id ([IBM-code], §2.2).
pub(crate) const AUTH_V1_SLASH: (&str, &str) =
    ("auth_v1", "/auth-apis/auth/1.0/authenticate/{billingID}/");
/// [code] §2.3.
pub(crate) const AUTH_V2: (&str, &str) = (
    "auth_v2",
    "/auth-apis/auth/2.0/authenticate/customer/{billingID}",
);
/// [code] §4.1.
pub(crate) const SEARCH_USERS: (&str, &str) =
    ("search_users", "/user-apis/user/1.0/search/{billingID}");
/// [code] §4.2.
pub(crate) const USERS_IN_GROUP: (&str, &str) = (
    "users_in_group",
    "/user-apis/user/1.0/searchByGroup/customer/{billingID}/groupIdentifier/{groupIdentifier}",
);
/// [code] path; body encoding and response fields [inferred] §4.3.
pub(crate) const ADD_USER: (&str, &str) = (
    "add_user",
    "/user-apis/user/1.0/addUser/customer/{billingID}",
);
/// [inferred] path not confirmed by IBM docs; see maas360-api.md §4.5.
pub(crate) const EDIT_USER: (&str, &str) = (
    "edit_user",
    "/user-apis/user/1.0/editUser/customer/{billingID}/user/{userIdentifier}",
);
/// [inferred] path not confirmed by IBM docs; see maas360-api.md §4.5.
pub(crate) const DEACTIVATE_USER: (&str, &str) = (
    "deactivate_user",
    "/user-apis/user/1.0/deactivateUser/customer/{billingID}/user/{userIdentifier}",
);
/// [inferred] path not confirmed by IBM docs; see maas360-api.md §4.5.
pub(crate) const REACTIVATE_USER: (&str, &str) = (
    "reactivate_user",
    "/user-apis/user/1.0/reactivateUser/customer/{billingID}/user/{userIdentifier}",
);
/// [inferred] path not confirmed by IBM docs; see maas360-api.md §4.5.
pub(crate) const DELETE_USER: (&str, &str) = (
    "delete_user",
    "/user-apis/user/1.0/deleteUser/customer/{billingID}/user/{userIdentifier}",
);
/// [inferred] "Add Groups to Local User Account"; see maas360-api.md §4.5.
pub(crate) const ADD_GROUPS_TO_USER: (&str, &str) = (
    "add_groups_to_user",
    "/user-apis/user/1.0/addGroups/customer/{billingID}/user/{userIdentifier}",
);
/// [inferred] "Remove Groups from Local User Account"; see maas360-api.md §4.5.
pub(crate) const REMOVE_GROUPS_FROM_USER: (&str, &str) = (
    "remove_groups_from_user",
    "/user-apis/user/1.0/removeGroups/customer/{billingID}/user/{userIdentifier}",
);
/// [IBM-code] path §5.1; paging parameters and distribution fields [inferred].
pub(crate) const LIST_GROUPS: (&str, &str) = (
    "list_groups",
    "/group-apis/group/1.0/groups/customer/{billingID}",
);
/// [gap] emulator-only: no source shows a user-group create API (§5.7); modelled on
/// deviceGroups 2.0 (§5.3).
pub(crate) const CREATE_USER_GROUP: (&str, &str) = (
    "create_user_group",
    "/group-apis/group/2.0/userGroups/customer/{billingID}",
);
/// [gap] emulator-only: no source shows a user-group delete API (§5.7).
pub(crate) const DELETE_USER_GROUP: (&str, &str) = (
    "delete_user_group",
    "/group-apis/group/2.0/userGroups/customer/{billingID}/groupIdentifier/{groupIdentifier}",
);

const ALL: [(&str, &str); 15] = [
    AUTH_V1,
    AUTH_V1_SLASH,
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

/// Name under which requests to a matched path are counted.
pub(crate) fn name_of(path: &str) -> &'static str {
    ALL.iter()
        .find(|(_, p)| *p == path)
        .map_or("unmatched", |(name, _)| *name)
}

pub(crate) fn is_auth(name: &str) -> bool {
    name.starts_with("auth_")
}
