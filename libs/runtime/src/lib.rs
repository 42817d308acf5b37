//! The runtime every dirsync service shares: layered configuration validated
//! once, tracing, a gRPC server that always carries health and reflection, and
//! graceful shutdown.

pub mod config;
pub mod grpc;
pub mod metrics;
pub mod process;
pub mod request_id;
pub mod shutdown;
pub mod telemetry;

pub use config::{ConfigError, DirsyncConfig};
pub use grpc::{GrpcServer, ServeError};
pub use shutdown::shutdown_signal;
