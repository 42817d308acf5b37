//! Full reads: paging by nextLink, `$select`, members with their types, transitive members.

use std::collections::BTreeSet;

use dirsync_emulators::graph::GraphSeed;
use dirsync_graph::{ClientOptions, GraphError, MemberKind, Membership};

use crate::support::{
    assert_no_violations, build, cloud, config, emulator, ok, options, secret_credentials, setup,
    small_seed,
};

#[tokio::test]
async fn pages_through_every_user_following_each_next_link_exactly() {
    let seed = GraphSeed::generate(100, 4, 0, 7);
    let handle = emulator(config(), seed.clone()).await;
    let client = build(
        secret_credentials(handle.config()),
        cloud(&handle),
        ClientOptions {
            page_size: 7,
            ..options()
        },
    );
    let users = ok(client.users(&[]).await, "users");
    let ids: BTreeSet<String> = users.iter().map(|u| u.id.clone()).collect();
    let expected: BTreeSet<String> = seed.users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(ids, expected);
    assert_eq!(users.len(), 100, "no user twice");
    // 100 users in pages of 7.
    assert_eq!(handle.requests_to("users"), 15);
    assert_no_violations(&handle);
}

#[tokio::test]
async fn select_returns_the_named_properties_and_nothing_else() {
    let (handle, client) = setup(small_seed()).await;
    let seed = small_seed();
    let users = ok(
        client
            .users(&["id", "userPrincipalName", "accountEnabled", "department"])
            .await,
        "users",
    );
    for user in &users {
        let Some(expected) = seed.users.iter().find(|u| u.id == user.id) else {
            panic!("unknown user {}", user.id);
        };
        assert_eq!(
            user.user_principal_name.as_deref(),
            Some(expected.user_principal_name.as_str())
        );
        assert_eq!(user.account_enabled, Some(expected.account_enabled));
        assert_eq!(user.display_name, None, "not selected");
        assert_eq!(
            user.other.get("department").and_then(|d| d.as_str()),
            expected.department.as_deref()
        );
        assert!(!user.other.contains_key("jobTitle"));
    }
    // Graph's default set has no accountEnabled (docs/graph.md §2.1); the client's has.
    let users = ok(client.users(&[]).await, "users");
    assert!(users.iter().all(|u| u.account_enabled.is_some()));
    let groups = ok(client.groups(&["id", "displayName"]).await, "groups");
    assert_eq!(groups.len(), seed.groups.len());
    assert!(
        groups
            .iter()
            .all(|g| g.display_name.is_some() && g.description.is_none())
    );
    assert_no_violations(&handle);
}

#[tokio::test]
async fn members_keep_their_type_and_transitive_members_match_the_seed() {
    let seed = small_seed();
    let handle = emulator(config(), seed.clone()).await;
    // Small pages, so member lists page too.
    let client = build(
        secret_credentials(handle.config()),
        cloud(&handle),
        ClientOptions {
            page_size: 3,
            ..options()
        },
    );
    let transitive = seed.transitive_user_members();
    let mut saw_nested = false;
    for group in &seed.groups {
        let direct = ok(
            client
                .group_members(&group.id, Membership::Direct, &[])
                .await,
            "members",
        );
        let direct_ids: BTreeSet<&str> = direct.iter().map(|m| m.id.as_str()).collect();
        let expected: BTreeSet<&str> = group.members.iter().map(String::as_str).collect();
        assert_eq!(direct_ids, expected, "group {}", group.display_name);
        for member in &direct {
            let is_group = seed.groups.iter().any(|g| g.id == member.id);
            let kind = if is_group {
                MemberKind::Group
            } else {
                MemberKind::User
            };
            assert_eq!(member.kind, kind, "member {}", member.id);
            saw_nested |= is_group;
        }
        let all = ok(
            client
                .group_members(&group.id, Membership::Transitive, &["id"])
                .await,
            "transitive members",
        );
        let users: BTreeSet<String> = all
            .iter()
            .filter(|m| m.kind == MemberKind::User)
            .map(|m| m.id.clone())
            .collect();
        assert_eq!(
            Some(&users),
            transitive.get(&group.id),
            "group {}",
            group.display_name
        );
    }
    assert!(saw_nested, "the seed nests groups");
    assert_no_violations(&handle);
}

#[tokio::test]
async fn an_unknown_group_is_not_found() {
    let (_handle, client) = setup(small_seed()).await;
    let error = client
        .group_members(
            "00000000-0000-4000-8000-000000000000",
            Membership::Direct,
            &[],
        )
        .await;
    assert!(
        matches!(error, Err(GraphError::NotFound { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn select_refuses_names_that_are_not_properties() {
    let (handle, client) = setup(small_seed()).await;
    let error = client.users(&["id&$top=1"]).await;
    assert!(matches!(error, Err(GraphError::Config(_))), "{error:?}");
    // An unknown property is Graph's to refuse.
    let error = client.users(&["favouriteColour"]).await;
    assert!(
        matches!(error, Err(GraphError::Permanent { status: 400, .. })),
        "{error:?}"
    );
    assert_eq!(handle.requests_to("users"), 1);
}
