//! Reflection (v1 and v1alpha, the one grpcurl 1.8 speaks) lists every dirsync
//! service and can describe them, so grpcurl works without .proto files.

use tokio_stream::StreamExt;
use tonic_reflection::pb::v1;
use tonic_reflection::pb::v1alpha;

async fn list_v1(channel: tonic::transport::Channel) -> Vec<String> {
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    match response.message_response {
        Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) => list
            .service
            .into_iter()
            .map(|service| service.name)
            .collect(),
        other => panic!("unexpected reflection answer: {other:?}"),
    }
}

async fn list_and_describe_v1alpha(channel: tonic::transport::Channel) -> (Vec<String>, usize) {
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let requests = vec![
        v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
        },
        v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "dirsync.provisioner.v1.TenantService".to_owned(),
                ),
            ),
        },
    ];
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let names = match responses.next().await.unwrap().unwrap().message_response {
        Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) => {
            list.service
                .into_iter()
                .map(|service| service.name)
                .collect()
        }
        other => panic!("unexpected reflection answer: {other:?}"),
    };
    let files = match responses.next().await.unwrap().unwrap().message_response {
        Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(
            files,
        )) => files.file_descriptor_proto.len(),
        other => panic!("unexpected reflection answer: {other:?}"),
    };
    (names, files)
}

#[tokio::test]
async fn reflection_lists_every_dirsync_service_in_v1_and_v1alpha() {
    let stack = dirsync_tests::Stack::start().await;
    let channel = stack.grpc.channel().await;

    let v1_names = list_v1(channel.clone()).await;
    let (v1alpha_names, files) = list_and_describe_v1alpha(channel).await;
    for service in dirsync_proto::SERVICE_NAMES {
        assert!(
            v1_names.iter().any(|name| name == service),
            "v1 lacks {service}: {v1_names:?}"
        );
        assert!(
            v1alpha_names.iter().any(|name| name == service),
            "v1alpha lacks {service}"
        );
    }
    assert!(
        v1_names.iter().any(|name| name == "grpc.health.v1.Health"),
        "{v1_names:?}"
    );
    assert!(files >= 1, "describing TenantService returns its file");
    stack.stop().await;
}
