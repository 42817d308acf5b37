//! Delta rounds: the initial round, every kind of change, membership with users and groups,
//! large groups across pages, "from now", and expired tokens.

use std::collections::{BTreeMap, BTreeSet};

use dirsync_emulators::graph::{DeltaExpiry, GraphEmulatorConfig, GraphSeed, SeedGroup, SeedUser};
use dirsync_graph::{
    DeltaRound, DeltaStart, GraphClient, GraphError, GroupChange, GroupDelta, MemberKind,
    RemovalReason, UserChange,
};
use serde_json::{Map, Value, json};

use crate::support::{assert_no_violations, client, config, emulator, ok, small_seed};

async fn users_round(client: &GraphClient, start: DeltaStart) -> DeltaRound<UserChange> {
    ok(client.users_delta(start, &[]).await, "users delta")
}

async fn groups_round(client: &GraphClient, start: DeltaStart) -> DeltaRound<GroupChange> {
    ok(client.groups_delta(start, &[]).await, "groups delta")
}

fn upserted(round: &DeltaRound<UserChange>) -> BTreeMap<String, Option<String>> {
    round
        .changes
        .iter()
        .filter_map(|c| match c {
            UserChange::Upsert(user) => Some((user.id.clone(), user.display_name.clone())),
            UserChange::Removed { .. } => None,
        })
        .collect()
}

fn removed(round: &DeltaRound<UserChange>) -> BTreeMap<String, RemovalReason> {
    round
        .changes
        .iter()
        .filter_map(|c| match c {
            UserChange::Removed { id, reason } => Some((id.clone(), reason.clone())),
            UserChange::Upsert(_) => None,
        })
        .collect()
}

fn change(name: &str, value: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(name.to_owned(), value);
    map
}

#[tokio::test]
async fn user_rounds_report_creates_updates_soft_and_hard_deletes() {
    let seed = small_seed();
    let config = GraphEmulatorConfig {
        delta_page_size: 8,
        ..config()
    };
    let handle = emulator(config, seed.clone()).await;
    let client = client(&handle);

    let initial = users_round(&client, DeltaStart::Full).await;
    assert_eq!(upserted(&initial).len(), seed.users.len());
    assert!(
        initial.pages >= 4,
        "30 users in pages of 8: {}",
        initial.pages
    );

    let user = |i: usize| seed.users[i].id.clone();
    let created = ok(
        handle.create_user(&SeedUser {
            user_principal_name: "new.hire@contoso.example".to_owned(),
            display_name: Some("New Hire".to_owned()),
            account_enabled: true,
            ..SeedUser::default()
        }),
        "create",
    );
    ok(
        handle.update_user(&user(0), &change("displayName", json!("Renamed Person"))),
        "rename",
    );
    ok(handle.soft_delete_user(&user(1)), "soft delete");
    ok(handle.hard_delete_user(&user(2)), "hard delete");
    ok(handle.soft_delete_user(&user(3)), "soft delete");
    ok(handle.hard_delete_user(&user(3)), "purge");
    ok(handle.soft_delete_user(&user(4)), "soft delete");
    ok(handle.restore_user(&user(4)), "restore");
    // Not a tracked property: the user must not appear (docs/graph.md §3.2).
    ok(
        handle.update_user(&user(5), &change("jobTitle", json!("Chief Tester"))),
        "job",
    );

    let round = users_round(&client, DeltaStart::Resume(initial.delta_link.clone())).await;
    let expected_upserts: BTreeMap<String, Option<String>> = [
        (created, Some("New Hire".to_owned())),
        (user(0), Some("Renamed Person".to_owned())),
        (user(4), seed.users[4].display_name.clone()),
    ]
    .into();
    assert_eq!(upserted(&round), expected_upserts);
    let expected_removed: BTreeMap<String, RemovalReason> = [
        (user(1), RemovalReason::Changed),
        (user(2), RemovalReason::Deleted),
        (user(3), RemovalReason::Deleted),
    ]
    .into();
    assert_eq!(removed(&round), expected_removed);

    let quiet = users_round(&client, DeltaStart::Resume(round.delta_link.clone())).await;
    assert!(quiet.changes.is_empty(), "{:?}", quiet.changes);
    assert_ne!(quiet.delta_link, initial.delta_link);
    assert_no_violations(&handle);
}

