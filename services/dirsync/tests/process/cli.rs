//! The `dirsync` binary as people use it: start-up errors, `serve`, and the
//! admin commands against the running server, over real sockets.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DIRSYNC: &str = env!("CARGO_BIN_EXE_dirsync");

fn dirsync(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(DIRSYNC);
    command.args(args).env_remove("DIRSYNC_CONFIG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

#[test]
fn an_unknown_config_key_stops_start_up_with_exit_code_2() {
    let output = dirsync(&["serve"], &[("DIRSYNC__GRPC__LISTN", "127.0.0.1:1")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("grpc.listn"), "{stderr}");
}

#[test]
fn a_malformed_value_stops_start_up_with_exit_code_2() {
    let output = dirsync(
        &["serve"],
        &[("DIRSYNC__DATABASE__MAX_CONNECTIONS", "lots")],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("database.max_connections"), "{stderr}");
}

#[test]
fn a_bad_config_file_is_named() {
    let dir = std::env::temp_dir().join(format!("dirsync-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[scim]\nmax_page_size = \"big\"\n").unwrap();
    let output = dirsync(&["--config", file.to_str().unwrap(), "serve"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("scim.max_page_size"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreachable_database_is_a_clear_error_not_a_panic() {
    let output = dirsync(
        &["serve"],
        &[
            (
                "DIRSYNC__DATABASE__URL",
                "postgres://dirsync:hunter2@127.0.0.1:1/none",
            ),
            ("DIRSYNC__DATABASE__CONNECT_TIMEOUT", "1s"),
            ("DIRSYNC__GRPC__LISTEN", "127.0.0.1:0"),
            ("DIRSYNC__SCIM__LISTEN", "127.0.0.1:0"),
            ("DIRSYNC__METRICS__LISTEN", "127.0.0.1:0"),
            ("DIRSYNC__METRICS__LISTEN", "127.0.0.1:0"),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot connect to the database"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "no password in errors: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

struct Server {
    child: Child,
    grpc: String,
    scim_base: String,
    metrics: String,
    data: std::path::PathBuf,
}

impl Server {
    fn start() -> Self {
        let data =
            std::env::temp_dir().join(format!("dirsync-serve-{}-{}", std::process::id(), line!()));
        let _ = std::fs::remove_dir_all(&data);
        let mut child = Command::new(DIRSYNC)
            .arg("serve")
            .env_remove("DIRSYNC_CONFIG")
            .env(
                "DIRSYNC__DATABASE__URL",
                format!("sqlite://{}/dirsync.db", data.display()),
            )
            .env("DIRSYNC__GRPC__LISTEN", "127.0.0.1:0")
            .env("DIRSYNC__SCIM__LISTEN", "127.0.0.1:0")
            .env("DIRSYNC__METRICS__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut grpc, mut scim_base, mut metrics) = (String::new(), String::new(), String::new());
        let deadline = Instant::now() + Duration::from_secs(60);
        while grpc.is_empty() || scim_base.is_empty() || metrics.is_empty() {
            assert!(Instant::now() < deadline, "dirsync serve did not start");
            let line = lines.next().unwrap().unwrap();
            if let Some(rest) = line.trim().strip_prefix("gRPC:") {
                grpc = rest.split_whitespace().next().unwrap().to_owned();
            } else if let Some(rest) = line.trim().strip_prefix("SCIM:") {
                scim_base = rest.trim().to_owned();
            } else if let Some(rest) = line.trim().strip_prefix("metrics:") {
                metrics = rest.trim().to_owned();
            }
        }
        // Keep draining stdout so the server never writes into a closed pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            grpc,
            scim_base,
            metrics,
            data,
        }
    }

    fn admin(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--server", self.grpc.as_str()]);
        dirsync(&all, &[])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix(label)
                .map(|rest| rest.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {label} in {text}"))
}

#[test]
fn serve_then_create_list_and_rotate_tenants() {
    let mut server = Server::start();
    assert!(
        server.data.join("dirsync.db").exists(),
        "the SQLite file is created on first run"
    );
    assert!(
        server.scim_base.ends_with("/scim/v2"),
        "{}",
        server.scim_base
    );

    let created = stdout(&server.admin(&["tenant", "create", "acme"]));
    let token = field(&created, "SCIM token:");
    assert!(token.starts_with("dsy_"), "{created}");
    assert!(
        field(&created, "SCIM base URL:").ends_with("/scim/v2"),
        "{created}"
    );
    let tenant_id = field(&created, "id:");

    let duplicate = server.admin(&["tenant", "create", "acme"]);
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));

    let listed = stdout(&server.admin(&["tenant", "list"]));
    assert!(
        listed.contains(&tenant_id) && listed.contains("acme"),
        "{listed}"
    );

    // Metrics over HTTP, in Prometheus' text format.
    let metrics = fetch(&server.metrics);
    assert!(metrics.contains("dirsync_grpc_requests_total{rpc=\"dirsync.provisioner.v1.TenantService/CreateTenant\",code=\"Ok\"}"), "{metrics}");
    assert!(
        metrics.contains("# TYPE dirsync_queue_depth gauge"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE dirsync_maas360_breaker_open gauge"),
        "{metrics}"
    );

    // A tenant with no MaaS360 calls yet: its status says so, its audit is empty.
    let status = stdout(&server.admin(&["status", "acme"]));
    assert!(status.contains("MaaS360:     no call made yet"), "{status}");
    let audit = stdout(&server.admin(&["audit", "acme", "--json", "--since", "1h"]));
    let audit: serde_json::Value = serde_json::from_str(audit.trim()).unwrap();
    assert_eq!(audit["entries"], serde_json::json!([]), "{audit}");
    let table = stdout(&server.admin(&["audit", "acme"]));
    assert!(table.starts_with("WHEN (UTC)"), "{table}");
    let unknown = server.admin(&["audit", "nobody"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not found"));

    let rotated = stdout(&server.admin(&["token", "rotate", "acme"]));
    assert!(rotated.contains("1 earlier token(s) revoked"), "{rotated}");
    assert!(!rotated.contains(&token));

    // SIGTERM stops the server gracefully.
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "graceful exit: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn admin_commands_explain_an_absent_server() {
    let output = dirsync(&["tenant", "list", "--server", "127.0.0.1:1"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot reach dirsync"), "{stderr}");
}

#[test]
fn the_demo_converges_and_reports_a_match() {
    let data = std::env::temp_dir().join(format!("dirsync-demo-{}", std::process::id()));
    let output = dirsync(
        &[
            "demo",
            "--users",
            "60",
            "--groups",
            "6",
            "--changes",
            "12",
            "--fault-rate",
            "0.2",
            "--exit",
            "--data",
            data.to_str().unwrap(),
        ],
        &[
            ("DIRSYNC__GRPC__LISTEN", "127.0.0.1:0"),
            ("DIRSYNC__SCIM__LISTEN", "127.0.0.1:0"),
            ("DIRSYNC__METRICS__LISTEN", "127.0.0.1:0"),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON summary in {stdout}"));
    assert_eq!(summary["matches"], true, "{summary}");
    assert_eq!(summary["entra"], summary["maas360"]);
    assert!(summary["maas360_calls"].as_u64().unwrap() > 0);
    assert!(stdout.contains("MaaS360 matches Entra"));
    let _ = std::fs::remove_dir_all(&data);
}

/// A plain HTTP GET over a real socket.
fn fetch(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}
