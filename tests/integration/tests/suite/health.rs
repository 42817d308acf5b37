//! Each service started on its own answers health SERVING for each of its
//! gRPC services, and the all-in-one server for all of them.

use dirsync_store::testing::TestDatabase;
use dirsync_tests::{Running, ephemeral_listener, spawn, test_config};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn assert_serving(server: &Running, services: &[&str]) {
    let mut health = HealthClient::new(server.channel().await);
    for service in services {
        let status = health
            .check(HealthCheckRequest {
                service: (*service).to_owned(),
            })
            .await
            .unwrap_or_else(|error| panic!("health check of {service}: {error}"))
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "dirsync.nope.v1.Nothing".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn provisioner_alone_is_serving() {
    let db = TestDatabase::new();
    let config = test_config(&db);
    let server = spawn(
        ephemeral_listener().await,
        move |listener, stop| async move {
            dirsync_provisioner::run(&config, listener, async {
                let _ = stop.await;
            })
            .await
        },
    );
    assert_serving(
        &server,
        &[
            "",
            "dirsync.provisioner.v1.TenantService",
            "dirsync.provisioner.v1.UserService",
            "dirsync.provisioner.v1.GroupService",
            "dirsync.provisioner.v1.WorkService",
            "dirsync.provisioner.v1.Maas360ReadService",
        ],
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn directory_reader_alone_is_serving() {
    let db = TestDatabase::new();
    let config = test_config(&db);
    let server = spawn(
        ephemeral_listener().await,
        move |listener, stop| async move {
            dirsync_directory_reader::run(&config, listener, async {
                let _ = stop.await;
            })
            .await
        },
    );
    assert_serving(
        &server,
        &["", "dirsync.directory.v1.DirectoryReaderService"],
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn mapping_alone_is_serving() {
    let db = TestDatabase::new();
    let config = test_config(&db);
    let server = spawn(
        ephemeral_listener().await,
        move |listener, stop| async move {
            dirsync_mapping::run(&config, listener, async {
                let _ = stop.await;
            })
            .await
        },
    );
    assert_serving(&server, &["", "dirsync.mapping.v1.MappingService"]).await;
    server.stop().await;
}

#[tokio::test]
async fn all_in_one_is_serving_and_the_gateway_answers() {
    let stack = dirsync_tests::Stack::start().await;
    assert_serving(&stack.grpc, dirsync_proto::SERVICE_NAMES).await;
    let reply = dirsync_tests::http::ScimClient::new(stack.scim_base(), None)
        .get("/ServiceProviderConfig")
        .await;
    assert_eq!(reply.status, 200);
    stack.stop().await;
}

#[tokio::test]
async fn every_service_refuses_a_request_without_a_tenant_naming_the_field() {
    use dirsync_proto::directory::v1 as directory;
    use dirsync_proto::mapping::v1 as mapping;
    let stack = dirsync_tests::Stack::start().await;
    let channel = stack.grpc.channel().await;
    let error = mapping::mapping_service_client::MappingServiceClient::new(channel.clone())
        .plan_migration(mapping::PlanMigrationRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    let details = dirsync_proto::errors::read(&error);
    assert_eq!(details.violations[0].0, "tenant", "{error:?}");
    let error =
        directory::directory_reader_service_client::DirectoryReaderServiceClient::new(channel)
            .get_sync_state(directory::GetSyncStateRequest::default())
            .await
            .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    let details = dirsync_proto::errors::read(&error);
    assert_eq!(details.violations[0].0, "tenant", "{error:?}");
    stack.stop().await;
}
