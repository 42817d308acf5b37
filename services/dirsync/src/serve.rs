//! `dirsync serve`: every service in one process (gRPC on one port, the SCIM
//! gateway's HTTP on another), or one of them with `--only`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context;
use dirsync_runtime::process::bind;
use dirsync_runtime::{DirsyncConfig, GrpcServer};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Service {
    Provisioner,
    ScimGateway,
    DirectoryReader,
    Mapping,
}

/// A shutdown signal every server of the process can wait on.
fn shutdown_channel() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        dirsync_runtime::shutdown_signal().await;
        let _ = sender.send(true);
    });
    receiver
}

async fn stopped(mut receiver: watch::Receiver<bool>) {
    let _ = receiver.wait_for(|stop| *stop).await;
}

/// The address a local client should dial for a listener bound to `addr`.
pub(crate) fn dial_address(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

pub(crate) async fn serve(config: DirsyncConfig, only: Option<Service>) -> anyhow::Result<()> {
    let shutdown = shutdown_channel();
    let timeout = config.grpc.request_timeout;
    match only {
        Some(Service::ScimGateway) => {
            let listener = bind("the SCIM gateway", config.scim.listen)
                .await
                .map_err(anyhow::Error::msg)?;
            dirsync_runtime::process::serve_metrics(&config)
                .await
                .map_err(anyhow::Error::msg)?;
            dirsync_scim_gateway::serve(&config.scim, listener, stopped(shutdown)).await?;
        }
        Some(service) => {
            let listener = bind("gRPC", config.grpc.listen)
                .await
                .map_err(anyhow::Error::msg)?;
            dirsync_runtime::process::serve_metrics(&config)
                .await
                .map_err(anyhow::Error::msg)?;
            let mut server = GrpcServer::new(timeout);
            match service {
                Service::Provisioner => {
                    let provisioner = dirsync_provisioner::Provisioner::open(&config).await?;
                    provisioner.register(&mut server);
                    let workers = provisioner.start_workers(stopped(shutdown.clone()));
                    server.serve(listener, stopped(shutdown)).await?;
                    if let Some(workers) = workers {
                        let _ = workers.await;
                    }
                }
                Service::DirectoryReader => {
                    let reader = dirsync_directory_reader::DirectoryReader::open(&config).await?;
                    reader.register(&mut server);
                    let scheduler = reader.start_scheduler(stopped(shutdown.clone()));
                    server.serve(listener, stopped(shutdown)).await?;
                    if let Some(scheduler) = scheduler {
                        let _ = scheduler.await;
                    }
                }
                Service::Mapping => {
                    let mapping = dirsync_mapping::Mapping::open(&config).await?;
                    mapping.register(&mut server);
                    let operations = mapping.start_operations(stopped(shutdown.clone()));
                    server.serve(listener, stopped(shutdown)).await?;
                    let _ = operations.await;
                }
                Service::ScimGateway => unreachable!("handled above"),
            }
        }
        None => {
            let grpc_listener = bind("gRPC", config.grpc.listen)
                .await
                .map_err(anyhow::Error::msg)?;
            let scim_listener = bind("the SCIM gateway", config.scim.listen)
                .await
                .map_err(anyhow::Error::msg)?;
            let metrics_listener = metrics_listener(&config).await?;
            run_all(
                config,
                grpc_listener,
                scim_listener,
                metrics_listener,
                shutdown,
                true,
            )
            .await?;
        }
    }
    Ok(())
}

/// Prints to stdout; a closed stdout (a supervisor that stopped reading) must
/// not take the server down, so write errors are ignored.
fn announce(lines: &[String]) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(stdout, "{line}");
    }
    let _ = stdout.flush();
}

