//! The pull sync as commands: a tenant's Entra connection and pull settings, `dirsync sync`
//! (read Entra through Graph, write the difference into the desired state, or only plan it)
//! and `dirsync drift` (Entra, dirsync and MaaS360 side by side; exit 1 on any difference, for
//! cron).

use anyhow::Context;
use dirsync_proto::common::v1 as common;
use dirsync_proto::directory::v1 as pb;
use dirsync_runtime::DirsyncConfig;
use serde_json::{Value, json};

use crate::admin::{ServerArg, channel, explain, long_channel};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CloudArg {
    /// login.microsoftonline.com and graph.microsoft.com.
    Global,
    /// US Government GCC High: login.microsoftonline.us and graph.microsoft.us.
    GccHigh,
}

/// An Entra app registration, by reference: secrets are read by the serving process from an
/// environment variable or a file, never given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct EntraArgs {
    /// The Entra directory (tenant) id or a verified domain.
    #[arg(long)]
    entra_tenant_id: String,
    /// The app registration's application (client) id.
    #[arg(long)]
    client_id: String,
    /// Environment variable (of the serving process) holding the client secret.
    #[arg(long, group = "credential")]
    client_secret_env: Option<String>,
    /// File (readable by the serving process) holding the client secret.
    #[arg(long, group = "credential")]
    client_secret_file: Option<String>,
    /// PEM file (readable by the serving process) with the certificate and its private key.
    #[arg(long, group = "credential")]
    certificate_file: Option<String>,
    #[arg(long, value_enum, default_value = "global")]
    cloud: CloudArg,
    /// Login host, e.g. https://login.microsoftonline.com (overrides --cloud, with --graph-url).
    #[arg(long, requires = "graph_url")]
    login_url: Option<String>,
    /// Graph host, e.g. https://graph.microsoft.com (overrides --cloud, with --login-url).
    #[arg(long, requires = "login_url")]
    graph_url: Option<String>,
}

