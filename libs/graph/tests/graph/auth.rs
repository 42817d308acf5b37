//! Tokens: secret and certificate, caching and renewal, and every refused part named.

use std::time::Duration;

use dirsync_emulators::graph::GraphEmulatorConfig;
use dirsync_graph::{AuthPart, ClientCredential, Cloud, Credentials, GraphError, Secret};

use crate::support::{
    CERT, KEY, OTHER_CERT, OTHER_KEY, assert_no_violations, build, certificate, client, cloud,
    config, emulator, ok, options, secret_credentials, setup, small_seed,
};

#[tokio::test]
async fn secret_connection_check_names_the_tenant() {
    let (handle, client) = setup(small_seed()).await;
    let organization = ok(client.check_connection().await, "connection check");
    assert_eq!(organization.id, handle.config().tenant_id);
    assert!(
        organization
            .verified_domains
            .iter()
            .any(|d| d.name == handle.config().tenant_domain && d.is_default)
    );
    assert_eq!(handle.requests_to("token"), 1);
    assert_eq!(handle.requests_to("organization"), 1);
}

#[tokio::test]
async fn certificate_credential_signs_an_assertion_the_emulator_verifies() {
    let handle = emulator(config(), small_seed()).await;
    let credentials = Credentials {
        credential: ClientCredential::Certificate(certificate(CERT, KEY)),
        ..secret_credentials(handle.config())
    };
    let client = build(credentials, cloud(&handle), options());
    ok(client.check_connection().await, "connection check");
    let users = ok(client.users(&[]).await, "users");
    assert_eq!(users.len(), 30);
}

#[tokio::test]
async fn one_token_serves_many_calls_and_concurrent_callers_share_one_request() {
    let (handle, client) = setup(small_seed()).await;
    let calls = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.users(&["id"]).await })
    });
    for call in calls {
        let users = ok(ok(call.await, "task"), "users");
        assert_eq!(users.len(), 30);
    }
    ok(client.groups(&[]).await, "groups");
    assert_eq!(handle.requests_to("token"), 1);
    assert_eq!(
        client
            .call_counts()
            .get(&("token".to_owned(), "200".to_owned())),
        Some(&1)
    );
}

#[tokio::test]
async fn a_rejected_token_is_renewed_once() {
    let (handle, client) = setup(small_seed()).await;
    ok(client.users(&[]).await, "users");
    handle.expire_access_tokens();
    ok(client.users(&[]).await, "users after expiry");
    assert_eq!(handle.requests_to("token"), 2);
    let users = handle
        .request_counts()
        .get("users")
        .cloned()
        .unwrap_or_default();
    assert_eq!(users.get(&401), Some(&1), "{users:?}");
    assert_eq!(users.get(&200), Some(&2), "{users:?}");
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires() {
    // A one-second token is renewed half-way: the second call, after it ran out, must not
    // have been refused first.
    let config = GraphEmulatorConfig {
        token_lifetime: Duration::from_secs(1),
        ..config()
    };
    let handle = emulator(config, small_seed()).await;
    let client = client(&handle);
    ok(client.organization().await, "first read");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ok(client.organization().await, "second read");
    assert_eq!(handle.requests_to("token"), 2);
    let reads = handle
        .request_counts()
        .get("organization")
        .cloned()
        .unwrap_or_default();
    assert_eq!(reads.get(&401), None, "{reads:?}");
}

async fn refused(credentials: Credentials, cloud: Cloud) -> GraphError {
    let client = build(credentials, cloud, options());
    match client.check_connection().await {
        Ok(organization) => panic!("accepted: {organization:?}"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn each_refused_part_is_named() {
    let handle = emulator(config(), small_seed()).await;
    let good = secret_credentials(handle.config());

    let error = refused(
        Credentials {
            tenant_id: "11111111-2222-4333-8444-555555555555".to_owned(),
            ..good.clone()
        },
        cloud(&handle),
    )
    .await;
    assert_eq!(error.auth_part(), Some(AuthPart::Tenant), "{error}");
    assert!(error.to_string().contains("AADSTS90002"), "{error}");

    let error = refused(
        Credentials {
            client_id: "99999999-2222-4333-8444-555555555555".to_owned(),
            ..good.clone()
        },
        cloud(&handle),
    )
    .await;
    assert_eq!(error.auth_part(), Some(AuthPart::Application), "{error}");

    let wrong = "not-the-secret-d41d8cd9";
    let error = refused(
        Credentials {
            credential: ClientCredential::Secret(Secret::new(wrong)),
            ..good.clone()
        },
        cloud(&handle),
    )
    .await;
    assert_eq!(error.auth_part(), Some(AuthPart::ClientSecret), "{error}");
    assert!(!error.to_string().contains(wrong));
    assert!(!format!("{error:?}").contains(wrong));

    let error = refused(
        Credentials {
            credential: ClientCredential::Certificate(certificate(OTHER_CERT, OTHER_KEY)),
            ..good.clone()
        },
        cloud(&handle),
    )
    .await;
    assert_eq!(error.auth_part(), Some(AuthPart::Certificate), "{error}");
    assert!(error.to_string().contains("AADSTS700027"), "{error}");

    // A Graph URL the token endpoint does not know gives a scope it refuses.
    let error = refused(
        good.clone(),
        Cloud::Custom {
            login_url: handle.base_url(),
            graph_url: "https://graph.example.invalid".to_owned(),
        },
    )
    .await;
    assert_eq!(error.auth_part(), Some(AuthPart::Scope), "{error}");

    // The token works, the permission is missing: Graph answers 403.
    handle.set_app_roles(["User.Read.All", "GroupMember.Read.All"]);
    let error = refused(good.clone(), cloud(&handle)).await;
    assert_eq!(error.auth_part(), Some(AuthPart::Permission), "{error}");
    assert!(
        error.to_string().contains("Authorization_RequestDenied"),
        "{error}"
    );
    let client = build(good, cloud(&handle), options());
    handle.set_app_roles(["GroupMember.Read.All"]);
    let error = client.users(&[]).await.err();
    assert_eq!(
        error.as_ref().and_then(GraphError::auth_part),
        Some(AuthPart::Permission),
        "{error:?}"
    );
    assert_no_violations(&handle);
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let handle = emulator(config(), small_seed()).await;
    let client = client(&handle);
    let secret = &handle.config().client_secret;
    ok(client.users(&["id"]).await, "users");
    assert!(!format!("{client:?}").contains(secret.as_str()));
    assert!(!format!("{:?}", secret_credentials(handle.config())).contains(secret.as_str()));
    let certificate = certificate(CERT, KEY);
    assert!(!format!("{certificate:?}").contains("PRIVATE"));
}
