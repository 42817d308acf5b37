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
    Create {
        name: String,
        #[command(flatten)]
        maas360: Maas360Args,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// List tenants.
    List,
    /// Who writes the tenant's desired state: push (Entra's SCIM, the default) or pull (Graph).
    SetMode {
        /// Tenant id or name.
        tenant: String,
        #[arg(value_enum)]
        mode: ModeArg,
    },
    /// Replace a tenant's policy: each flag left out sets that part back to its default.
    SetPolicy {
        /// Tenant id or name.
        tenant: String,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Set or replace the tenant's Entra connection for the pull sync and Option 1 (checked
    /// with one token request and one Graph read).
    SetEntra {
        /// Tenant id or name.
        tenant: String,
        #[command(flatten)]
        entra: crate::pull::EntraArgs,
    },
    /// How the tenant's pull sync reads Entra: group scope, userName attribute, deletion guard.
    SetPull {
        /// Tenant id or name.
        tenant: String,
        #[command(flatten)]
        pull: crate::pull::PullArgs,
    },
    /// Set or replace a tenant's MaaS360 connection (checked with one authentication).
    SetMaas360 {
        /// Tenant id or name.
        tenant: String,
        #[command(flatten)]
        maas360: Maas360Args,
    },
}

/// A MaaS360 connection. Secrets are given by reference (an environment
/// variable or a file of the provisioner process), never on the command line.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Maas360Args {
    /// MaaS360 web-services root, e.g. https://services.m3.maas360.com
    #[arg(long = "maas360-url")]
    url: Option<String>,
    #[arg(long)]
    billing_id: Option<String>,
    #[arg(long)]
    admin_user: Option<String>,
    #[arg(long)]
    app_id: Option<String>,
    #[arg(long, default_value = "1.0")]
    app_version: String,
    #[arg(long, default_value = "3")]
    platform_id: String,
    /// Environment variable holding the admin password.
    #[arg(long, conflicts_with = "password_file")]
    password_env: Option<String>,
    /// File holding the admin password.
    #[arg(long)]
    password_file: Option<String>,
    /// Environment variable holding the app access key.
    #[arg(long, conflicts_with = "access_key_file")]
    access_key_env: Option<String>,
    /// File holding the app access key.
    #[arg(long)]
    access_key_file: Option<String>,
    /// A routes file (TOML) overriding MaaS360 routes this tenant's MaaS360 answers elsewhere
    /// (docs/maas360-routes.md); validated by the server when set.
    #[arg(long)]
    routes: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PolicyArgs {
    /// Leave MaaS360 users active when Entra disables them.
    #[arg(long)]
    keep_disabled_active: bool,
    /// Only deactivate (do not delete) MaaS360 users that Entra deletes.
    #[arg(long)]
    deactivate_on_delete: bool,
    /// Use the whole userName as the MaaS360 username instead of the part before '@'.
    #[arg(long)]
    full_username: bool,
    /// When MaaS360 refuses to delete a user with an active device, park it for an operator
    /// (default: deactivate the user instead).
    #[arg(long)]
    park_on_active_device: bool,
    /// Import an unmapped Entra group even when its name matches a MaaS360 group that carries
    /// app or policy distributions (Option 2); by default such a group is parked until it is
    /// mapped with `dirsync mapping set` (Option 1).
    #[arg(long)]
    import_lookalike_groups: bool,
}

impl PolicyArgs {
    fn to_pb(&self) -> pb::TenantPolicy {
        pb::TenantPolicy {
            deactivate_on_disable: !self.keep_disabled_active,
            delete_on_delete: !self.deactivate_on_delete,
            username_mapping: if self.full_username {
                pb::UsernameMapping::Full as i32
            } else {
                pb::UsernameMapping::LocalPart as i32
            },
            active_device: if self.park_on_active_device {
                pb::ActiveDevicePolicy::Park as i32
            } else {
                pb::ActiveDevicePolicy::Deactivate as i32
            },
            lookalike_groups: if self.import_lookalike_groups {
                pb::LookalikeGroupPolicy::Import as i32
            } else {
                pb::LookalikeGroupPolicy::Park as i32
            },
        }
    }
}

/// One line per part of a tenant's policy.
fn describe_policy(policy: &pb::TenantPolicy) -> Vec<String> {
    vec![
        format!(
            "Entra disables a user:   {}",
            if policy.deactivate_on_disable {
                "deactivate it in MaaS360"
            } else {
                "leave it active in MaaS360"
            }
        ),
        format!(
            "Entra deletes a user:    {}",
            if policy.delete_on_delete {
                "delete it in MaaS360"
            } else {
                "deactivate it in MaaS360"
            }
        ),
        format!(
            "MaaS360 username:        {}",
            if policy.username_mapping == pb::UsernameMapping::Full as i32 {
                "the whole userName"
            } else {
                "the userName before '@'"
            }
        ),
        format!(
            "User with active device: {}",
            if policy.active_device == pb::ActiveDevicePolicy::Park as i32 {
                "park it for an operator"
            } else {
                "deactivate it instead of deleting"
            }
        ),
        format!(
            "Look-alike groups:       {}",
            if policy.lookalike_groups == pb::LookalikeGroupPolicy::Import as i32 {
                "import them (Option 2)"
            } else {
                "park them until mapped (Option 1)"
            }
        ),
    ]
}

fn secret(
    env: &Option<String>,
    file: &Option<String>,
) -> Option<dirsync_proto::common::v1::SecretReference> {
    let source = match (env, file) {
        (Some(name), _) => dirsync_proto::common::v1::secret_reference::Source::Env(name.clone()),
        (None, Some(path)) => {
            dirsync_proto::common::v1::secret_reference::Source::File(path.clone())
        }
        (None, None) => return None,
    };
    Some(dirsync_proto::common::v1::SecretReference {
        source: Some(source),
    })
}

impl Maas360Args {
    fn connection(&self) -> anyhow::Result<Option<pb::Maas360Connection>> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let missing = |flag: &str| anyhow::anyhow!("--maas360-url needs {flag} too");
        Ok(Some(pb::Maas360Connection {
            base_url: url.clone(),
            billing_id: self
                .billing_id
                .clone()
                .ok_or_else(|| missing("--billing-id"))?,
            admin_user: self
                .admin_user
                .clone()
                .ok_or_else(|| missing("--admin-user"))?,
            app_id: self.app_id.clone().ok_or_else(|| missing("--app-id"))?,
            app_version: self.app_version.clone(),
            platform_id: self.platform_id.clone(),
            password: Some(
                secret(&self.password_env, &self.password_file)
                    .ok_or_else(|| missing("--password-env or --password-file"))?,
            ),
            app_access_key: Some(
                secret(&self.access_key_env, &self.access_key_file)
                    .ok_or_else(|| missing("--access-key-env or --access-key-file"))?,
            ),
            routes_toml: match &self.routes {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading the routes file {}", path.display()))?,
                None => String::new(),
            },
        }))
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ModeArg {
    Push,
    Pull,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Maas360Command {
    /// What the tenant's MaaS360 accepts, route by route, before the first sync. Exits 0 only
    /// when every route the tenant's policy needs works.
    Probe {
        /// Tenant id or name.
        tenant: String,
        /// Also create, change and delete a throwaway user and user group (dirsync-probe-…),
        /// cleaning up even when a step fails.
        #[arg(long)]
        write: bool,
        /// One JSON object on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue a new SCIM token and revoke every earlier one.
    Rotate {
        /// Tenant id or name.
        tenant: String,
    },
}

pub(crate) async fn channel(config: &DirsyncConfig, server: &ServerArg) -> anyhow::Result<Channel> {
    channel_with_deadline(config, server, Duration::from_secs(30)).await
}

/// A channel for commands whose call reads a whole directory (a pull sync, drift, Option 1's
/// check, plan and verify): the server lets those run up to an hour.
pub(crate) async fn long_channel(
    config: &DirsyncConfig,
    server: &ServerArg,
) -> anyhow::Result<Channel> {
    channel_with_deadline(config, server, dirsync_runtime::grpc::LONG_REQUEST_TIMEOUT).await
}

async fn channel_with_deadline(
    config: &DirsyncConfig,
    server: &ServerArg,
    deadline: Duration,
) -> anyhow::Result<Channel> {
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
        .timeout(deadline)
        .connect()
        .await
        .with_context(|| format!("cannot reach dirsync at {url}; is `dirsync serve` running?"))
}

pub(crate) fn explain(status: tonic::Status) -> anyhow::Error {
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
        TenantCommand::Create {
            name,
            maas360,
            policy,
        } => {
            let created = client
                .create_tenant(pb::CreateTenantRequest {
                    name,
                    maas360: maas360.connection()?,
                    policy: Some(policy.to_pb()),
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
            match &tenant.maas360 {
                Some(maas360) => println!(
                    "  MaaS360:       {} (billing id {}, credentials checked)",
                    maas360.base_url, maas360.billing_id
                ),
                None => println!(
                    "  MaaS360:       not connected yet (dirsync tenant set-maas360 {} ...)",
                    tenant.name
                ),
            }
            println!();
            println!(
                "The token is shown only this once: paste it into Entra's \"Secret Token\" field."
            );
        }
        TenantCommand::SetMaas360 { tenant, maas360 } => {
            let connection = maas360
                .connection()?
                .ok_or_else(|| anyhow::anyhow!("--maas360-url is required"))?;
            let updated = client
                .set_maas360_connection(pb::SetMaas360ConnectionRequest {
                    tenant,
                    maas360: Some(connection),
                })
                .await
                .map_err(explain)?
                .into_inner();
            println!(
                "MaaS360 connection of tenant {} set and checked.",
                updated.tenant.map(|tenant| tenant.name).unwrap_or_default()
            );
        }
        TenantCommand::SetMode { tenant, mode } => {
            let mode = match mode {
                ModeArg::Push => pb::TenantMode::Push,
                ModeArg::Pull => pb::TenantMode::Pull,
            };
            let updated = client
                .set_tenant_mode(pb::SetTenantModeRequest {
                    tenant,
                    mode: mode as i32,
                })
                .await
                .map_err(explain)?
                .into_inner()
                .tenant
                .unwrap_or_default();
            let explanation = match mode {
                pb::TenantMode::Pull => {
                    "the pull sync writes it from Graph; SCIM writes are refused (reads still work)"
                }
                _ => "Entra's SCIM provisioning writes it; the pull sync only plans (--dry-run)",
            };
            println!(
                "Tenant {} is in {} mode: {explanation}.",
                updated.name,
                match mode {
                    pb::TenantMode::Pull => "pull",
                    _ => "push",
                }
            );
        }
        TenantCommand::SetEntra { tenant, entra } => {
            crate::pull::set_entra(config, server, tenant, entra).await?;
        }
        TenantCommand::SetPull { tenant, pull } => {
            crate::pull::set_pull(config, server, tenant, pull).await?;
        }
        TenantCommand::SetPolicy { tenant, policy } => {
            let updated = client
                .set_tenant_policy(pb::SetTenantPolicyRequest {
                    tenant,
                    policy: Some(policy.to_pb()),
                })
                .await
                .map_err(explain)?
                .into_inner()
                .tenant
                .unwrap_or_default();
            println!("Tenant {} policy set:", updated.name);
            for line in describe_policy(&updated.policy.unwrap_or_default()) {
                println!("  {line}");
            }
        }
        TenantCommand::List => {
            let mut page_token = String::new();
            println!("{:<34} {:<32} {:>6}", "TENANT ID", "NAME", "TOKENS");
            loop {
                let listed = client
                    .list_tenants(pb::ListTenantsRequest {
                        page_size: 200,
                        page_token: page_token.clone(),
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
                page_token = listed.next_page_token;
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
                .rotate_scim_token(pb::RotateScimTokenRequest { tenant })
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

pub(crate) async fn status(
    config: &DirsyncConfig,
    server: &ServerArg,
    tenant: String,
) -> anyhow::Result<()> {
    let mut work = pb::work_service_client::WorkServiceClient::new(channel(config, server).await?);
    let status = work
        .get_work_status(pb::GetWorkStatusRequest {
            tenant: tenant.clone(),
        })
        .await
        .map_err(explain)?
        .into_inner()
        .status
        .unwrap_or_default();
    println!("tenant {}", status.tenant_id);
    println!("  in sync:     {}", status.in_sync);
    println!("  queued:      {}", status.queue_depth);
    println!("  in flight:   {}", status.in_flight);
    println!("  parked:      {}", status.parked);
    println!(
        "  MaaS360:     {}",
        reachability(status.maas360_health.as_ref())
    );
    if let Some(health) = &status.maas360_health
        && !health.last_error.is_empty()
    {
        println!(
            "  last error:  {} ({})",
            health.last_error,
            time(health.last_error_time.as_ref())
        );
    }
    for line in crate::pull::status_lines(channel(config, server).await?, &tenant).await? {
        println!("  {line}");
    }
    let mut page_token = String::new();
    let mut header = true;
    loop {
        let parked = work
            .list_parked(pb::ListParkedRequest {
                tenant: tenant.clone(),
                page_size: 200,
                page_token,
            })
            .await
            .map_err(explain)?
            .into_inner();
        for resource in &parked.resources {
            if header {
                println!("\nparked resources (retry with: dirsync retry {tenant}):");
                header = false;
            }
            let kind = if resource.kind == dirsync_proto::common::v1::ResourceKind::Group as i32 {
                "group"
            } else {
                "user"
            };
            println!(
                "  {kind:<5} {} ({}) after {} attempt(s): {}",
                resource.display, resource.resource_id, resource.attempts, resource.reason
            );
        }
        page_token = parked.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    Ok(())
}

/// A protobuf time as people read it (RFC 3339, UTC).
pub(crate) fn time(at: Option<&prost_types::Timestamp>) -> String {
    let Some(at) = at else {
        return "-".to_owned();
    };
    let seconds = u64::try_from(at.seconds).unwrap_or(0);
    let nanos = u32::try_from(at.nanos).unwrap_or(0);
    let moment = std::time::UNIX_EPOCH + Duration::new(seconds, nanos);
    humantime::format_rfc3339_seconds(moment).to_string()
}

fn reachability(health: Option<&pb::Maas360Health>) -> String {
    let Some(health) = health else {
        return "unknown".to_owned();
    };
    match pb::Maas360Reachability::try_from(health.reachability) {
        Ok(pb::Maas360Reachability::Reachable) => "reachable".to_owned(),
        Ok(pb::Maas360Reachability::Unreachable) => format!(
            "unreachable since {}, next probe at {}",
            time(health.unreachable_since.as_ref()),
            time(health.next_probe_time.as_ref())
        ),
        _ => "no call made yet".to_owned(),
    }
}

/// Options of `dirsync audit`.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// Tenant id or name.
    tenant: String,
    /// Only this resource (a user or group id).
    #[arg(long)]
    resource: Option<String>,
    /// Only entries newer than this, e.g. 15m, 2h, 7d.
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// At most this many entries, newest first (0 for all).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn audit(
    config: &DirsyncConfig,
    server: &ServerArg,
    args: AuditArgs,
) -> anyhow::Result<()> {
    let channel = channel(config, server).await?;
    let mut work = pb::work_service_client::WorkServiceClient::new(channel);
    let since = args.since.map(|ago| {
        let at = std::time::SystemTime::now()
            .checked_sub(ago)
            .unwrap_or(std::time::UNIX_EPOCH);
        prost_types::Timestamp::from(at)
    });
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = work
            .list_audit_entries(pb::ListAuditEntriesRequest {
                tenant: args.tenant.clone(),
                resource_id: args.resource.clone().unwrap_or_default(),
                since,
                until: None,
                page_size: 1000,
                page_token,
            })
            .await
            .map_err(explain)?
            .into_inner();
        entries.extend(page.entries);
        if args.limit != 0 && entries.len() >= args.limit {
            entries.truncate(args.limit);
            break;
        }
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    let kind = |kind: i32| {
        if kind == dirsync_proto::common::v1::ResourceKind::Group as i32 {
            "group"
        } else {
            "user"
        }
    };
    if args.json {
        let entries: Vec<serde_json::Value> = entries
            .iter()
            .map(|entry| {
                serde_json::json!({
                    "at": time(entry.time.as_ref()),
                    "kind": kind(entry.kind),
                    "resource_id": entry.resource_id,
                    "route": entry.route,
                    "target": entry.target,
                    "outcome": entry.outcome,
                    "error": entry.error,
                    "worker": entry.worker,
                    "attempt_started_at": time(entry.attempt_start_time.as_ref()),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "tenant": args.tenant, "entries": entries })
        );
        return Ok(());
    }
    println!(
        "{:<20} {:<5} {:<32} {:<24} {:<14} {:<32} ERROR",
        "WHEN (UTC)", "KIND", "RESOURCE", "MAAS360 ROUTE", "OUTCOME", "TARGET"
    );
    for entry in &entries {
        println!(
            "{:<20} {:<5} {:<32} {:<24} {:<14} {:<32} {}",
            time(entry.time.as_ref()),
            kind(entry.kind),
            entry.resource_id,
            entry.route,
            entry.outcome,
            entry.target,
            entry.error
        );
    }
    Ok(())
}

pub(crate) async fn retry(
    config: &DirsyncConfig,
    server: &ServerArg,
    tenant: String,
    resources: Vec<String>,
) -> anyhow::Result<()> {
    let retried = pb::work_service_client::WorkServiceClient::new(channel(config, server).await?)
        .retry_parked(pb::RetryParkedRequest {
            tenant,
            resource_ids: resources,
            external_ids: Vec::new(),
        })
        .await
        .map_err(explain)?
        .into_inner();
    println!("{} parked resource(s) queued again.", retried.requeued);
    Ok(())
}

pub(crate) async fn maas360(
    config: &DirsyncConfig,
    server: &ServerArg,
    command: Maas360Command,
) -> anyhow::Result<bool> {
    let Maas360Command::Probe {
        tenant,
        write,
        json,
    } = command;
    let report =
        pb::tenant_service_client::TenantServiceClient::new(channel(config, server).await?)
            .probe_maas360(pb::ProbeMaas360Request {
                tenant: tenant.clone(),
                write,
            })
            .await
            .map_err(explain)?
            .into_inner();
    if json {
        let steps: Vec<serde_json::Value> = report
            .steps
            .iter()
            .map(|step| {
                serde_json::json!({
                    "route": step.route,
                    "method": step.method,
                    "path": step.path,
                    "evidence": step.evidence,
                    "outcome": step.outcome,
                    "http_status": step.http_status,
                    "error": step.error,
                    "note": step.note,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "tenant": tenant,
                "write": write,
                "passed": report.passed,
                "steps": steps,
                "leftovers": report.leftovers,
            })
        );
    } else {
        println!(
            "{:<26} {:<7} {:<10} {:<14} {:>6}  PATH / ERROR",
            "ROUTE", "METHOD", "EVIDENCE", "OUTCOME", "STATUS"
        );
        for step in &report.steps {
            let status = if step.http_status == 0 {
                String::new()
            } else {
                step.http_status.to_string()
            };
            println!(
                "{:<26} {:<7} {:<10} {:<14} {:>6}  {}",
                step.route, step.method, step.evidence, step.outcome, status, step.path
            );
            if !step.error.is_empty() {
                println!("{:>68}  {}", "", step.error);
            }
        }
        for leftover in &report.leftovers {
            println!("left behind (remove it in the MaaS360 portal): {leftover}");
        }
        println!(
            "\n{}",
            if report.passed {
                "Every route this tenant needs works."
            } else {
                "Some routes failed: fix them with a routes file (dirsync tenant set-maas360 … --routes FILE; see docs/maas360-routes.md)."
            }
        );
    }
    Ok(report.passed)
}