impl EntraArgs {
    fn connection(&self) -> anyhow::Result<pb::EntraConnection> {
        let reference = |source| common::SecretReference {
            source: Some(source),
        };
        let credential = match (
            &self.client_secret_env,
            &self.client_secret_file,
            &self.certificate_file,
        ) {
            (Some(var), _, _) => pb::entra_connection::Credential::ClientSecret(reference(
                common::secret_reference::Source::Env(var.clone()),
            )),
            (_, Some(path), _) => pb::entra_connection::Credential::ClientSecret(reference(
                common::secret_reference::Source::File(path.clone()),
            )),
            (_, _, Some(path)) => pb::entra_connection::Credential::Certificate(reference(
                common::secret_reference::Source::File(path.clone()),
            )),
            _ => anyhow::bail!(
                "give the credential: --client-secret-env, --client-secret-file or --certificate-file"
            ),
        };
        let (cloud, login_url, graph_url) = match (&self.login_url, &self.graph_url) {
            (Some(login), Some(graph)) => (pb::EntraCloud::Custom, login.clone(), graph.clone()),
            _ => (
                match self.cloud {
                    CloudArg::Global => pb::EntraCloud::Global,
                    CloudArg::GccHigh => pb::EntraCloud::GccHigh,
                },
                String::new(),
                String::new(),
            ),
        };
        Ok(pb::EntraConnection {
            entra_tenant_id: self.entra_tenant_id.clone(),
            client_id: self.client_id.clone(),
            credential: Some(credential),
            cloud: cloud as i32,
            login_url,
            graph_url,
        })
    }
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PullArgs {
    /// Sync only these groups (display names or object ids, comma-separated) and their
    /// transitive members; none syncs the whole directory.
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// The Entra user attribute that becomes the userName (default userPrincipalName).
    #[arg(long)]
    username_attribute: Option<String>,
    /// Percent of the tenant's users a run may disable or delete without --force.
    #[arg(long, default_value_t = 20)]
    deletion_guard_percent: u32,
}

fn client(
    channel: tonic::transport::Channel,
) -> pb::directory_reader_service_client::DirectoryReaderServiceClient<tonic::transport::Channel> {
    pb::directory_reader_service_client::DirectoryReaderServiceClient::new(channel)
}

/// `dirsync tenant set-entra`.
pub(crate) async fn set_entra(
    config: &DirsyncConfig,
    server: &ServerArg,
    tenant: String,
    entra: EntraArgs,
) -> anyhow::Result<()> {
    let set = client(channel(config, server).await?)
        .set_entra_connection(pb::SetEntraConnectionRequest {
            tenant: tenant.clone(),
            connection: Some(entra.connection()?),
        })
        .await
        .map_err(explain)?
        .into_inner();
    println!(
        "Tenant {tenant} reads Entra organization {:?} through Microsoft Graph (checked: a token and one read).",
        set.organization
    );
    Ok(())
}

/// `dirsync tenant set-pull`.
pub(crate) async fn set_pull(
    config: &DirsyncConfig,
    server: &ServerArg,
    tenant: String,
    pull: PullArgs,
) -> anyhow::Result<()> {
    let settings = client(channel(config, server).await?)
        .set_pull_settings(pb::SetPullSettingsRequest {
            tenant: tenant.clone(),
            settings: Some(pb::PullSettings {
                group_scope: pull.groups,
                username_attribute: pull.username_attribute.unwrap_or_default(),
                deletion_guard_percent: pull.deletion_guard_percent,
            }),
        })
        .await
        .map_err(explain)?
        .into_inner()
        .settings
        .unwrap_or_default();
    println!("Tenant {tenant} pull settings:");
    println!(
        "  scope:          {}",
        if settings.group_scope.is_empty() {
            "the whole directory".to_owned()
        } else {
            settings.group_scope.join(", ")
        }
    );
    println!(
        "  userName from:  {}",
        if settings.username_attribute.is_empty() {
            "userPrincipalName"
        } else {
            &settings.username_attribute
        }
    );
    println!(
        "  deletion guard: {}% of the tenant's users",
        settings.deletion_guard_percent
    );
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SyncArgs {
    /// Tenant id or name.
    tenant: String,
    /// Read everything (and remove what disappeared) instead of the changes since last time.
    #[arg(long)]
    full: bool,
    /// Print the plan; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// This run's group scope (display names or object ids, comma-separated).
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// Go on past the deletion guard.
    #[arg(long)]
    force: bool,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn plan_json(plan: &pb::SyncPlan, applied: bool) -> Value {
    json!({
        "applied": applied,
        "full": plan.full,
        "resynced": plan.resynced,
        "users_before": plan.users_before,
        "graph_calls": plan.graph_calls,
        "guard": plan.guard,
        "counts": {
            "user_creates": plan.user_creates,
            "user_updates": plan.user_updates,
            "user_disables": plan.user_disables,
            "user_enables": plan.user_enables,
            "user_deletes": plan.user_deletes,
            "group_creates": plan.group_creates,
            "group_updates": plan.group_updates,
            "group_deletes": plan.group_deletes,
            "membership_adds": plan.membership_adds,
            "membership_removes": plan.membership_removes,
        },
        "samples": plan.samples.iter().map(|change| json!({
            "action": change.action,
            "name": change.name,
            "detail": change.detail,
        })).collect::<Vec<_>>(),
    })
}

/// `dirsync sync`. Returns false when the deletion guard stopped the run.
pub(crate) async fn sync(
    config: &DirsyncConfig,
    server: &ServerArg,
    args: SyncArgs,
) -> anyhow::Result<bool> {
    let synced = client(long_channel(config, server).await?)
        .sync_tenant(pb::SyncTenantRequest {
            tenant: args.tenant.clone(),
            full: args.full,
            dry_run: args.dry_run,
            group_scope: args.groups,
            force: args.force,
        })
        .await
        .map_err(explain)?
        .into_inner();
    let plan = synced.plan.unwrap_or_default();
    let stopped = !plan.guard.is_empty() && !synced.applied;
    if args.json {
        println!("{}", plan_json(&plan, synced.applied));
        return Ok(!stopped);
    }
    let verb = if synced.applied {
        "Applied"
    } else if args.dry_run {
        "Would apply (dry run, nothing written)"
    } else {
        "Stopped before applying"
    };
    println!(
        "{verb}: a {} read of Entra{} ({} Graph calls; {} users before).",
        if plan.full { "full" } else { "delta" },
        if plan.resynced {
            ", because Graph expired the delta"
        } else {
            ""
        },
        plan.graph_calls,
        plan.users_before
    );
    for (label, count) in [
        ("users created", plan.user_creates),
        ("users updated", plan.user_updates),
        ("users disabled", plan.user_disables),
        ("users enabled", plan.user_enables),
        ("users deleted", plan.user_deletes),
        ("groups created", plan.group_creates),
        ("groups updated", plan.group_updates),
        ("groups deleted", plan.group_deletes),
        ("memberships added", plan.membership_adds),
        ("memberships removed", plan.membership_removes),
    ] {
        println!("  {label:<20} {count:>8}");
    }
    for change in &plan.samples {
        println!(
            "    {:<18} {} {}",
            change.action, change.name, change.detail
        );
    }
    if !plan.guard.is_empty() {
        println!("Deletion guard: {}", plan.guard);
        if stopped {
            println!("Nothing was written. Repeat with --force if this is intended.");
        }
    }
    Ok(!stopped)
}

fn kind(kind: i32) -> &'static str {
    match common::ResourceKind::try_from(kind) {
        Ok(common::ResourceKind::User) => "user",
        Ok(common::ResourceKind::Group) => "group",
        _ => "?",
    }
}

/// `dirsync drift`. Returns whether the three sides agree.
pub(crate) async fn drift(
    config: &DirsyncConfig,
    server: &ServerArg,
    tenant: String,
    json: bool,
) -> anyhow::Result<bool> {
    let drift = client(long_channel(config, server).await?)
        .get_drift(pb::GetDriftRequest {
            tenant: tenant.clone(),
        })
        .await
        .map_err(explain)?
        .into_inner();
    let clean = drift.differences.is_empty();
    if json {
        println!(
            "{}",
            json!({
                "drift": !clean,
                "entra_users": drift.entra_users,
                "dirsync_users": drift.dirsync_users,
                "maas360_users": drift.maas360_users,
                "differences": drift.differences.iter().map(|d| json!({
                    "kind": kind(d.kind),
                    "name": d.name,
                    "attribute": d.attribute,
                    "entra": d.entra,
                    "dirsync": d.dirsync,
                    "maas360": d.maas360,
                })).collect::<Vec<_>>(),
            })
        );
        return Ok(clean);
    }
    println!(
        "Users: Entra {}, dirsync {}, MaaS360 {}.",
        drift.entra_users, drift.dirsync_users, drift.maas360_users
    );
    if clean {
        println!("No drift: Entra, dirsync and MaaS360 agree.");
        return Ok(true);
    }
    println!(
        "{:<6} {:<36} {:<12} {:<24} {:<24} {:<24}",
        "KIND", "NAME", "ATTRIBUTE", "ENTRA", "DIRSYNC", "MAAS360"
    );
    for d in &drift.differences {
        println!(
            "{:<6} {:<36} {:<12} {:<24} {:<24} {:<24}",
            kind(d.kind),
            d.name,
            d.attribute,
            d.entra,
            d.dirsync,
            d.maas360
        );
    }
    println!("{} difference(s).", drift.differences.len());
    Ok(false)
}

/// Lines for `dirsync status`: the pull sync's last run and next one, when the tenant has an
/// Entra connection.
pub(crate) async fn status_lines(
    channel: tonic::transport::Channel,
    tenant: &str,
) -> anyhow::Result<Vec<String>> {
    let state = match client(channel)
        .get_sync_state(pb::GetSyncStateRequest {
            tenant: tenant.to_owned(),
        })
        .await
    {
        Ok(state) => state.into_inner().state.unwrap_or_default(),
        // No Entra connection (or a directory-reader that does not serve the state): the
        // tenant has no pull sync to show.
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::NotFound
                    | tonic::Code::FailedPrecondition
                    | tonic::Code::Unimplemented
            ) =>
        {
            return Ok(Vec::new());
        }
        Err(status) => return Err(explain(status)).context("reading the pull sync's state"),
    };
    let when = |at: &Option<prost_types::Timestamp>| match at {
        Some(at) => crate::admin::time(Some(at)),
        None => "never".to_owned(),
    };
    Ok(vec![
        format!(
            "Pull sync:   last {} ({}), last full {}",
            when(&state.last_sync_time),
            if state.last_outcome.is_empty() {
                "not run yet"
            } else {
                &state.last_outcome
            },
            when(&state.last_full_sync_time)
        ),
        format!(
            "             next {}; {} users and {} groups read from Entra",
            match &state.next_sync_time {
                Some(_) => when(&state.next_sync_time),
                None => "not scheduled (push mode, or scheduling off)".to_owned(),
            },
            state.users,
            state.groups
        ),
    ])
}
