//! The runtime every dirsync service shares: layered configuration validated once, tracing,
//! a gRPC server that always carries health and reflection, metrics, request ids, opening the
//! store, and graceful shutdown. It holds no service's logic.
//!
//! Modules:
//! - [`config`]: defaults < TOML file < `DIRSYNC__SECTION__KEY`, validated, naming bad keys.
//! - [`grpc`]: the gRPC server with health, reflection v1 and v1alpha, timeouts and per-RPC
//!   metrics; [`grpc::GrpcServer::draining`] for server streams.
//! - [`service`]: opening a service's store and the start-up error.
//! - [`process`]: the life of a single-service binary (config, tracing, listener, metrics).
//! - [`metrics`]: the Prometheus registry and `/metrics`.
//! - [`request_id`]: the request id carried from the SCIM gateway through gRPC metadata.
//! - [`secrets`]: secrets by reference (an environment variable or a file), resolved late.
//! - [`telemetry`]: tracing, human or JSON.
//! - [`shutdown`]: SIGTERM and Ctrl-C, and the draining signal.

pub mod config;
pub mod grpc;
pub mod metrics;
pub mod process;
pub mod request_id;
pub mod secrets;
pub mod service;
pub mod shutdown;
pub mod telemetry;

pub use config::{ConfigError, DirsyncConfig};
pub use grpc::{GrpcServer, ServeError};
pub use service::StartError;
pub use shutdown::shutdown_signal;
