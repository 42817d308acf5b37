//! Prometheus metrics without a client library: counters and latency
//! histograms in one process-wide registry, plus gauges that services compute
//! when scraped (queue depth from the store, MaaS360 calls from the clients).
//! Label values come from bounded sets (route templates, RPC names, status
//! codes), never from request data, so cardinality stays fixed.
//!
//! Why by hand rather than `prometheus-client` (considered for issue 9): the
//! gauges that matter most (queue depth, parked work, breaker state) are read
//! from the database at scrape time, asynchronously, per tenant; that crate's
//! collectors encode synchronously, so they would need a cache refreshed on a
//! timer, serving stale depths and querying the store when nobody scrapes. The
//! text format is small and stable, and what is written here is checked by
//! the [`exposition`] checker on a real process's scrape, so the hand-written
//! path costs little.

pub mod exposition;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Families {
    counters: BTreeMap<&'static str, (&'static str, BTreeMap<Labels, u64>)>,
    histograms: BTreeMap<&'static str, (&'static str, BTreeMap<Labels, Histogram>)>,
}

/// Something that adds samples at scrape time (gauges read from a store).
pub type Source = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

#[derive(Default)]
pub struct Registry {
    families: Mutex<Families>,
    sources: Mutex<Vec<(u64, Source)>>,
    next_source: std::sync::atomic::AtomicU64,
}

/// Keeps a source registered; dropping it removes the source (and whatever
/// the source holds, such as a database pool) from the process registry.
#[derive(Debug)]
pub struct SourceGuard {
    id: u64,
    registry: &'static Registry,
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        if let Ok(mut sources) = self.registry.sources.lock() {
            sources.retain(|(id, _)| *id != self.id);
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl Registry {
    pub fn increment(&self, name: &'static str, help: &'static str, labels: Labels) {
        if let Ok(mut families) = self.families.lock() {
            let family = families
                .counters
                .entry(name)
                .or_insert_with(|| (help, BTreeMap::new()));
            *family.1.entry(labels).or_default() += 1;
        }
    }

    pub fn observe(&self, name: &'static str, help: &'static str, labels: Labels, seconds: f64) {
        if let Ok(mut families) = self.families.lock() {
            let family = families
                .histograms
                .entry(name)
                .or_insert_with(|| (help, BTreeMap::new()));
            let histogram = family.1.entry(labels).or_default();
            for (bucket, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
                if seconds <= bound {
                    *bucket += 1;
                }
            }
            histogram.sum += seconds;
            histogram.count += 1;
        }
    }

    /// Adds a source of samples computed at scrape time, for as long as the
    /// returned guard lives.
    pub fn add_source(&'static self, source: Source) -> SourceGuard {
        let id = self
            .next_source
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut sources) = self.sources.lock() {
            sources.push((id, source));
        }
        SourceGuard { id, registry: self }
    }

    /// The Prometheus text exposition of everything.
    pub async fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(families) = self.families.lock() {
            for (name, (help, series)) in &families.counters {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for (labels, value) in series {
                    let _ = writeln!(out, "{name}{} {value}", render_labels(labels, None));
                }
            }
            for (name, (help, series)) in &families.histograms {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
                for (labels, histogram) in series {
                    for (count, bound) in histogram.counts.iter().zip(BUCKETS) {
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {count}",
                            render_labels(labels, Some(&bound.to_string()))
                        );
                    }
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {}",
                        render_labels(labels, Some("+Inf")),
                        histogram.count
                    );
                    let _ = writeln!(
                        out,
                        "{name}_sum{} {}",
                        render_labels(labels, None),
                        histogram.sum
                    );
                    let _ = writeln!(
                        out,
                        "{name}_count{} {}",
                        render_labels(labels, None),
                        histogram.count
                    );
                }
            }
        }
        let sources: Vec<Source> = self
            .sources
            .lock()
            .map(|sources| sources.iter().map(|(_, source)| source.clone()).collect())
            .unwrap_or_default();
        for source in sources {
            out.push_str(&source().await);
        }
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `{a="x",b="y"}`, with `le` appended for histogram buckets.
pub fn render_labels(labels: &[(&'static str, String)], le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4",
                )],
                registry().render().await,
            )
        }),
    );
    tracing::info!(addr = ?listener.local_addr().ok(), "metrics serving at /metrics");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_counters_and_histograms() {
        let registry: &'static Registry = Box::leak(Box::default());
        registry.increment(
            "t_requests_total",
            "Requests.",
            vec![("route", "/a".to_owned())],
        );
        registry.increment(
            "t_requests_total",
            "Requests.",
            vec![("route", "/a".to_owned())],
        );
        registry.observe(
            "t_seconds",
            "Latency.",
            vec![("route", "/a".to_owned())],
            0.003,
        );
        let guard = registry.add_source(Arc::new(|| {
            Box::pin(async { "# TYPE t_gauge gauge\nt_gauge 7\n".to_owned() })
        }));
        let text = registry.render().await;
        assert_eq!(exposition::check(&text), Ok(()), "{text}");
        assert!(text.contains("t_requests_total{route=\"/a\"} 2"), "{text}");
        assert!(
            text.contains("t_seconds_bucket{route=\"/a\",le=\"0.0025\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{route=\"/a\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(text.contains("t_seconds_count{route=\"/a\"} 1"), "{text}");
        assert!(text.contains("t_gauge 7"));
        drop(guard);
        assert!(
            !registry.render().await.contains("t_gauge"),
            "a dropped source is gone"
        );
    }
}
