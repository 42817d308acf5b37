//! Observability of a real `dirsync serve`, alone in its process so that every figure is its
//! own: the SCIM request a client sends is counted exactly once per route and per RPC, and its
//! request id reaches the provisioner's log lines.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::support::{DIRSYNC, free_port, wait_grpc, wait_http};

/// The value of one sample in Prometheus' text format, 0 when absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn http(port: u16, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_counted_once_and_its_id_reaches_the_provisioner_log() {
    let dir = std::env::temp_dir().join(format!(
        "dirsync-observed-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (grpc, scim, metrics) = (free_port(), free_port(), free_port());
    let mut child = Command::new(DIRSYNC)
        .arg("serve")
        .current_dir(&dir)
        .env_remove("DIRSYNC_CONFIG")
        .env_remove("RUST_LOG")
        .env("DIRSYNC__GRPC__LISTEN", format!("127.0.0.1:{grpc}"))
        .env("DIRSYNC__SCIM__LISTEN", format!("127.0.0.1:{scim}"))
        .env("DIRSYNC__METRICS__LISTEN", format!("127.0.0.1:{metrics}"))
        .env("DIRSYNC__LOG__FORMAT", "json")
        .env("DIRSYNC__LOG__LEVEL", "warn,dirsync_runtime::grpc=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_grpc(grpc).await;
    wait_http(scim).await;
    let created = Command::new(DIRSYNC)
        .args([
            "tenant",
            "create",
            "observed",
            "--server",
            &format!("127.0.0.1:{grpc}"),
        ])
        .env_remove("DIRSYNC_CONFIG")
        .output()
        .unwrap();
    let created = String::from_utf8_lossy(&created.stdout).into_owned();
    let token = created
        .lines()
        .find_map(|line| line.trim().strip_prefix("SCIM token:"))
        .unwrap()
        .trim()
        .to_owned();

    let body = r#"{"userName":"obs@example.com"}"#;
    let request_id = "observability-check-0001";
    let answer = http(
        scim,
        format!(
            "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/scim+json\r\nX-Request-Id: {request_id}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains(&format!("x-request-id: {request_id}")),
        "the caller's id is echoed: {answer}"
    );

    // Counted exactly once: this process served nothing else.
    let scraped = http(
        metrics,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
    )
    .await;
    let exposition = scraped
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default();
    // Everything a scraper reads is well formed, the scrape-time gauges included.
    assert_eq!(
        dirsync_runtime::metrics::exposition::check(exposition),
        Ok(()),
        "{exposition}"
    );
    assert!(exposition.contains("dirsync_queue_depth{"), "{exposition}");
    let counted = |series: &str| sample(exposition, series);
    assert_eq!(
        counted(
            r#"dirsync_scim_requests_total{method="POST",route="/scim/v2/Users",status="201"}"#
        ),
        1.0,
        "{scraped}"
    );
    assert_eq!(
        counted(
            r#"dirsync_grpc_requests_total{rpc="dirsync.provisioner.v1.UserService/CreateUser",code="Ok"}"#
        ),
        1.0,
        "{scraped}"
    );
    assert_eq!(
        counted(
            r#"dirsync_grpc_requests_total{rpc="dirsync.provisioner.v1.TenantService/CreateTenant",code="Ok"}"#
        ),
        1.0
    );

    // The provisioner's log line for the CreateUser RPC carries the gateway's request id.
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let carried = log.lines().any(|line| {
        line.contains(&format!("\"request_id\":\"{request_id}\""))
            && line.contains("dirsync.provisioner.v1.UserService/CreateUser")
    });
    assert!(carried, "no provisioner log line carries the id:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
