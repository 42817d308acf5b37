//! Metrics and request ids, in-process: every SCIM request gets a fresh id (or keeps the
//! caller's), and the series exist per route and per RPC. Exact counts, and the id reaching the
//! provisioner's log, are checked on a process of its own (services/dirsync/tests/process/
//! observability.rs): here other tests share the registry.

use dirsync_tests::Stack;
use serde_json::json;

#[tokio::test]
async fn requests_get_ids_and_are_counted_per_route_and_rpc() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("observed").await;
    let created = scim
        .post("/Users", &json!({"userName": "obs@example.com"}))
        .await;
    assert_eq!(created.status, 201);
    let id = created.header("x-request-id").unwrap().to_owned();
    assert_eq!(id.len(), 32, "a fresh id: {id}");
    let again = scim
        .get("/Users?filter=userName+eq+%22obs@example.com%22")
        .await;
    assert_ne!(
        again.header("x-request-id"),
        Some(id.as_str()),
        "one id per request"
    );

    let text = dirsync_runtime::metrics::registry().render().await;
    assert!(
        text.contains(
            r#"dirsync_scim_requests_total{method="POST",route="/scim/v2/Users",status="201"}"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"dirsync_scim_request_duration_seconds_bucket{method="GET",route="/scim/v2/Users",status="200",le="+Inf"}"#));
    assert!(text.contains(r#"dirsync_grpc_requests_total{rpc="dirsync.provisioner.v1.UserService/CreateUser",code="Ok"}"#));
    assert!(text.contains(r#"dirsync_grpc_requests_total{rpc="dirsync.provisioner.v1.TenantService/ResolveScimToken",code="Ok"}"#));
    assert!(text.contains("# TYPE dirsync_queue_depth gauge"));
    stack.stop().await;
}