fn group_changes(round: &DeltaRound<GroupChange>) -> BTreeMap<String, GroupChange> {
    round
        .changes
        .iter()
        .map(|c| match c {
            GroupChange::Upsert(delta) => (delta.group.id.clone(), c.clone()),
            GroupChange::Removed { id, .. } => (id.clone(), c.clone()),
        })
        .collect()
}

fn members(delta: &GroupDelta, added: bool) -> BTreeSet<(String, MemberKind)> {
    let list = if added {
        &delta.members_added
    } else {
        &delta.members_removed
    };
    list.iter()
        .map(|m| (m.id.clone(), m.kind.clone()))
        .collect()
}

fn upsert(changes: &BTreeMap<String, GroupChange>, id: &str) -> GroupDelta {
    match changes.get(id) {
        Some(GroupChange::Upsert(delta)) => delta.clone(),
        other => panic!("group {id}: {other:?}"),
    }
}

#[tokio::test]
async fn group_rounds_carry_membership_of_users_and_groups_across_pages() {
    let seed = small_seed();
    let config = GraphEmulatorConfig {
        delta_page_size: 3,
        // Smaller than the largest group, so groups are split across pages.
        delta_members_per_page: 4,
        ..config()
    };
    let handle = emulator(config, seed.clone()).await;
    let client = client(&handle);
    let kind_of = |id: &str| {
        if seed.groups.iter().any(|g| g.id == id) {
            MemberKind::Group
        } else {
            MemberKind::User
        }
    };

    let initial = groups_round(&client, DeltaStart::Full).await;
    let changes = group_changes(&initial);
    assert_eq!(changes.len(), seed.groups.len());
    assert!(
        seed.groups.iter().any(|g| g.members.len() > 4),
        "some group is split"
    );
    for group in &seed.groups {
        let delta = upsert(&changes, &group.id);
        let expected: BTreeSet<(String, MemberKind)> = group
            .members
            .iter()
            .map(|m| (m.clone(), kind_of(m)))
            .collect();
        assert_eq!(
            members(&delta, true),
            expected,
            "group {}",
            group.display_name
        );
        assert!(delta.members_removed.is_empty());
        assert_eq!(
            delta.group.display_name.as_deref(),
            Some(group.display_name.as_str())
        );
    }

    // Changes: a user joins g0 and one leaves it, a new group with a member goes inside g1,
    // g3 is deleted, and a user of g4 is deleted for good.
    let g = |i: usize| seed.groups[i].id.clone();
    let outsider = seed
        .users
        .iter()
        .find(|u| !seed.groups[0].members.contains(&u.id))
        .map(|u| u.id.clone())
        .unwrap_or_default();
    let leaver = seed.groups[0]
        .members
        .iter()
        .find(|m| kind_of(m) == MemberKind::User)
        .cloned()
        .unwrap_or_default();
    let purged = seed.groups[4]
        .members
        .iter()
        .find(|m| kind_of(m) == MemberKind::User && **m != outsider && **m != leaver)
        .cloned()
        .unwrap_or_default();
    ok(handle.add_member(&g(0), &outsider), "join");
    ok(handle.remove_member(&g(0), &leaver), "leave");
    let nested = ok(
        handle.create_group(&SeedGroup {
            display_name: "Nested Team".to_owned(),
            members: vec![outsider.clone()],
            ..SeedGroup::default()
        }),
        "create group",
    );
    ok(handle.add_member(&g(1), &nested), "nest");
    ok(handle.delete_group(&g(3)), "delete group");
    ok(handle.hard_delete_user(&purged), "purge a member");

    let round = groups_round(&client, DeltaStart::Resume(initial.delta_link.clone())).await;
    let changes = group_changes(&round);
    let g0 = upsert(&changes, &g(0));
    assert!(members(&g0, true).contains(&(outsider.clone(), MemberKind::User)));
    assert!(members(&g0, false).contains(&(leaver.clone(), MemberKind::User)));
    let g1 = upsert(&changes, &g(1));
    assert!(members(&g1, true).contains(&(nested.clone(), MemberKind::Group)));
    let created = upsert(&changes, &nested);
    assert_eq!(created.group.display_name.as_deref(), Some("Nested Team"));
    assert_eq!(
        members(&created, true),
        BTreeSet::from([(outsider.clone(), MemberKind::User)])
    );
    assert_eq!(
        changes.get(&g(3)),
        Some(&GroupChange::Removed {
            id: g(3),
            reason: RemovalReason::Deleted
        })
    );
    let g4 = upsert(&changes, &g(4));
    assert!(members(&g4, false).contains(&(purged.clone(), MemberKind::User)));
    // Only the groups something happened to are in the round.
    let mut touched: BTreeSet<String> = [g(0), g(1), g(3), nested].into();
    touched.extend(
        seed.groups
            .iter()
            .filter(|group| group.members.contains(&purged))
            .map(|group| group.id.clone()),
    );
    let reported: BTreeSet<String> = changes.keys().cloned().collect();
    assert_eq!(reported, touched);
    assert_no_violations(&handle);
}

