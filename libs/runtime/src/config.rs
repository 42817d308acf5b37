//! Layered configuration: built-in defaults, then an optional TOML file, then
//! `DIRSYNC__SECTION__KEY` environment variables, validated once at start.
//!
//! Every service reads the same document and takes the sections it needs, so
//! one file configures the all-in-one process and each clustered service alike.
//! An unknown key is an error, not a silent no-op: a misspelt setting would
//! otherwise leave a production default in place without anyone noticing.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat, Map, Source, Value, ValueKind};
use serde::{Deserialize, Serialize};

/// Prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "DIRSYNC";

/// The whole configuration of a dirsync process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirsyncConfig {
    pub log: LogConfig,
    pub grpc: GrpcConfig,
    pub scim: ScimConfig,
    pub database: DatabaseConfig,
    pub provisioner: ProvisionerConfig,
    pub directory: DirectoryConfig,
    pub mapping: MappingConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether `/metrics` (Prometheus text format) is served.
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter directive such as `info` or `dirsync=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info,sea_orm_migration=warn,sqlx=warn".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Where the gRPC services listen.
    pub listen: SocketAddr,
    /// Deadline for one inbound RPC.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            request_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScimConfig {
    /// Where the SCIM gateway's HTTP server listens.
    pub listen: SocketAddr,
    /// The gateway's public base URL as Entra reaches it (used in `Location`
    /// and `meta.location`); empty derives it from `listen`.
    pub public_base_url: String,
    /// The provisioner the gateway translates to.
    pub provisioner_url: String,
    /// Page size when a list request names no `count`.
    pub default_page_size: u32,
    /// Largest page a list request may ask for.
    pub max_page_size: u32,
    /// Largest request body accepted; larger bodies get a 413 SCIM error.
    pub max_body_bytes: usize,
    /// How long a resolved bearer token is trusted before it is checked again. The provisioner
    /// the gateway talks to also tells it at once when a tenant's tokens are rotated or revoked,
    /// so this bounds how late a gateway learns of a rotation made through another replica.
    #[serde(with = "humantime_serde")]
    pub token_cache_ttl: Duration,
    /// Deadline for each call to the provisioner; Entra itself gives up at 60 s.
    #[serde(with = "humantime_serde")]
    pub upstream_timeout: Duration,
    /// A client that has not sent a request's headers within this is disconnected.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A client that has not sent a request's body within this gets a 408 SCIM error.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
}

impl Default for ScimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_base_url: String::new(),
            provisioner_url: "http://127.0.0.1:50051".to_owned(),
            default_page_size: 100,
            max_page_size: 1000,
            max_body_bytes: 1024 * 1024,
            token_cache_ttl: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(20),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

impl ScimConfig {
    /// The base URL of the SCIM API, ending in `/scim/v2`.
    pub fn base_url(&self) -> String {
        if self.public_base_url.is_empty() {
            format!("http://{}/scim/v2", self.listen)
        } else {
            self.public_base_url.trim_end_matches('/').to_owned()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
    /// PostgreSQL schema to use instead of `public`; empty keeps the default.
    pub schema: String,
    pub max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://./dirsync-data/dirsync.db".to_owned(),
            schema: String::new(),
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvisionerConfig {
    /// The mapping service the provisioner asks which MaaS360 group an Entra group writes to.
    /// Empty: `dirsync serve` asks the mapping service of its own process; a provisioner of its
    /// own asks none, so every group resolves as unmapped (look-alikes are still parked).
    pub mapping_url: String,
    /// Whether this process runs reconcile workers that write to MaaS360.
    pub reconcile: bool,
    /// Resources reconciled at once, across tenants.
    pub workers: u32,
    /// Resources reconciled at once per tenant.
    pub tenant_concurrency: u32,
    /// MaaS360 calls per second per tenant (a token bucket).
    pub tenant_calls_per_second: f64,
    /// How long a worker's claim on a resource lasts without renewal.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often idle workers look for due work.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// First retry delay after a transient MaaS360 failure; doubles per failed attempt, with
    /// jitter, up to `backoff_max`. Transient failures are retried for as long as it takes;
    /// only a permanent error parks a resource.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Transient MaaS360 failures in a row, across a tenant, that open its circuit breaker:
    /// no more calls but one probe per cool-down until MaaS360 answers again.
    pub breaker_failure_threshold: u32,
    /// Time between probes while a tenant's breaker is open.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// Deadline for one MaaS360 call.
    #[serde(with = "humantime_serde")]
    pub maas360_timeout: Duration,
    /// How long the audit of MaaS360 writes is kept; older entries are pruned in the background.
    #[serde(with = "humantime_serde")]
    pub audit_retention: Duration,
    /// MaaS360 authentication API: "v1" or "v2" (refresh tokens).
    pub maas360_auth: String,
}

impl Default for ProvisionerConfig {
    fn default() -> Self {
        Self {
            mapping_url: String::new(),
            reconcile: true,
            workers: 16,
            tenant_concurrency: 8,
            tenant_calls_per_second: 20.0,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(250),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(15 * 60),
            breaker_failure_threshold: 10,
            breaker_cooldown: Duration::from_secs(30),
            maas360_timeout: Duration::from_secs(30),
            audit_retention: Duration::from_secs(90 * 24 * 3600),
            maas360_auth: "v2".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectoryConfig {
    /// The provisioner the directory-reader resolves tenants with and writes the pull sync's
    /// desired state to. `dirsync serve` ignores it and uses its own gRPC address.
    pub provisioner_url: String,
    /// Deadline for each call to the provisioner.
    #[serde(with = "humantime_serde")]
    pub provisioner_timeout: Duration,
    /// Whether this process syncs pull-mode tenants on its own, every `sync_interval`.
    pub schedule: bool,
    /// Time between two scheduled pull syncs of a tenant (a delta read of Entra).
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// Time between two scheduled full reads of a tenant's Entra (which also remove what
    /// disappeared without a trace in the delta).
    #[serde(with = "humantime_serde")]
    pub full_sync_interval: Duration,
    /// Percent of a tenant's users a pull sync may disable or delete without `force`, for
    /// tenants whose pull settings name none.
    pub deletion_guard_percent: u32,
    /// Deadline for each Microsoft Graph exchange.
    #[serde(with = "humantime_serde")]
    pub graph_timeout: Duration,
    /// Graph requests in flight at once per tenant.
    pub graph_concurrency: u32,
    /// Provisioner writes in flight at once per pull sync. User creates take all of it (the
    /// provisioner commits concurrent creates together, so more in flight means larger
    /// commits); updates, group creates and group updates take at most 32, group deletions 4.
    pub apply_concurrency: u32,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            provisioner_url: "http://127.0.0.1:50051".to_owned(),
            provisioner_timeout: Duration::from_secs(30),
            schedule: true,
            sync_interval: Duration::from_secs(4 * 3600),
            full_sync_interval: Duration::from_secs(7 * 24 * 3600),
            deletion_guard_percent: 20,
            graph_timeout: Duration::from_secs(60),
            graph_concurrency: 4,
            apply_concurrency: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingConfig {
    /// The provisioner the mapping service reads MaaS360 through and makes a migration's
    /// MaaS360 writes through. `dirsync serve` ignores it and uses its own gRPC address.
    pub provisioner_url: String,
    /// The directory-reader the mapping service reads Entra's groups and members from.
    /// `dirsync serve` ignores it and uses its own gRPC address.
    pub directory_url: String,
    /// Deadline for each call to the provisioner or the directory-reader.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
}

impl Default for MappingConfig {
    fn default() -> Self {
        Self {
            provisioner_url: "http://127.0.0.1:50051".to_owned(),
            directory_url: "http://127.0.0.1:50051".to_owned(),
            call_timeout: Duration::from_secs(30),
        }
    }
}

/// A configuration that cannot be used. The message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown configuration key `{key}` (from {origin})")]
    UnknownKey { key: String, origin: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("invalid value for `{key}`: {reason}")]
    InvalidValue { key: String, reason: String },
    #[error("cannot read configuration file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

impl DirsyncConfig {
    /// Loads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`DirsyncConfig::load`] with an explicit environment, so that
    /// precedence can be tested without touching the process environment.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let defaults = Config::try_from(&Self::default())
            .map_err(|error| ConfigError::Invalid(error.to_string()))?;
        let known_keys = leaf_keys(
            &defaults
                .collect()
                .map_err(|e| ConfigError::Invalid(e.to_string()))?,
        );

        let mut builder = Config::builder().add_source(defaults);
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    reason: "no such file".to_owned(),
                });
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        let env: HashMap<String, String> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        builder = builder.add_source(
            Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .source(Some(env)),
        );
        let merged = builder.build().map_err(|error| match error {
            config::ConfigError::FileParse { uri, cause } => ConfigError::File {
                path: PathBuf::from(uri.unwrap_or_default()),
                reason: cause.to_string(),
            },
            other => ConfigError::Invalid(other.to_string()),
        })?;

        let table = merged
            .collect()
            .map_err(|error| ConfigError::Invalid(error.to_string()))?;
        reject_unknown_keys(&table, &known_keys)?;

        let config: Self = merged.try_deserialize().map_err(|error| match error {
            config::ConfigError::Type {
                key: Some(key),
                unexpected,
                expected,
                ..
            } => ConfigError::InvalidValue {
                key,
                reason: format!("found {unexpected}, expected {expected}"),
            },
            other => ConfigError::Invalid(other.to_string()),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::InvalidValue {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        if EnvFilterSyntax::check(&self.log.level).is_err() {
            return Err(invalid("log.level", "not a tracing filter directive"));
        }
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must start with sqlite: or postgres://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if !self
            .database
            .schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(invalid("database.schema", "letters, digits and _ only"));
        }
        if !(self.scim.provisioner_url.starts_with("http://")
            || self.scim.provisioner_url.starts_with("https://"))
        {
            return Err(invalid(
                "scim.provisioner_url",
                "must be an http:// or https:// URL",
            ));
        }
        if !self.provisioner.mapping_url.is_empty() && !is_http_url(&self.provisioner.mapping_url) {
            return Err(invalid(
                "provisioner.mapping_url",
                "must be empty or an http(s) URL",
            ));
        }
        for (key, url) in [
            ("mapping.provisioner_url", &self.mapping.provisioner_url),
            ("mapping.directory_url", &self.mapping.directory_url),
        ] {
            if !is_http_url(url) {
                return Err(invalid(key, "must be an http:// or https:// URL"));
            }
        }
        if self.mapping.call_timeout.is_zero() {
            return Err(invalid("mapping.call_timeout", "must be more than 0s"));
        }
        let provisioner = &self.provisioner;
        if provisioner.workers == 0 || provisioner.tenant_concurrency == 0 {
            return Err(invalid(
                "provisioner.workers",
                "workers and tenant_concurrency must be at least 1",
            ));
        }
        if !(provisioner.tenant_calls_per_second > 0.0
            && provisioner.tenant_calls_per_second.is_finite())
        {
            return Err(invalid(
                "provisioner.tenant_calls_per_second",
                "must be a positive number",
            ));
        }
        if provisioner.lease < Duration::from_secs(1) {
            return Err(invalid("provisioner.lease", "leases last at least 1s"));
        }
        if provisioner.poll_interval.is_zero() {
            return Err(invalid("provisioner.poll_interval", "must be positive"));
        }
        if provisioner.backoff_base.is_zero() || provisioner.backoff_max < provisioner.backoff_base
        {
            return Err(invalid(
                "provisioner.backoff_max",
                "backoff_base must be positive and at most backoff_max",
            ));
        }
        if provisioner.breaker_failure_threshold == 0 {
            return Err(invalid(
                "provisioner.breaker_failure_threshold",
                "must be at least 1",
            ));
        }
        if provisioner.audit_retention < Duration::from_secs(3600) {
            return Err(invalid(
                "provisioner.audit_retention",
                "must be at least 1h",
            ));
        }
        if provisioner.breaker_cooldown.is_zero() {
            return Err(invalid("provisioner.breaker_cooldown", "must be positive"));
        }
        if provisioner.maas360_auth != "v1" && provisioner.maas360_auth != "v2" {
            return Err(invalid(
                "provisioner.maas360_auth",
                "must be \"v1\" or \"v2\"",
            ));
        }
        let directory = &self.directory;
        if !is_http_url(&directory.provisioner_url) {
            return Err(invalid(
                "directory.provisioner_url",
                "must be an http:// or https:// URL",
            ));
        }
        if directory.sync_interval < Duration::from_secs(1) {
            return Err(invalid("directory.sync_interval", "must be at least 1s"));
        }
        if directory.full_sync_interval < directory.sync_interval {
            return Err(invalid(
                "directory.full_sync_interval",
                "must be at least directory.sync_interval",
            ));
        }
        if directory.deletion_guard_percent > 100 {
            return Err(invalid(
                "directory.deletion_guard_percent",
                "must be between 0 and 100",
            ));
        }
        if directory.graph_concurrency == 0 || directory.apply_concurrency == 0 {
            return Err(invalid(
                "directory.graph_concurrency",
                "graph_concurrency and apply_concurrency must be at least 1",
            ));
        }
        if self.scim.max_page_size == 0 {
            return Err(invalid("scim.max_page_size", "must be at least 1"));
        }
        if self.scim.default_page_size == 0 || self.scim.default_page_size > self.scim.max_page_size
        {
            return Err(invalid(
                "scim.default_page_size",
                "must be between 1 and scim.max_page_size",
            ));
        }
        if self.scim.max_body_bytes < 1024 {
            return Err(invalid("scim.max_body_bytes", "must be at least 1024"));
        }
        for (key, timeout) in [
            ("scim.upstream_timeout", self.scim.upstream_timeout),
            ("scim.header_read_timeout", self.scim.header_read_timeout),
            ("scim.body_read_timeout", self.scim.body_read_timeout),
            ("grpc.request_timeout", self.grpc.request_timeout),
            ("database.connect_timeout", self.database.connect_timeout),
            (
                "provisioner.maas360_timeout",
                self.provisioner.maas360_timeout,
            ),
            (
                "directory.provisioner_timeout",
                self.directory.provisioner_timeout,
            ),
            ("directory.graph_timeout", self.directory.graph_timeout),
        ] {
            if timeout.is_zero() {
                return Err(invalid(key, "must be positive"));
            }
        }
        Ok(())
    }
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// `tracing`'s filter parser lives in tracing-subscriber; keep the dependency
/// in one place.
struct EnvFilterSyntax;

impl EnvFilterSyntax {
    fn check(directive: &str) -> Result<(), ()> {
        tracing_subscriber::EnvFilter::try_new(directive)
            .map(|_| ())
            .map_err(|_| ())
    }
}

fn leaf_keys(table: &Map<String, Value>) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    collect_leaves("", table, &mut |key, _| {
        keys.insert(key);
    });
    keys
}

fn reject_unknown_keys(
    table: &Map<String, Value>,
    known: &BTreeSet<String>,
) -> Result<(), ConfigError> {
    let mut unknown = None;
    collect_leaves("", table, &mut |key, value| {
        if unknown.is_none() && !known.contains(&key) {
            let origin = match value.origin() {
                Some(origin) => origin.to_owned(),
                None => "the environment".to_owned(),
            };
            unknown = Some(ConfigError::UnknownKey { key, origin });
        }
    });
    unknown.map_or(Ok(()), Err)
}

fn collect_leaves(prefix: &str, table: &Map<String, Value>, visit: &mut dyn FnMut(String, &Value)) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match &value.kind {
            ValueKind::Table(inner) => collect_leaves(&key, inner, visit),
            _ => visit(key, value),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn write_toml(body: &str) -> tempfile_path::TempToml {
        tempfile_path::TempToml::new(body)
    }

    mod tempfile_path {
        pub(super) struct TempToml(pub(super) std::path::PathBuf);
        impl TempToml {
            pub(super) fn new(body: &str) -> Self {
                let path = std::env::temp_dir().join(format!(
                    "dirsync-config-{}-{}.toml",
                    std::process::id(),
                    body.len() ^ body.as_ptr() as usize
                ));
                std::fs::write(&path, body).unwrap();
                Self(path)
            }
        }
        impl Drop for TempToml {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn defaults_load_and_validate() {
        let config = DirsyncConfig::load_from(None, env(&[])).unwrap();
        assert_eq!(config, DirsyncConfig::default());
        assert_eq!(config.grpc.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(config.scim.base_url(), "http://127.0.0.1:8080/scim/v2");
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let file = write_toml(
            "[database]\nmax_connections = 7\nurl = \"sqlite://from-file.db\"\n[scim]\nmax_page_size = 500\n",
        );
        let config = DirsyncConfig::load_from(
            Some(&file.0),
            env(&[
                ("DIRSYNC__DATABASE__MAX_CONNECTIONS", "9"),
                ("DIRSYNC__GRPC__LISTEN", "127.0.0.1:6000"),
                ("DIRSYNC_TEST_DATABASE_URL", "ignored: single underscore"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.database.max_connections, 9, "env beats file");
        assert_eq!(
            config.database.url, "sqlite://from-file.db",
            "file beats default"
        );
        assert_eq!(config.scim.max_page_size, 500);
        assert_eq!(config.grpc.listen.port(), 6000);
        assert_eq!(config.scim.default_page_size, 100, "untouched default");
    }

    #[test]
    fn unknown_env_key_is_named() {
        let error = DirsyncConfig::load_from(None, env(&[("DIRSYNC__SCIM__MAX_PAGESIZE", "5")]))
            .unwrap_err();
        assert!(error.to_string().contains("scim.max_pagesize"), "{error}");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let file = write_toml("[databse]\nurl = \"sqlite://x.db\"\n");
        let error = DirsyncConfig::load_from(Some(&file.0), env(&[])).unwrap_err();
        assert!(error.to_string().contains("databse.url"), "{error}");
    }

    #[test]
    fn malformed_number_is_named() {
        let error =
            DirsyncConfig::load_from(None, env(&[("DIRSYNC__DATABASE__MAX_CONNECTIONS", "many")]))
                .unwrap_err();
        assert!(
            error.to_string().contains("database.max_connections"),
            "{error}"
        );
    }

    #[test]
    fn malformed_address_is_named() {
        let error =
            DirsyncConfig::load_from(None, env(&[("DIRSYNC__GRPC__LISTEN", "not-an-address")]))
                .unwrap_err();
        assert!(error.to_string().contains("grpc.listen"), "{error}");
    }

    #[test]
    fn semantic_validation_names_the_key() {
        let error =
            DirsyncConfig::load_from(None, env(&[("DIRSYNC__DATABASE__URL", "mysql://nope")]))
                .unwrap_err();
        assert!(error.to_string().contains("database.url"), "{error}");
        let error =
            DirsyncConfig::load_from(None, env(&[("DIRSYNC__SCIM__DEFAULT_PAGE_SIZE", "5000")]))
                .unwrap_err();
        assert!(
            error.to_string().contains("scim.default_page_size"),
            "{error}"
        );
    }

    /// deploy/config/example.toml promises every key with its default.
    #[test]
    fn the_example_file_lists_every_key_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/example.toml");
        let loaded = DirsyncConfig::load_from(Some(&path), env(&[])).unwrap();
        assert_eq!(
            loaded,
            DirsyncConfig::default(),
            "the file's values are the defaults"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let file = Config::builder()
            .add_source(File::from_str(&text, FileFormat::Toml))
            .build()
            .unwrap()
            .collect()
            .unwrap();
        let defaults = Config::try_from(&DirsyncConfig::default())
            .unwrap()
            .collect()
            .unwrap();
        let missing: Vec<String> = leaf_keys(&defaults)
            .difference(&leaf_keys(&file))
            .cloned()
            .collect();
        assert!(missing.is_empty(), "example.toml lacks {missing:?}");
    }

    #[test]
    fn directory_durations_read_as_durations() {
        let file = write_toml(
            "[directory]\nsync_interval = \"30m\"\nfull_sync_interval = \"7d\"\nschedule = false\n",
        );
        let config = DirsyncConfig::load_from(Some(&file.0), env(&[])).unwrap();
        assert_eq!(config.directory.sync_interval, Duration::from_secs(1800));
        assert_eq!(
            config.directory.full_sync_interval,
            Duration::from_secs(7 * 24 * 3600)
        );
        assert!(!config.directory.schedule);
        let error = DirsyncConfig::load_from(
            None,
            env(&[("DIRSYNC__DIRECTORY__DELETION_GUARD_PERCENT", "150")]),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("directory.deletion_guard_percent"),
            "{error}"
        );
    }

    #[test]
    fn missing_file_is_an_error() {
        let error =
            DirsyncConfig::load_from(Some(Path::new("/nonexistent/dirsync.toml")), env(&[]))
                .unwrap_err();
        assert!(matches!(error, ConfigError::File { .. }), "{error}");
    }
}
