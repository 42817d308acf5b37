//! Starting an emulator and pointing a client at it.

use std::time::Duration;

use dirsync_emulators::graph::{self as emu, GraphEmulatorConfig, GraphEmulatorHandle, GraphSeed};
use dirsync_graph::{
    Certificate, ClientCredential, ClientOptions, Cloud, Credentials, GraphClient, Secret,
};
use dirsync_http::Backoff;

pub(crate) const CERT: &[u8] = include_bytes!("../fixtures/registered-cert.pem");
pub(crate) const KEY: &[u8] = include_bytes!("../fixtures/registered-key.pem");
pub(crate) const OTHER_CERT: &[u8] = include_bytes!("../fixtures/unregistered-cert.pem");
pub(crate) const OTHER_KEY: &[u8] = include_bytes!("../fixtures/unregistered-key.pem");

pub(crate) fn certificate(cert: &[u8], key: &[u8]) -> Certificate {
    match Certificate::from_pem(cert, key) {
        Ok(certificate) => certificate,
        Err(error) => panic!("fixture certificate: {error}"),
    }
}

/// A small generated tenant: 30 users, 8 groups, nesting up to 2 deep; the first seed number
/// whose draw does nest a group, so that member lists hold groups too.
pub(crate) fn small_seed() -> GraphSeed {
    for number in 1..100 {
        let seed = GraphSeed::generate(30, 8, 2, number);
        let ids: Vec<&str> = seed.groups.iter().map(|g| g.id.as_str()).collect();
        if seed
            .groups
            .iter()
            .any(|g| g.members.iter().any(|m| ids.contains(&m.as_str())))
        {
            return seed;
        }
    }
    panic!("no seed number below 100 nests a group");
}

/// The test configuration with the registered fixture certificate.
pub(crate) fn config() -> GraphEmulatorConfig {
    GraphEmulatorConfig {
        certificates: vec![certificate(CERT, KEY).der().to_vec()],
        ..GraphEmulatorConfig::for_tests()
    }
}

pub(crate) async fn emulator(config: GraphEmulatorConfig, seed: GraphSeed) -> GraphEmulatorHandle {
    match emu::start(config, seed).await {
        Ok(handle) => handle,
        Err(error) => panic!("emulator did not start: {error}"),
    }
}

/// Quick retries, so tests without a Retry-After do not wait long.
pub(crate) fn options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(10),
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(50)),
        max_retries: 4,
        ..ClientOptions::default()
    }
}

pub(crate) fn cloud(handle: &GraphEmulatorHandle) -> Cloud {
    Cloud::Custom {
        login_url: handle.base_url(),
        graph_url: handle.base_url(),
    }
}

pub(crate) fn secret_credentials(config: &GraphEmulatorConfig) -> Credentials {
    Credentials {
        tenant_id: config.tenant_id.clone(),
        client_id: config.client_id.clone(),
        credential: ClientCredential::Secret(Secret::new(config.client_secret.clone())),
    }
}

pub(crate) fn build(credentials: Credentials, cloud: Cloud, options: ClientOptions) -> GraphClient {
    match GraphClient::new(credentials, cloud, options) {
        Ok(client) => client,
        Err(error) => panic!("client: {error}"),
    }
}

/// A secret-authenticated client for `handle`.
pub(crate) fn client(handle: &GraphEmulatorHandle) -> GraphClient {
    build(
        secret_credentials(handle.config()),
        cloud(handle),
        options(),
    )
}

/// An emulator with `seed` and a client for it.
pub(crate) async fn setup(seed: GraphSeed) -> (GraphEmulatorHandle, GraphClient) {
    let handle = emulator(config(), seed).await;
    let client = client(&handle);
    (handle, client)
}

/// Fails when the client did something a correct Graph client does not.
pub(crate) fn assert_no_violations(handle: &GraphEmulatorHandle) {
    let violations = handle.violations();
    assert!(violations.is_empty(), "{violations:?}");
}

pub(crate) fn ok<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error}"),
    }
}
