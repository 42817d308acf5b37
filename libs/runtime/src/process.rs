//! The start of every dirsync process: configuration (exit code 2 when it is
//! unusable, naming the key), tracing, a runtime, a bound listener, and a
//! clean stop on SIGTERM or Ctrl-C.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use tokio::net::TcpListener;

use crate::config::DirsyncConfig;

/// Exit code for unusable configuration or command-line input.
pub const EXIT_USAGE: u8 = 2;

/// Loads the configuration or explains why it cannot be used.
pub fn load_config(path: Option<&std::path::Path>) -> Result<DirsyncConfig, ExitCode> {
    DirsyncConfig::load(path).map_err(|error| {
        eprintln!("dirsync: {error}");
        ExitCode::from(EXIT_USAGE)
    })
}

/// The `--config FILE` argument (or `DIRSYNC_CONFIG`) of a service binary.
pub fn config_path_from_args() -> Result<Option<PathBuf>, ExitCode> {
    let mut args = std::env::args().skip(1);
    let mut path = std::env::var_os("DIRSYNC_CONFIG").map(PathBuf::from);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => match args.next() {
                Some(value) => path = Some(PathBuf::from(value)),
                None => {
                    eprintln!("dirsync: --config needs a file");
                    return Err(ExitCode::from(EXIT_USAGE));
                }
            },
            "--help" | "-h" => {
                println!(
                    "usage: {} [--config FILE]\n\nSettings are read from FILE (TOML), then from DIRSYNC__SECTION__KEY environment variables.",
                    std::env::args().next().unwrap_or_default()
                );
                return Err(ExitCode::SUCCESS);
            }
            other => {
                eprintln!("dirsync: unexpected argument {other:?}");
                return Err(ExitCode::from(EXIT_USAGE));
            }
        }
    }
    Ok(path)
}

/// Binds a listener with an error that says what could not be bound.
pub async fn bind(what: &str, addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| format!("cannot listen for {what} on {addr}: {error}"))
}

/// The whole life of a single-service binary.
pub fn run_service<F, Fut, E>(
    name: &'static str,
    listen: fn(&DirsyncConfig) -> SocketAddr,
    run: F,
) -> ExitCode
where
    F: FnOnce(DirsyncConfig, TcpListener) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let path = match config_path_from_args() {
        Ok(path) => path,
        Err(code) => return code,
    };
    let config = match load_config(path.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    crate::telemetry::init_tracing(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dirsync: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match bind(name, listen(&config)).await {
            Ok(listener) => listener,
            Err(message) => {
                tracing::error!("{message}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(message) = serve_metrics(&config).await {
            tracing::error!("{message}");
            return ExitCode::FAILURE;
        }
        match run(config, listener).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(service = name, "{error}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Serves `/metrics` for the life of the process when `metrics.enabled` (a cluster's
/// Prometheus scrapes each service's own process).
pub async fn serve_metrics(config: &DirsyncConfig) -> Result<(), String> {
    if !config.metrics.enabled {
        return Ok(());
    }
    let listener = bind("metrics", config.metrics.listen).await?;
    tokio::spawn(async move {
        if let Err(error) =
            crate::metrics::serve(listener, crate::shutdown::shutdown_signal()).await
        {
            tracing::warn!(%error, "metrics server stopped");
        }
    });
    Ok(())
}
