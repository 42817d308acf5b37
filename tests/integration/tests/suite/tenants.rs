//! Tenants and SCIM tokens over gRPC: tokens shown once and stored only as
//! hashes, rotation revokes, bad input is INVALID_ARGUMENT.

use dirsync_proto::provisioner::v1 as pb;
use sea_orm::{ConnectionTrait, Statement};
use tonic::Code;

type Client = pb::tenant_service_client::TenantServiceClient<tonic::transport::Channel>;

async fn create(client: &mut Client, name: &str) -> pb::CreateTenantResponse {
    client
        .create_tenant(pb::CreateTenantRequest {
            name: name.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn resolve(client: &mut Client, token: &str) -> Result<String, tonic::Status> {
    client
        .resolve_scim_token(pb::ResolveScimTokenRequest {
            token: token.to_owned(),
        })
        .await
        .map(|response| response.into_inner().tenant_id)
}

#[tokio::test]
async fn create_resolve_rotate_and_list() {
    let stack = dirsync_tests::Stack::start().await;
    let mut client = Client::new(stack.grpc.channel().await);

    let acme = create(&mut client, "acme").await;
    let tenant = acme.tenant.clone().unwrap();
    assert_eq!(tenant.name, "acme");
    assert_eq!(tenant.active_token_count, 1);
    assert!(acme.scim_token.starts_with("dsy_") && acme.scim_token.len() > 60);
    assert_eq!(
        resolve(&mut client, &acme.scim_token).await.unwrap(),
        tenant.tenant_id
    );

    // Lookup by id and by name.
    let by_name = client
        .get_tenant(pb::GetTenantRequest {
            tenant: "acme".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(by_name.tenant_id, tenant.tenant_id);

    // A second token leaves the first valid; rotation revokes both.
    let second = client
        .issue_scim_token(pb::IssueScimTokenRequest {
            tenant: tenant.tenant_id.clone(),
            revoke_existing: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resolve(&mut client, &acme.scim_token).await.unwrap(),
        tenant.tenant_id
    );
    assert_eq!(
        resolve(&mut client, &second.scim_token).await.unwrap(),
        tenant.tenant_id
    );
    let rotated = client
        .rotate_scim_token(pb::RotateScimTokenRequest {
            tenant: "acme".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.revoked_tokens, 2);
    assert_eq!(
        resolve(&mut client, &acme.scim_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        resolve(&mut client, &second.scim_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        resolve(&mut client, &rotated.scim_token).await.unwrap(),
        tenant.tenant_id
    );
    assert_eq!(
        resolve(&mut client, "dsy_made_up")
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    // Paging through the list.
    for index in 0..4 {
        create(&mut client, &format!("tenant-{index}")).await;
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_tenants(pb::ListTenantsRequest {
                page_size: 2,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 5);
        seen.extend(page.tenants.into_iter().map(|tenant| tenant.name));
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        ["acme", "tenant-0", "tenant-1", "tenant-2", "tenant-3"]
    );
    stack.stop().await;
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes() {
    let stack = dirsync_tests::Stack::start().await;
    let mut client = Client::new(stack.grpc.channel().await);
    let created = create(&mut client, "hashed").await;

    let db = dirsync_store::connect(stack.db.options()).await.unwrap();
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT token_hash FROM scim_tokens",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: String = rows[0].try_get_by_index(0).unwrap();
    assert_ne!(stored, created.scim_token);
    assert!(!stored.contains(&created.scim_token[4..20]));
    assert_eq!(stored.len(), 64, "a SHA-256 in hex");
    db.close().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn bad_tenant_requests_are_refused_precisely() {
    let stack = dirsync_tests::Stack::start().await;
    let mut client = Client::new(stack.grpc.channel().await);
    create(&mut client, "dup").await;

    let duplicate = client
        .create_tenant(pb::CreateTenantRequest {
            name: "dup".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    assert!(
        duplicate.message().contains("dup"),
        "{}",
        duplicate.message()
    );

    let empty = client
        .create_tenant(pb::CreateTenantRequest {
            name: "  ".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);

    let missing = client
        .get_tenant(pb::GetTenantRequest {
            tenant: "nope".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let rotate_missing = client
        .rotate_scim_token(pb::RotateScimTokenRequest {
            tenant: "nope".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(rotate_missing.code(), Code::NotFound);
    stack.stop().await;
}
