//! Admin commands: they talk gRPC to a running dirsync, like any platform
//! team's tooling would.

use std::time::Duration;

use anyhow::Context;
use dirsync_proto::provisioner::v1 as pb;
use dirsync_runtime::DirsyncConfig;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, clap::Args)]
pub(crate) struct ServerArg {
    /// The dirsync gRPC server to talk to (default: this configuration's grpc.listen).
    #[arg(long, global = true)]
    server: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TenantCommand {
    /// Create a tenant; prints its SCIM base URL and a bearer token, once.
    Create { name: String },
    /// List tenants.
    List,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue a new SCIM token and revoke every earlier one.
    Rotate {
        /// Tenant id or name.
        tenant: String,
    },
}

async fn channel(config: &DirsyncConfig, server: &ServerArg) -> anyhow::Result<Channel> {
    let url = match &server.server {
        Some(url) if url.contains("://") => url.clone(),
        Some(addr) => format!("http://{addr}"),
        None => {
            let listen = config.grpc.listen;
            let host = if listen.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                listen.ip().to_string()
            };
            format!("http://{host}:{}", listen.port())
        }
    };
    Endpoint::from_shared(url.clone())
        .with_context(|| format!("invalid server address {url}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot reach dirsync at {url}; is `dirsync serve` running?"))
}

fn explain(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{} ({:?})", status.message(), status.code())
}

pub(crate) async fn tenant(
    config: &DirsyncConfig,
    server: &ServerArg,
    command: TenantCommand,
) -> anyhow::Result<()> {
    let mut client =
        pb::tenant_service_client::TenantServiceClient::new(channel(config, server).await?);
    match command {
        TenantCommand::Create { name } => {
            let created = client
                .create_tenant(pb::CreateTenantRequest {
                    name,
                    maas360: None,
                    policy: None,
                })
                .await
                .map_err(explain)?
                .into_inner();
            let tenant = created.tenant.unwrap_or_default();
            println!("Tenant created.");
            println!("  id:            {}", tenant.tenant_id);
            println!("  name:          {}", tenant.name);
            println!("  SCIM base URL: {}", config.scim.base_url());
            println!("  SCIM token:    {}", created.scim_token);
            println!();
            println!(
                "The token is shown only this once: paste it into Entra's \"Secret Token\" field."
            );
        }
        TenantCommand::List => {
            let mut page_token = String::new();
            println!("{:<34} {:<32} {:>6}", "TENANT ID", "NAME", "TOKENS");
            loop {
                let listed = client
                    .list_tenants(pb::ListTenantsRequest {
                        page: Some(dirsync_proto::common::v1::PageRequest {
                            page_size: 200,
                            page_token: page_token.clone(),
                        }),
                    })
                    .await
                    .map_err(explain)?
                    .into_inner();
                for tenant in &listed.tenants {
                    println!(
                        "{:<34} {:<32} {:>6}",
                        tenant.tenant_id, tenant.name, tenant.active_token_count
                    );
                }
                page_token = listed
                    .page
                    .map(|page| page.next_page_token)
                    .unwrap_or_default();
                if page_token.is_empty() {
                    break;
                }
            }
        }
    }
    Ok(())
}

pub(crate) async fn token(
    config: &DirsyncConfig,
    server: &ServerArg,
    command: TokenCommand,
) -> anyhow::Result<()> {
    let mut client =
        pb::tenant_service_client::TenantServiceClient::new(channel(config, server).await?);
    match command {
        TokenCommand::Rotate { tenant } => {
            let issued = client
                .rotate_scim_token(pb::RotateScimTokenRequest { tenant_id: tenant })
                .await
                .map_err(explain)?
                .into_inner();
            println!("New SCIM token for tenant {}:", issued.tenant_id);
            println!("  {}", issued.scim_token);
            println!(
                "{} earlier token(s) revoked. The token is shown only this once.",
                issued.revoked_tokens
            );
        }
    }
    Ok(())
}