/// Every service in this process on two already-bound listeners, until
/// `shutdown` turns true. Used by `serve`, and by `bench` on ephemeral ports.
pub(crate) async fn run_all(
    mut config: DirsyncConfig,
    grpc_listener: tokio::net::TcpListener,
    scim_listener: tokio::net::TcpListener,
    metrics_listener: Option<tokio::net::TcpListener>,
    shutdown: watch::Receiver<bool>,
    print_banner: bool,
) -> anyhow::Result<()> {
    let timeout = config.grpc.request_timeout;
    let grpc_addr = grpc_listener
        .local_addr()
        .context("gRPC listener address")?;
    let metrics_addr = metrics_listener
        .as_ref()
        .and_then(|listener| listener.local_addr().ok());
    // In one process the gateway always talks to this process's own
    // provisioner, wherever gRPC was told to listen.
    let own = format!("http://{}", dial_address(grpc_addr));
    config.scim.provisioner_url = own.clone();
    // Likewise every service asks its peers in this process: the directory-reader's pull sync
    // writes through this provisioner, the provisioner asks this mapping service, and the
    // mapping service reads through both.
    config.directory.provisioner_url = own.clone();
    if config.provisioner.mapping_url.is_empty() {
        config.provisioner.mapping_url = own.clone();
    }
    config.mapping.provisioner_url = own.clone();
    config.mapping.directory_url = own.clone();
    // With port 0 the gateway's own URLs must name the port it got.
    config.scim.listen = scim_listener
        .local_addr()
        .context("SCIM listener address")?;

    let mut server = GrpcServer::new(timeout);
    let provisioner = dirsync_provisioner::Provisioner::open(&config)
        .await
        .context("starting the provisioner")?;
    provisioner.register(&mut server);
    let workers = provisioner.start_workers(stopped(shutdown.clone()));
    let reader = dirsync_directory_reader::DirectoryReader::open(&config)
        .await
        .context("starting the directory-reader")?;
    reader.register(&mut server);
    let scheduler = reader.start_scheduler(stopped(shutdown.clone()));
    let mapping = dirsync_mapping::Mapping::open(&config)
        .await
        .context("starting the mapping service")?;
    mapping.register(&mut server);
    let operations = mapping.start_operations(stopped(shutdown.clone()));

    if print_banner {
        announce(&[
            "dirsync is serving".to_owned(),
            format!(
                "  gRPC:      {grpc_addr} (health and reflection on; try: grpcurl -plaintext {} list)",
                dial_address(grpc_addr)
            ),
            format!("  SCIM:      {}", config.scim.base_url()),
            format!(
                "  database:  {}",
                dirsync_store::redact(&config.database.url)
            ),
            match metrics_addr {
                Some(addr) => format!("  metrics:   http://{addr}/metrics"),
                None => "  metrics:   off".to_owned(),
            },
            "Create a tenant with: dirsync tenant create <name>".to_owned(),
        ]);
    }

    if let Some(listener) = metrics_listener {
        let shutdown = stopped(shutdown.clone());
        tokio::spawn(async move {
            if let Err(error) = dirsync_runtime::metrics::serve(listener, shutdown).await {
                tracing::warn!(%error, "metrics server stopped");
            }
        });
    }
    // The gateway calls this process's provisioner in process: the same contract, without a
    // socket and HTTP/2 framing per SCIM request.
    let provisioner_in_process = server.in_process(config.scim.upstream_timeout);
    let grpc = server.serve(grpc_listener, stopped(shutdown.clone()));
    let scim = dirsync_scim_gateway::serve_over(
        &config.scim,
        Some(provisioner_in_process),
        scim_listener,
        stopped(shutdown),
    );
    let (grpc, scim) = tokio::join!(grpc, scim);
    if let Some(workers) = workers {
        let _ = workers.await;
    }
    if let Some(scheduler) = scheduler {
        let _ = scheduler.await;
    }
    let _ = operations.await;
    grpc?;
    scim?;
    Ok(())
}

/// The metrics listener, when metrics are on.
pub(crate) async fn metrics_listener(
    config: &DirsyncConfig,
) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    if !config.metrics.enabled {
        return Ok(None);
    }
    Ok(Some(
        bind("metrics", config.metrics.listen)
            .await
            .map_err(anyhow::Error::msg)?,
    ))
}
