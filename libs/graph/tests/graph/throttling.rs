//! 429 and 503: Retry-After as seconds and as an HTTP date honoured (the emulator records a
//! client that comes back early), backoff without it, and bounded retries.

use std::time::Duration;

use dirsync_emulators::graph::Throttle;
use dirsync_graph::{ClientOptions, GraphError};

use crate::support::{
    assert_no_violations, build, cloud, config, emulator, ok, options, secret_credentials, setup,
    small_seed,
};

fn statuses(
    handle: &dirsync_emulators::graph::GraphEmulatorHandle,
    route: &str,
) -> Vec<(u16, u64)> {
    handle
        .request_counts()
        .get(route)
        .map(|by_status| by_status.iter().map(|(s, n)| (*s, *n)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn retry_after_in_seconds_is_waited_out() {
    let (handle, client) = setup(small_seed()).await;
    handle.set_throttle(Throttle {
        next: 1,
        retry_after_secs: 1.0,
        ..Throttle::default()
    });
    let users = ok(client.users(&[]).await, "users");
    assert_eq!(users.len(), 30);
    assert_eq!(statuses(&handle, "users"), vec![(200, 1), (429, 1)]);
    assert_no_violations(&handle);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_waited_out() {
    let (handle, client) = setup(small_seed()).await;
    handle.set_throttle(Throttle {
        next: 1,
        retry_after_secs: 0.5,
        http_date: true,
        ..Throttle::default()
    });
    ok(client.groups(&[]).await, "groups");
    assert_eq!(statuses(&handle, "groups"), vec![(200, 1), (429, 1)]);
    assert_no_violations(&handle);
}

#[tokio::test]
async fn a_503_without_retry_after_is_retried_with_backoff() {
    let (handle, client) = setup(small_seed()).await;
    handle.set_throttle(Throttle {
        next: 2,
        status: 503,
        retry_after_secs: 0.0,
        ..Throttle::default()
    });
    ok(client.organization().await, "organization");
    assert_eq!(statuses(&handle, "organization"), vec![(200, 1), (503, 2)]);
}

#[tokio::test]
async fn retries_are_bounded() {
    let handle = emulator(config(), small_seed()).await;
    let client = build(
        secret_credentials(handle.config()),
        cloud(&handle),
        ClientOptions {
            max_retries: 2,
            ..options()
        },
    );
    handle.set_throttle(Throttle {
        next: 10,
        status: 504,
        retry_after_secs: 0.0,
        ..Throttle::default()
    });
    let error = client.users(&[]).await;
    assert!(
        matches!(
            error,
            Err(GraphError::Transient {
                status: Some(504),
                ..
            })
        ),
        "{error:?}"
    );
    // The first try and two retries.
    assert_eq!(statuses(&handle, "users"), vec![(504, 3)]);
}

#[tokio::test]
async fn a_retry_after_longer_than_allowed_goes_back_to_the_caller() {
    let handle = emulator(config(), small_seed()).await;
    let client = build(
        secret_credentials(handle.config()),
        cloud(&handle),
        ClientOptions {
            max_retry_after: Duration::from_millis(500),
            ..options()
        },
    );
    handle.set_throttle(Throttle {
        next: 1,
        retry_after_secs: 1.0,
        ..Throttle::default()
    });
    let error = client.users(&[]).await;
    match error {
        Err(GraphError::Throttled { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(statuses(&handle, "users"), vec![(429, 1)]);
}
