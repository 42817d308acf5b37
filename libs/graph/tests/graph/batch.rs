//! Member reads of many groups through `$batch`: fewer calls, inner nextLinks followed,
//! unknown groups reported, throttled items retried.

use std::collections::BTreeSet;

use dirsync_emulators::graph::{GraphSeed, Throttle};
use dirsync_graph::{ClientOptions, MemberKind, Membership};

use crate::support::{
    assert_no_violations, build, cloud, config, emulator, ok, options, secret_credentials,
};

#[tokio::test]
async fn members_of_many_groups_in_few_calls() {
    // 25 groups: two batches of at most 20, and pages of 4 members so most groups need
    // their inner nextLinks followed.
    let seed = GraphSeed::generate(60, 25, 2, 9);
    let handle = emulator(config(), seed.clone()).await;
    let client = build(
        secret_credentials(handle.config()),
        cloud(&handle),
        ClientOptions {
            page_size: 4,
            max_concurrency: 2,
            ..options()
        },
    );
    let mut ids: Vec<String> = seed.groups.iter().map(|g| g.id.clone()).collect();
    let unknown = "00000000-0000-4000-8000-00000000dead".to_owned();
    ids.push(unknown.clone());
    // One throttled item on the way: it is re-batched after its Retry-After.
    handle.set_throttle(Throttle {
        next: 1,
        retry_after_secs: 0.2,
        ..Throttle::default()
    });

    let direct = ok(
        client
            .members_of_groups(&ids, Membership::Direct, &[])
            .await,
        "direct members",
    );
    assert_eq!(direct.not_found, vec![unknown.clone()]);
    assert_eq!(direct.members.len(), seed.groups.len());
    for group in &seed.groups {
        let found: BTreeSet<(String, MemberKind)> = direct
            .members
            .get(&group.id)
            .map(|members| {
                members
                    .iter()
                    .map(|m| (m.id.clone(), m.kind.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let expected: BTreeSet<(String, MemberKind)> = group
            .members
            .iter()
            .map(|m| {
                let kind = if seed.groups.iter().any(|g| g.id == *m) {
                    MemberKind::Group
                } else {
                    MemberKind::User
                };
                (m.clone(), kind)
            })
            .collect();
        assert_eq!(found, expected, "group {}", group.display_name);
    }
    let member_pages = handle.requests_to("group_members");
    let batches = handle.requests_to("batch");
    assert!(member_pages > 26, "inner pages followed: {member_pages}");
    assert!(
        batches * 20 >= member_pages && batches < member_pages / 4,
        "{batches} batches for {member_pages} member pages"
    );
    let throttled = handle
        .request_counts()
        .get("group_members")
        .and_then(|by_status| by_status.get(&429).copied());
    assert_eq!(throttled, Some(1));

    let transitive = ok(
        client
            .members_of_groups(&ids[..ids.len() - 1], Membership::Transitive, &["id"])
            .await,
        "transitive members",
    );
    for (group, users) in seed.transitive_user_members() {
        let found: BTreeSet<String> = transitive
            .members
            .get(&group)
            .map(|members| {
                members
                    .iter()
                    .filter(|m| m.kind == MemberKind::User)
                    .map(|m| m.id.clone())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(found, users, "group {group}");
    }
    assert_no_violations(&handle);
}
