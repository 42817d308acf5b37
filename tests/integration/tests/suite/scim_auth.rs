//! Bearer tokens per tenant: 401 SCIM errors with WWW-Authenticate, rotation,
//! and tenants that cannot see each other's resources.

use dirsync_proto::provisioner::v1 as pb;
use dirsync_tests::Stack;
use dirsync_tests::http::ScimClient;
use serde_json::json;

fn user(name: &str) -> serde_json::Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "active": true})
}

#[tokio::test]
async fn requests_without_a_valid_token_get_a_scim_401() {
    let stack = Stack::start().await;
    let anonymous = ScimClient::new(stack.scim_base(), None);
    for path in ["/Users", "/Groups", "/Users/abc"] {
        let reply = anonymous.get(path).await;
        assert_eq!(reply.status, 401, "{path}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer realm=\"dirsync\"")
        );
        assert_eq!(reply.header("content-type"), Some("application/scim+json"));
        assert_eq!(reply.body["status"], "401");
        assert_eq!(
            reply.body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
    }
    let forged = anonymous.with_token(Some("dsy_0000".to_owned()));
    assert_eq!(forged.get("/Users").await.status, 401);
    // Discovery needs no token.
    assert_eq!(anonymous.get("/ServiceProviderConfig").await.status, 200);
    assert_eq!(anonymous.get("/Schemas").await.status, 200);
    assert_eq!(anonymous.get("/ResourceTypes").await.status, 200);
    stack.stop().await;
}

#[tokio::test]
async fn a_rotated_token_stops_working() {
    // A long cache: only the provisioner's revocation notice can make the gateway forget.
    let stack = Stack::start_with(|config| {
        config.scim.token_cache_ttl = std::time::Duration::from_secs(3600);
    })
    .await;
    let (tenant_id, scim) = stack.tenant("rotating").await;
    assert_eq!(scim.get("/Users").await.status, 200);
    let rotated = pb::tenant_service_client::TenantServiceClient::new(stack.grpc.channel().await)
        .rotate_scim_token(pb::RotateScimTokenRequest { tenant: tenant_id })
        .await
        .unwrap()
        .into_inner();
    // Within 1 s of the rotation, on the process that rotated it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let status = scim.get("/Users").await.status;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated token still works after 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        scim.with_token(Some(rotated.scim_token))
            .get("/Users")
            .await
            .status,
        200
    );
    stack.stop().await;
}

#[tokio::test]
async fn tenants_are_isolated() {
    let stack = Stack::start().await;
    let (_, alpha) = stack.tenant("alpha").await;
    let (_, beta) = stack.tenant("beta").await;

    let created = alpha.post("/Users", &user("shared@example.com")).await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let group = alpha
        .post("/Groups", &json!({"displayName": "Sales"}))
        .await;
    let group_id = group.body["id"].as_str().unwrap().to_owned();

    // Another tenant's ids are 404, for reads and writes alike.
    assert_eq!(beta.get(&format!("/Users/{id}")).await.status, 404);
    assert_eq!(beta.delete(&format!("/Users/{id}")).await.status, 404);
    assert_eq!(
        beta.patch(
            &format!("/Users/{id}"),
            &json!({"Operations": [{"op": "replace", "path": "active", "value": false}]})
        )
        .await
        .status,
        404
    );
    assert_eq!(beta.get(&format!("/Groups/{group_id}")).await.status, 404);
    // A group of one tenant cannot take another tenant's user.
    let (_, beta_group) = {
        let created = beta.post("/Groups", &json!({"displayName": "Sales"})).await;
        assert_eq!(
            created.status, 201,
            "group names are unique per tenant only"
        );
        (
            created.status,
            created.body["id"].as_str().unwrap().to_owned(),
        )
    };
    let cross = beta
        .patch(
            &format!("/Groups/{beta_group}"),
            &json!({"Operations": [{"op": "Add", "path": "members", "value": [{"value": id}]}]}),
        )
        .await;
    assert_eq!(cross.status, 400);

    // Filters see only the caller's tenant; the same userName is free in beta.
    let found = beta
        .get("/Users?filter=userName%20eq%20%22shared@example.com%22")
        .await;
    assert_eq!(found.status, 200);
    assert_eq!(found.body["totalResults"], 0);
    assert_eq!(
        beta.post("/Users", &user("shared@example.com"))
            .await
            .status,
        201
    );
    assert_eq!(alpha.get(&format!("/Users/{id}")).await.status, 200);
    stack.stop().await;
}
