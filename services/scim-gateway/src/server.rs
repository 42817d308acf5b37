//! The gateway's HTTP/1.1 server: hyper's connection handling with the limits axum's own
//! `serve` does not expose. A client that sends its headers too slowly is disconnected
//! (`scim.header_read_timeout`); open connections are bounded; paths are normalised before
//! routing, because Entra's and Microsoft's reference requests use `/Users/`, `/Users/?filter=`
//! and, when a tenant URL was entered with a trailing slash, `/scim/v2//Users`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Request, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// Connections served at once; more wait to be accepted (the listen backlog holds them).
const MAX_CONNECTIONS: usize = 4096;
/// Largest request head (request line and headers) hyper buffers; the router answers a SCIM
/// error for anything over `http::MAX_HEADER_BYTES` below this.
const MAX_HEAD_BUFFER: usize = 256 * 1024;
/// Most headers in one request head; hyper refuses a head with more with its own bodiless 431
/// before the router sees it. Entra sends about ten, and Apache's default limit is 100; 512
/// leaves room for every proxy between. Each parse of a head allocates and fills room for this
/// many headers twice (64 bytes a header), so the limit is a cost paid on every request: at one
/// header per 4 bytes of `http::MAX_HEADER_BYTES` (8192) it was a fifth of a matching query's CPU.
/// Within 512 headers, a head over the byte limit gets the router's SCIM error.
const MAX_HEADERS: usize = 512;
/// How long shutdown waits for requests in progress.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in progress finish.
pub(crate) async fn serve(
    app: Router,
    listener: TcpListener,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let service = TowerToHyperService::new(
        app.map_request(normalize_path)
            .map_err(|never: Infallible| match never {}),
    );
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEAD_BUFFER)
        .max_headers(MAX_HEADERS);
    let http = Arc::new(http);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "cannot accept a SCIM connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (http, service, mut stopping) = (http.clone(), service.clone(), stopping.clone());
        connections.spawn(async move {
            let _slot = slot;
            let connection = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = served {
                // Slow or broken clients; nothing of ours failed.
                tracing::debug!(%error, "SCIM connection ended");
            }
        });
    }
    let _ = stop.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    Ok(())
}

/// `//Users/` → `/Users`: doubled slashes collapse and a trailing slash goes, so that every
/// spelling Entra sends reaches the same route.
fn normalize_path<B>(mut request: Request<B>) -> Request<B> {
    let path = request.uri().path();
    let trailing_slash = path.len() > 1 && path.ends_with('/');
    if !path.contains("//") && !trailing_slash {
        return request;
    }
    let mut normalized = String::with_capacity(path.len());
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if normalized.is_empty() {
        normalized.push('/');
    }
    if let Some(query) = request.uri().query() {
        normalized.push('?');
        normalized.push_str(query);
    }
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path_and_query) = normalized.parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(uri: &str) -> String {
        let request = Request::builder()
            .uri(uri)
            .body(())
            .unwrap_or_else(|error| panic!("{error}"));
        normalize_path(request).uri().to_string()
    }

    #[test]
    fn entra_spellings_reach_one_route() {
        assert_eq!(normalized("/scim/v2/Users/"), "/scim/v2/Users");
        assert_eq!(
            normalized("/scim/v2/Users/?filter=userName+eq+%22a%22"),
            "/scim/v2/Users?filter=userName+eq+%22a%22"
        );
        assert_eq!(normalized("/scim/v2//Users"), "/scim/v2/Users");
        assert_eq!(normalized("//scim//v2///Groups//"), "/scim/v2/Groups");
        assert_eq!(normalized("/scim/v2/Users/abc"), "/scim/v2/Users/abc");
        assert_eq!(normalized("/"), "/");
    }
}
