//! One writer at a time: a tenant in push mode takes Entra's SCIM writes and refuses the pull
//! sync's; in pull mode the reverse, while SCIM reads keep working.

use dirsync_proto::errors::{ErrorReason, read};
use dirsync_proto::provisioner::v1 as pb;
use dirsync_tests::Stack;
use serde_json::json;
use tonic::Code;

fn fields(user_name: &str) -> Option<pb::UserInput> {
    Some(pb::UserInput {
        source: Some(pb::user_input::Source::Fields(pb::UserFields {
            user_name: user_name.to_owned(),
            ..Default::default()
        })),
    })
}

#[tokio::test]
async fn each_mode_takes_writes_from_its_own_writer_only() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("modal").await;
    let channel = stack.grpc.channel().await;
    let mut tenants = pb::tenant_service_client::TenantServiceClient::new(channel.clone());
    let mut users = pb::user_service_client::UserServiceClient::new(channel);
    let create = |user_name: &str, source: pb::WriteSource| pb::CreateUserRequest {
        tenant: "modal".to_owned(),
        user: fields(user_name),
        source: source as i32,
    };

    // Push (the default): SCIM writes, the pull sync is refused.
    let tenant = tenants
        .get_tenant(pb::GetTenantRequest {
            tenant: "modal".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(tenant.mode, pb::TenantMode::Push as i32);
    let reply = scim
        .post("/Users", &json!({"userName": "ada@contoso.example"}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    let refused = users
        .create_user(create("bob@contoso.example", pb::WriteSource::Pull))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(read(&refused).reason, Some(ErrorReason::WrongMode));
    assert!(
        refused.message().contains("push mode"),
        "{}",
        refused.message()
    );

    // Pull: the pull sync writes; SCIM writes are refused in SCIM's terms, reads still work.
    tenants
        .set_tenant_mode(pb::SetTenantModeRequest {
            tenant: "modal".to_owned(),
            mode: pb::TenantMode::Pull as i32,
        })
        .await
        .unwrap();
    users
        .create_user(create("bob@contoso.example", pb::WriteSource::Pull))
        .await
        .unwrap();
    let reply = scim
        .post("/Users", &json!({"userName": "carol@contoso.example"}))
        .await;
    assert_eq!(reply.status, 403, "{}", reply.raw);
    assert_eq!(
        reply.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert!(
        reply.body["detail"].as_str().unwrap().contains("pull mode"),
        "{}",
        reply.raw
    );
    let listed = scim
        .get("/Users?filter=userName%20eq%20%22bob@contoso.example%22")
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["totalResults"], 1, "{}", listed.raw);
    // A platform tool (no source named) may write in either mode.
    users
        .create_user(create("dave@contoso.example", pb::WriteSource::Unspecified))
        .await
        .unwrap();

    // Back to push.
    tenants
        .set_tenant_mode(pb::SetTenantModeRequest {
            tenant: "modal".to_owned(),
            mode: pb::TenantMode::Push as i32,
        })
        .await
        .unwrap();
    let reply = scim
        .post("/Users", &json!({"userName": "carol@contoso.example"}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    let unknown = tenants
        .set_tenant_mode(pb::SetTenantModeRequest {
            tenant: "modal".to_owned(),
            mode: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    stack.stop().await;
}
