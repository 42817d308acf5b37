//! The directory-reader's connection and read RPCs over gRPC against the Graph emulator:
//! SetEntraConnection refusals naming each part (docs/graph.md §1.3, §2.6), the stored
//! connection and settings, StreamUsers and StreamGroups with and without a group scope,
//! ListGroupMembers direct and transitive in pages, and StreamChanges with its cursor
//! (docs/graph.md §3), including an expired one.

use std::collections::BTreeSet;

use dirsync_emulators::graph::{GraphEmulatorConfig, GraphSeed};
use dirsync_proto::common::v1::{
    MembershipDepth, ResourceKind, SecretReference, secret_reference::Source,
};
use dirsync_proto::directory::v1 as pb;
use dirsync_proto::errors::ErrorReason;
use dirsync_tests::pull::{PullStack, connection};
use reqwest::Method;
use serde_json::json;
use tokio_stream::StreamExt;
use tonic::Code;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../libs/graph/tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn refusal(status: &tonic::Status) -> (Code, Option<ErrorReason>, Vec<String>, Option<String>) {
    let read = dirsync_proto::errors::read(status);
    (
        status.code(),
        read.reason,
        read.violations
            .into_iter()
            .map(|(field, _)| field)
            .collect(),
        read.metadata.get("part").cloned(),
    )
}

