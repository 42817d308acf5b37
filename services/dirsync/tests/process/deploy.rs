//! The Kubernetes manifests in `deploy/` are valid against Kubernetes' own schemas and carry
//! what running dirsync in production needs: gRPC health probes, resource requests and
//! limits, a PodDisruptionBudget, configuration from a ConfigMap and secrets from a Secret.
//!
//! The schema check runs `kubernetes-validate` (PyPI), which `.ci/run` installs; elsewhere the
//! test says it skipped that part unless `DIRSYNC_REQUIRE_TOOLS=1` demands it.

use std::path::PathBuf;
use std::process::Command;

fn manifests() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    files
}

/// The YAML documents of every manifest, split on `---`.
fn documents() -> Vec<String> {
    manifests()
        .iter()
        .flat_map(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .split("\n---")
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|document| document.contains("kind:"))
        .collect()
}

fn kind_of(document: &str) -> &str {
    document
        .lines()
        .find_map(|line| line.strip_prefix("kind:"))
        .map_or("", str::trim)
}

#[test]
fn manifests_are_valid_kubernetes() {
    let required = std::env::var("DIRSYNC_REQUIRE_TOOLS").is_ok_and(|value| value == "1");
    let validator = || {
        let mut command = Command::new("python3");
        command.args(["-m", "kubernetes_validate"]);
        command
    };
    let installed = validator()
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !installed {
        assert!(
            !required,
            "kubernetes-validate is not installed (pip install kubernetes-validate)"
        );
        println!("skipped the schema check: kubernetes-validate is not installed");
        return;
    }
    for path in manifests() {
        let output = validator()
            .args(["--strict", "--kubernetes-version", "1.30.0"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{} is not valid Kubernetes:\n{}{}",
            path.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn every_deployment_is_production_ready() {
    let documents = documents();
    let kinds: Vec<&str> = documents.iter().map(|document| kind_of(document)).collect();
    for kind in [
        "ConfigMap",
        "Secret",
        "PodDisruptionBudget",
        "Deployment",
        "Service",
    ] {
        assert!(
            kinds.contains(&kind),
            "no {kind} in deploy/kubernetes: {kinds:?}"
        );
    }
    let deployments: Vec<&String> = documents
        .iter()
        .filter(|document| kind_of(document) == "Deployment")
        .collect();
    assert!(deployments.len() >= 4, "one Deployment per service");
    for deployment in deployments {
        let name = deployment
            .lines()
            .find_map(|line| line.trim().strip_prefix("name:"))
            .map_or("", str::trim);
        for needed in [
            "readinessProbe",
            "livenessProbe",
            "resources:",
            "requests:",
            "limits:",
        ] {
            assert!(deployment.contains(needed), "{name} has no {needed}");
        }
        assert!(
            deployment.contains("configMap:"),
            "{name} reads no ConfigMap"
        );
        let grpc = !deployment.contains("scim-gateway");
        if grpc {
            assert!(
                deployment.contains("grpc:"),
                "{name} is a gRPC service and is probed with gRPC health"
            );
        }
        if deployment.contains("DIRSYNC__DATABASE__URL") {
            assert!(
                deployment.contains("secretKeyRef"),
                "{name} takes its database URL from a Secret"
            );
        }
    }
    let budgets = documents
        .iter()
        .filter(|document| kind_of(document) == "PodDisruptionBudget")
        .count();
    assert!(
        budgets >= 2,
        "the replicated services have disruption budgets"
    );
}