#[tokio::test]
async fn from_now_skips_the_enumeration() {
    let seed = small_seed();
    let handle = emulator(config(), seed.clone()).await;
    let client = client(&handle);
    let now = users_round(&client, DeltaStart::FromNow).await;
    assert!(now.changes.is_empty());
    assert_eq!(now.pages, 1);
    ok(
        handle.update_user(&seed.users[7].id, &change("surname", json!("Later"))),
        "change",
    );
    let round = users_round(&client, DeltaStart::Resume(now.delta_link)).await;
    assert_eq!(upserted(&round).len(), 1);
    assert!(upserted(&round).contains_key(&seed.users[7].id));
    assert_no_violations(&handle);
}

#[tokio::test]
async fn replayed_changes_arrive_again_with_the_current_state() {
    let seed = small_seed();
    let handle = emulator(config(), seed.clone()).await;
    let client = client(&handle);
    let start = users_round(&client, DeltaStart::FromNow).await;
    let (a, b) = (seed.users[0].id.clone(), seed.users[1].id.clone());
    ok(
        handle.update_user(&a, &change("displayName", json!("A1"))),
        "rename",
    );
    ok(handle.soft_delete_user(&b), "soft delete");
    // Every deltaLink now points back over the last change-log entries (docs/graph.md §3.5).
    handle.set_delta_replay(50);
    let first = users_round(&client, DeltaStart::Resume(start.delta_link)).await;
    let replayed = users_round(&client, DeltaStart::Resume(first.delta_link.clone())).await;
    for round in [&first, &replayed] {
        assert_eq!(
            upserted(round),
            BTreeMap::from([(a.clone(), Some("A1".to_owned()))])
        );
        assert_eq!(
            removed(round),
            BTreeMap::from([(b.clone(), RemovalReason::Changed)])
        );
    }
    handle.set_delta_replay(0);
    let quiet = users_round(&client, DeltaStart::Resume(replayed.delta_link)).await;
    let after = users_round(&client, DeltaStart::Resume(quiet.delta_link)).await;
    assert!(after.changes.is_empty(), "{:?}", after.changes);
    assert_no_violations(&handle);
}

#[tokio::test]
async fn expired_delta_tokens_ask_for_a_full_resync() {
    let handle = emulator(config(), GraphSeed::generate(10, 3, 0, 5)).await;
    let client = client(&handle);
    let round = users_round(&client, DeltaStart::Full).await;

    handle.expire_delta_tokens();
    let error = client
        .users_delta(DeltaStart::Resume(round.delta_link.clone()), &[])
        .await;
    match &error {
        Err(GraphError::DeltaExpired {
            status: 410,
            location: Some(location),
            ..
        }) => assert!(location.contains("/v1.0/users/delta"), "{location}"),
        other => panic!("{other:?}"),
    }
    assert!(error.err().is_some_and(|e| e.needs_resync()));

    // The resync: a full round again, then the other way of refusing.
    let round = users_round(&client, DeltaStart::Full).await;
    assert_eq!(upserted(&round).len(), 10);
    handle.set_delta_expiry(DeltaExpiry::SyncStateNotFound);
    handle.expire_delta_tokens();
    let error = client
        .users_delta(DeltaStart::Resume(round.delta_link), &[])
        .await;
    assert!(
        matches!(&error, Err(GraphError::DeltaExpired { status: 400, code, .. }) if code == "syncStateNotFound"),
        "{error:?}"
    );
    assert_no_violations(&handle);
}

#[tokio::test]
async fn a_delta_link_for_another_host_is_refused_before_any_call() {
    let handle = emulator(config(), GraphSeed::generate(5, 1, 0, 5)).await;
    let client = client(&handle);
    let error = client
        .users_delta(
            DeltaStart::Resume("https://evil.example/v1.0/users/delta?$deltatoken=x".to_owned()),
            &[],
        )
        .await;
    assert!(
        matches!(error, Err(GraphError::InvalidResponse(_))),
        "{error:?}"
    );
    assert_eq!(handle.requests_to("users_delta"), 0);
}