#[tokio::test]
async fn pull_connection_refusals_name_each_part() {
    let certificate_pem = format!(
        "{}{}",
        fixture("registered-cert.pem"),
        fixture("registered-key.pem")
    );
    let graph_config = GraphEmulatorConfig::for_tests()
        .with_certificate_pem(fixture("registered-cert.pem").as_bytes())
        .unwrap();
    let stack = PullStack::start_with(GraphSeed::generate(5, 1, 0, 30), graph_config, |_| {}).await;
    let mut reader = stack.reader().await;
    let good = connection(&stack.graph, &stack.secret_file);
    let set = |connection: pb::EntraConnection| pb::SetEntraConnectionRequest {
        tenant: "synced".to_owned(),
        connection: Some(connection),
    };

    let wrong_secret_file =
        std::env::temp_dir().join(format!("dirsync-wrong-{}", std::process::id()));
    std::fs::write(&wrong_secret_file, "not-the-secret").unwrap();
    let cases: Vec<(pb::EntraConnection, &str, &str)> = vec![
        (
            pb::EntraConnection {
                entra_tenant_id: "11111111-2222-3333-4444-555555555555".to_owned(),
                ..good.clone()
            },
            "connection.entra_tenant_id",
            "tenant",
        ),
        (
            pb::EntraConnection {
                client_id: "11111111-2222-3333-4444-555555555555".to_owned(),
                ..good.clone()
            },
            "connection.client_id",
            "client",
        ),
        (
            pb::EntraConnection {
                credential: Some(pb::entra_connection::Credential::ClientSecret(
                    SecretReference {
                        source: Some(Source::File(wrong_secret_file.display().to_string())),
                    },
                )),
                ..good.clone()
            },
            "connection.client_secret",
            "secret",
        ),
    ];
    for (connection, field, part) in cases {
        let status = reader
            .set_entra_connection(set(connection))
            .await
            .unwrap_err();
        let (code, reason, fields, named) = refusal(&status);
        assert_eq!(code, Code::InvalidArgument, "{status:?}");
        assert_eq!(reason, Some(ErrorReason::InvalidValue));
        assert_eq!(fields, vec![field.to_owned()], "{status:?}");
        assert_eq!(named.as_deref(), Some(part), "{status:?}");
        assert!(!status.message().contains("not-the-secret"));
        assert!(!status.message().contains("emulator-client-secret"));
    }

    // A certificate Entra does not know, then one it does.
    let unregistered =
        std::env::temp_dir().join(format!("dirsync-unreg-{}.pem", std::process::id()));
    std::fs::write(
        &unregistered,
        format!(
            "{}{}",
            fixture("unregistered-cert.pem"),
            fixture("unregistered-key.pem")
        ),
    )
    .unwrap();
    let with_certificate = |path: &std::path::Path| pb::EntraConnection {
        credential: Some(pb::entra_connection::Credential::Certificate(
            SecretReference {
                source: Some(Source::File(path.display().to_string())),
            },
        )),
        ..good.clone()
    };
    let status = reader
        .set_entra_connection(set(with_certificate(&unregistered)))
        .await
        .unwrap_err();
    let (code, _, fields, part) = refusal(&status);
    assert_eq!(code, Code::InvalidArgument, "{status:?}");
    assert_eq!(fields, vec!["connection.certificate".to_owned()]);
    assert_eq!(part.as_deref(), Some("certificate"));
    let registered = std::env::temp_dir().join(format!("dirsync-reg-{}.pem", std::process::id()));
    std::fs::write(&registered, certificate_pem).unwrap();
    let set_with_certificate = reader
        .set_entra_connection(set(with_certificate(&registered)))
        .await
        .unwrap()
        .into_inner();
    assert!(!set_with_certificate.organization.is_empty());

    // Missing admin consent: the token works, the Graph read is refused.
    stack.graph.set_app_roles(["User.Read.All"]);
    let status = reader
        .set_entra_connection(set(good.clone()))
        .await
        .unwrap_err();
    let (code, _, fields, part) = refusal(&status);
    assert_eq!(code, Code::InvalidArgument, "{status:?}");
    assert_eq!(fields.len(), 1);
    assert_eq!(part.as_deref(), Some("permission"), "{status:?}");
    // The stored connection checks the same way, as a failed precondition.
    let status = reader
        .check_entra_connection(pb::CheckEntraConnectionRequest {
            tenant: stack.tenant(),
        })
        .await
        .unwrap_err();
    let (code, reason, _, part) = refusal(&status);
    assert_eq!(
        (code, reason),
        (Code::FailedPrecondition, Some(ErrorReason::EntraRefused))
    );
    assert_eq!(part.as_deref(), Some("permission"));
    stack.graph.set_app_roles([
        "User.Read.All",
        "GroupMember.Read.All",
        "Organization.Read.All",
    ]);

    // Graph not answering at all.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let status = reader
        .set_entra_connection(set(pb::EntraConnection {
            login_url: nowhere.clone(),
            graph_url: nowhere,
            ..good.clone()
        }))
        .await
        .unwrap_err();
    let (code, reason, _, _) = refusal(&status);
    assert_eq!(
        (code, reason),
        (Code::Unavailable, Some(ErrorReason::EntraUnavailable)),
        "{status:?}"
    );

    // Malformed input never reaches Graph.
    let status = reader
        .set_entra_connection(set(pb::EntraConnection {
            credential: None,
            ..good.clone()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&status).2,
        vec!["connection.client_secret".to_owned()]
    );

    // The good connection, stored by reference and read back with default settings.
    reader
        .set_entra_connection(set(good.clone()))
        .await
        .unwrap();
    let stored = reader
        .get_entra_connection(pb::GetEntraConnectionRequest {
            tenant: "synced".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.connection, Some(good));
    let pull = stored.pull.unwrap();
    assert_eq!(pull.username_attribute, "userPrincipalName");
    assert_eq!(pull.deletion_guard_percent, 20);
    let checked = reader
        .check_entra_connection(pb::CheckEntraConnectionRequest {
            tenant: stack.tenant(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!checked.organization.is_empty());
    let status = reader
        .set_pull_settings(pb::SetPullSettingsRequest {
            tenant: stack.tenant(),
            settings: Some(pb::PullSettings {
                username_attribute: "favouriteColour".to_owned(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&status).2,
        vec!["settings.username_attribute".to_owned()]
    );
    let status = reader
        .get_entra_connection(pb::GetEntraConnectionRequest {
            tenant: "no-such-tenant".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(refusal(&status).1, Some(ErrorReason::TenantNotFound));

    for file in [&wrong_secret_file, &unregistered, &registered] {
        let _ = std::fs::remove_file(file);
    }
    stack.stop().await;
}

async fn collect<T>(stream: tonic::Streaming<T>) -> Vec<T> {
    stream.map(|item| item.unwrap()).collect().await
}

#[tokio::test]
async fn pull_streams_and_group_members_over_grpc() {
    let seed = GraphSeed::generate(30, 6, 2, 31);
    let transitive = seed.transitive_user_members();
    // The group with the most transitive users, and one of its nested groups.
    let (scoped, scoped_users) = transitive
        .iter()
        .max_by_key(|(_, users)| users.len())
        .map(|(id, users)| (id.clone(), users.clone()))
        .unwrap();
    let scoped_group = seed.groups.iter().find(|g| g.id == scoped).unwrap().clone();
    let stack = PullStack::start(seed.clone()).await;
    let mut reader = stack.reader().await;

    let users = collect(
        reader
            .stream_users(pb::StreamUsersRequest {
                tenant: stack.tenant(),
                group_scope: vec![],
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(users.len(), 30);
    let first = users[0].user.clone().unwrap();
    let seeded = seed.users.iter().find(|u| u.id == first.id).unwrap();
    assert_eq!(first.user_principal_name, seeded.user_principal_name);
    assert_eq!(first.account_enabled, seeded.account_enabled);
    assert!(!first.mail_nickname.is_empty());

    let scoped_stream = collect(
        reader
            .stream_users(pb::StreamUsersRequest {
                tenant: stack.tenant(),
                group_scope: vec![scoped_group.display_name.to_uppercase()],
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    let ids: BTreeSet<String> = scoped_stream
        .into_iter()
        .map(|m| m.user.unwrap().id)
        .collect();
    assert_eq!(ids, scoped_users);

    let groups = collect(
        reader
            .stream_groups(pb::StreamGroupsRequest {
                tenant: stack.tenant(),
                group_scope: vec![],
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(groups.len(), 6);
    let one = collect(
        reader
            .stream_groups(pb::StreamGroupsRequest {
                tenant: stack.tenant(),
                group_scope: vec![scoped.clone()],
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(one.len(), 1);
    assert_eq!(
        one[0].group.as_ref().unwrap().display_name,
        scoped_group.display_name
    );
    let status = reader
        .stream_groups(pb::StreamGroupsRequest {
            tenant: stack.tenant(),
            group_scope: vec!["Nobody's Group".to_owned()],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Members in pages of 4: direct (users and nested groups), then transitive users.
    for (depth, wanted) in [
        (
            MembershipDepth::Direct,
            scoped_group
                .members
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>(),
        ),
        (MembershipDepth::Transitive, {
            let mut all = scoped_users.clone();
            // Transitive members include the nested groups on the way.
            let mut stack_ids = vec![scoped.clone()];
            while let Some(id) = stack_ids.pop() {
                for member in &seed.groups.iter().find(|g| g.id == id).unwrap().members {
                    if seed.groups.iter().any(|g| g.id == *member) && all.insert(member.clone()) {
                        stack_ids.push(member.clone());
                    }
                }
            }
            all
        }),
    ] {
        let mut seen = BTreeSet::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = reader
                .list_group_members(pb::ListGroupMembersRequest {
                    tenant: stack.tenant(),
                    group: scoped_group.display_name.clone(),
                    depth: depth as i32,
                    page_size: 4,
                    page_token: token.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            pages += 1;
            assert!(page.members.len() <= 4);
            for member in page.members {
                let is_group = seed.groups.iter().any(|g| g.id == member.id);
                let kind = if is_group {
                    ResourceKind::Group
                } else {
                    ResourceKind::User
                };
                assert_eq!(member.kind, kind as i32);
                assert!(seen.insert(member.id));
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(seen, wanted, "{depth:?}");
        assert_eq!(pages, wanted.len().div_ceil(4).max(1));
    }
    stack.stop().await;
}

#[tokio::test]
async fn pull_stream_changes_with_a_cursor_and_an_expired_one() {
    use pb::stream_changes_response::Change;
    let seed = GraphSeed::generate(12, 3, 0, 32);
    let stack = PullStack::start(seed.clone()).await;
    let mut reader = stack.reader().await;
    let round = |cursor: String| pb::StreamChangesRequest {
        tenant: stack.tenant(),
        cursor,
        group_scope: vec![],
    };

    let full = collect(
        reader
            .stream_changes(round(String::new()))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    let upserts = full
        .iter()
        .filter(|m| matches!(m.change, Some(Change::UserUpserted(_))))
        .count();
    assert_eq!(upserts, 12);
    let Some(Change::NextCursor(cursor)) = full.last().and_then(|m| m.change.clone()) else {
        panic!("no cursor: {full:?}");
    };
    // The cursor is base64url (no padding) of {"users": deltaLink, "groups": deltaLink}.
    use base64::Engine as _;
    let decoded: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&cursor)
            .unwrap(),
    )
    .unwrap();
    assert!(decoded["users"].as_str().unwrap().contains("/users/"));
    assert!(decoded["groups"].as_str().unwrap().contains("/groups/"));

    let group = seed.groups[0].id.clone();
    let outsider = seed
        .users
        .iter()
        .find(|u| !seed.groups[0].members.contains(&u.id))
        .unwrap()
        .id
        .clone();
    let soft = seed.users[11].id.clone();
    stack
        .admin(
            Method::POST,
            &format!("/groups/{group}/members"),
            Some(json!({"id": outsider})),
        )
        .await;
    stack
        .admin(Method::POST, &format!("/users/{soft}/soft-delete"), None)
        .await;
    let next = collect(
        reader
            .stream_changes(round(cursor))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert!(next.iter().any(|m| matches!(
        &m.change,
        Some(Change::Membership(c)) if c.group_id == group && c.member_id == outsider && !c.removed
            && c.member_kind == ResourceKind::User as i32
    )), "{next:?}");
    assert!(next.iter().any(|m| matches!(
        &m.change,
        Some(Change::UserRemoved(r)) if r.id == soft && r.reason == pb::RemovalReason::Changed as i32
    )), "{next:?}");
    let Some(Change::NextCursor(cursor)) = next.last().and_then(|m| m.change.clone()) else {
        panic!("no cursor: {next:?}");
    };

    stack.graph.expire_delta_tokens();
    let expired = collect(
        reader
            .stream_changes(round(cursor))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].change, Some(Change::ResyncRequired(true)));

    let status = reader
        .stream_changes(round("bm90IGEgY3Vyc29y".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    stack.stop().await;
}
