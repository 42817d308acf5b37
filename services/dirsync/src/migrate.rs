//! `dirsync migrate` and `dirsync mapping`: IBM's Option 1 as commands. Check which option a
//! tenant needs, propose mappings, set them, plan (writing nothing), apply exactly the plan that
//! was reviewed, and verify that no device lost an app or a policy. Each command prints for
//! people, or one JSON object on stdout with `--json`.

use std::time::Duration;

use anyhow::Context;
use dirsync_proto::mapping::v1 as pb;
use dirsync_runtime::DirsyncConfig;
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::admin::{ServerArg, explain, long_channel};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum MigrateCommand {
    /// Recommend Option 1 (migrate existing MaaS360 groups) or Option 2 (import), and why.
    Check {
        /// Tenant id or name.
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Every MaaS360 user group that carries distributions, with ranked Entra candidates.
    Propose {
        /// Tenant id or name.
        tenant: String,
        /// Candidates shown per MaaS360 group.
        #[arg(long, default_value_t = 5)]
        max_candidates: i32,
        #[arg(long)]
        json: bool,
    },
    /// What applying the confirmed mappings would do, user by user; writes nothing.
    Plan {
        /// Tenant id or name.
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Carry out the plan with this id (from `migrate plan`); refused when anything changed.
    Apply {
        /// Tenant id or name.
        tenant: String,
        /// The plan_id `dirsync migrate plan` printed.
        #[arg(long = "plan")]
        plan_id: String,
        /// Return once the apply has started instead of waiting for it to finish.
        #[arg(long)]
        no_wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Compare every affected user's distributions, recorded before the apply, with MaaS360
    /// now. Exits 1 when a user lost one that the plan did not list.
    Verify {
        /// Tenant id or name.
        tenant: String,
        /// The apply operation to verify (default: the latest).
        #[arg(long)]
        operation: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ModeArg {
    /// The Entra group writes its members into the existing MaaS360 group.
    Adopt,
    /// A new MaaS360 group gets the existing group's distributions before any member moves.
    Copy,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum MappingCommand {
    /// Map an Entra group onto an existing MaaS360 user group (confirmed unless --proposed).
    Set {
        /// Tenant id or name.
        tenant: String,
        /// The Entra group: its object id or its display name.
        #[arg(long)]
        entra_group: String,
        /// The MaaS360 user group: its groupID or its name.
        #[arg(long)]
        maas360_group: String,
        #[arg(long, value_enum)]
        mode: ModeArg,
        /// Make the MaaS360 group mirror Entra exactly: members Entra lacks leave it (the plan
        /// lists what they lose). Without it, nobody is removed.
        #[arg(long)]
        prune: bool,
        /// Record it as proposed, for review, rather than confirmed.
        #[arg(long)]
        proposed: bool,
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's mappings.
    List {
        /// Tenant id or name.
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete the mapping of an Entra group (not once it is applied).
    Delete {
        /// Tenant id or name.
        tenant: String,
        /// The Entra group: its object id or its display name.
        #[arg(long)]
        entra_group: String,
        #[arg(long)]
        json: bool,
    },
}

type Client = pb::mapping_service_client::MappingServiceClient<Channel>;

async fn client(config: &DirsyncConfig, server: &ServerArg) -> anyhow::Result<Client> {
    Ok(pb::mapping_service_client::MappingServiceClient::new(
        long_channel(config, server).await?,
    ))
}

fn print_json(value: &Value) {
    println!("{value}");
}

fn kind_name(kind: i32) -> &'static str {
    match pb::DistributionKind::try_from(kind) {
        Ok(pb::DistributionKind::App) => "app",
        Ok(pb::DistributionKind::Policy) => "policy",
        _ => "unknown",
    }
}

fn mode_name(mode: i32) -> &'static str {
    match pb::MappingMode::try_from(mode) {
        Ok(pb::MappingMode::Adopt) => "adopt",
        Ok(pb::MappingMode::Copy) => "copy",
        _ => "unspecified",
    }
}

fn state_name(state: i32) -> &'static str {
    match pb::MappingState::try_from(state) {
        Ok(pb::MappingState::Proposed) => "proposed",
        Ok(pb::MappingState::Confirmed) => "confirmed",
        Ok(pb::MappingState::Applying) => "applying",
        Ok(pb::MappingState::Applied) => "applied",
        Ok(pb::MappingState::Verified) => "verified",
        Ok(pb::MappingState::Failed) => "failed",
        _ => "unspecified",
    }
}

fn distribution_json(distribution: &pb::Distribution) -> Value {
    json!({
        "kind": kind_name(distribution.kind),
        "id": distribution.id,
        "name": distribution.name,
        "platform": distribution.platform,
    })
}

fn mapping_json(mapping: &pb::Mapping) -> Value {
    json!({
        "mapping_id": mapping.mapping_id,
        "entra_group_id": mapping.entra_group_id,
        "entra_group": mapping.entra_group_name,
        "maas360_group_id": mapping.maas360_group_id,
        "maas360_group": mapping.maas360_group_name,
        "mode": mode_name(mapping.mode),
        "prune": mapping.prune,
        "state": state_name(mapping.state),
        "target_group_id": mapping.target_group_id,
        "target_group": mapping.target_group_name,
        "operation_id": mapping.operation_id,
        "last_error": mapping.last_error,
    })
}

fn loss_json(loss: &pb::Loss) -> Value {
    let distribution = loss.distribution.clone().unwrap_or_default();
    json!({
        "user": loss.user,
        "maas360_group": loss.maas360_group,
        "kind": kind_name(distribution.kind),
        "distribution": distribution.name,
        "distribution_id": distribution.id,
    })
}

fn members_json(members: &[pb::PlannedMember]) -> Value {
    Value::Array(
        members
            .iter()
            .map(|member| {
                json!({
                    "user": member.user,
                    "maas360_user_id": member.maas360_user_id,
                    "entra_user_id": member.entra_user_id,
                })
            })
            .collect(),
    )
}

fn plan_json(plan: &pb::MigrationPlan) -> Value {
    json!({
        "plan_id": plan.plan_id,
        "tenant_id": plan.tenant_id,
        "groups": plan.groups.iter().map(|group| json!({
            "mapping_id": group.mapping_id,
            "mode": mode_name(group.mode),
            "prune": group.prune,
            "entra_group_id": group.entra_group_id,
            "entra_group": group.entra_group_name,
            "maas360_group_id": group.maas360_group_id,
            "maas360_group": group.maas360_group_name,
            "target_group": group.target_group_name,
            "distributions": group.distributions.iter().map(distribution_json).collect::<Vec<_>>(),
            "joining": members_json(&group.joining),
            "staying": members_json(&group.staying),
            "leaving": members_json(&group.leaving),
            "legacy": members_json(&group.legacy),
        })).collect::<Vec<_>>(),
        "losses": plan.losses.iter().map(loss_json).collect::<Vec<_>>(),
        "unmatched_members": plan.unmatched_members.iter().map(|member| json!({
            "user": member.user,
            "maas360_group": member.maas360_group,
        })).collect::<Vec<_>>(),
    })
}

fn operation_json(operation: &pb::MigrationOperation) -> Value {
    json!({
        "operation_id": operation.operation_id,
        "plan_id": operation.plan_id,
        "state": match pb::OperationState::try_from(operation.state) {
            Ok(pb::OperationState::Running) => "running",
            Ok(pb::OperationState::Succeeded) => "succeeded",
            Ok(pb::OperationState::Failed) => "failed",
            _ => "unspecified",
        },
        "steps_total": operation.steps_total,
        "steps_done": operation.steps_done,
        "users_recorded": operation.users_recorded,
        "last_error": operation.last_error,
        "mappings": operation.mappings.iter().map(mapping_json).collect::<Vec<_>>(),
    })
}

/// Returns whether the command succeeded in its own terms (verify: no loss outside the plan).
pub(crate) async fn migrate(
    config: &DirsyncConfig,
    server: &ServerArg,
    command: MigrateCommand,
) -> anyhow::Result<bool> {
    let mut client = client(config, server).await?;
    match command {
        MigrateCommand::Check { tenant, json } => {
            let check = client
                .check_migration(pb::CheckMigrationRequest { tenant })
                .await
                .map_err(explain)?
                .into_inner();
            let option = match pb::MigrationOption::try_from(check.recommendation) {
                Ok(pb::MigrationOption::MigrateExisting) => "option1",
                Ok(pb::MigrationOption::ImportNew) => "option2",
                _ => "unknown",
            };
            if json {
                print_json(&json!({
                    "recommendation": option,
                    "reason": check.reason,
                    "maas360_user_groups": check.maas360_user_groups,
                    "groups_with_distributions": check.groups_with_distributions,
                    "entra_groups": check.entra_groups,
                    "resembled": check.resembled.iter().map(|proposal| json!({
                        "maas360_group": proposal.maas360_group_name,
                        "maas360_group_id": proposal.maas360_group_id,
                        "best_candidate": proposal.candidates.first().map(|c| json!({
                            "entra_group": c.entra_group_name,
                            "entra_group_id": c.entra_group_id,
                            "score": c.score,
                        })),
                    })).collect::<Vec<_>>(),
                }));
            } else {
                let title = match option {
                    "option1" => "Option 1: migrate the existing MaaS360 groups first",
                    "option2" => "Option 2: import Entra's users and groups",
                    _ => "no recommendation",
                };
                println!("{title}.");
                println!("{}", check.reason);
                println!(
                    "MaaS360: {} user group(s), {} with distributions. Entra: {} group(s).",
                    check.maas360_user_groups, check.groups_with_distributions, check.entra_groups
                );
                for proposal in &check.resembled {
                    if let Some(best) = proposal.candidates.first() {
                        println!(
                            "  {:<32} resembles Entra {:<32} (score {:.2})",
                            proposal.maas360_group_name, best.entra_group_name, best.score
                        );
                    }
                }
                if option == "option1" {
                    println!("Next: dirsync migrate propose <tenant>");
                }
            }
            Ok(true)
        }
        MigrateCommand::Propose {
            tenant,
            max_candidates,
            json,
        } => {
            let proposals = client
                .propose_mappings(pb::ProposeMappingsRequest {
                    tenant,
                    max_candidates,
                })
                .await
                .map_err(explain)?
                .into_inner()
                .proposals;
            if json {
                print_json(&json!({
                    "proposals": proposals.iter().map(|proposal| json!({
                        "maas360_group_id": proposal.maas360_group_id,
                        "maas360_group": proposal.maas360_group_name,
                        "member_count": proposal.member_count,
                        "distributions": proposal.distributions.iter().map(distribution_json).collect::<Vec<_>>(),
                        "mapping_id": proposal.mapping_id,
                        "candidates": proposal.candidates.iter().map(|c| json!({
                            "entra_group_id": c.entra_group_id,
                            "entra_group": c.entra_group_name,
                            "name_similarity": c.name_similarity,
                            "member_overlap": c.member_overlap,
                            "score": c.score,
                            "matched_members": c.matched_members,
                            "entra_members": c.entra_members,
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                }));
            } else if proposals.is_empty() {
                println!(
                    "No MaaS360 user group carries distributions: nothing to migrate (Option 2)."
                );
            } else {
                for proposal in &proposals {
                    println!(
                        "{} (groupID {}): {} member(s), {} distribution(s){}",
                        proposal.maas360_group_name,
                        proposal.maas360_group_id,
                        proposal.member_count,
                        proposal.distributions.len(),
                        if proposal.mapping_id.is_empty() {
                            String::new()
                        } else {
                            format!(", mapped ({})", proposal.mapping_id)
                        }
                    );
                    if proposal.candidates.is_empty() {
                        println!("    no Entra group resembles it");
                    }
                    for candidate in &proposal.candidates {
                        println!(
                            "    {:.2}  {:<32} name {:.2}, members {:.2} ({} of {} Entra members match)  --entra-group {}",
                            candidate.score,
                            candidate.entra_group_name,
                            candidate.name_similarity,
                            candidate.member_overlap,
                            candidate.matched_members,
                            candidate.entra_members,
                            candidate.entra_group_id
                        );
                    }
                }
            }
            Ok(true)
        }
        MigrateCommand::Plan { tenant, json } => {
            let plan = client
                .plan_migration(pb::PlanMigrationRequest { tenant })
                .await
                .map_err(explain)?
                .into_inner()
                .plan
                .unwrap_or_default();
            if json {
                print_json(&plan_json(&plan));
            } else {
                print_plan(&plan);
            }
            Ok(true)
        }
        MigrateCommand::Apply {
            tenant,
            plan_id,
            no_wait,
            json,
        } => {
            let mut operation = client
                .apply_migration(pb::ApplyMigrationRequest {
                    tenant: tenant.clone(),
                    plan_id,
                })
                .await
                .map_err(explain)?
                .into_inner()
                .operation
                .unwrap_or_default();
            if !no_wait {
                operation = wait_for(&mut client, &tenant, operation, json).await?;
            }
            let failed = operation.state == pb::OperationState::Failed as i32;
            if json {
                print_json(&operation_json(&operation));
            } else {
                println!(
                    "Operation {}: {} ({} of {} steps; {} users' distributions recorded).",
                    operation.operation_id,
                    operation_json(&operation)["state"]
                        .as_str()
                        .unwrap_or("unknown"),
                    operation.steps_done,
                    operation.steps_total,
                    operation.users_recorded
                );
                if !operation.last_error.is_empty() {
                    println!("Last error: {}", operation.last_error);
                }
                if operation.state == pb::OperationState::Succeeded as i32 {
                    println!("Next: let Entra provision, then dirsync migrate verify {tenant}");
                }
            }
            Ok(!failed)
        }
        MigrateCommand::Verify {
            tenant,
            operation,
            json,
        } => {
            let verified = client
                .verify_migration(pb::VerifyMigrationRequest {
                    tenant,
                    operation_id: operation.unwrap_or_default(),
                })
                .await
                .map_err(explain)?
                .into_inner();
            if json {
                print_json(&json!({
                    "ok": verified.ok,
                    "operation_id": verified.operation_id,
                    "users_checked": verified.users_checked,
                    "distributions_checked": verified.distributions_checked,
                    "losses": verified.losses.iter().map(|verified| {
                        let mut loss = loss_json(&verified.loss.clone().unwrap_or_default());
                        loss["accepted"] = json!(verified.accepted);
                        loss
                    }).collect::<Vec<_>>(),
                }));
            } else {
                println!(
                    "Checked {} distribution(s) of {} user(s) against operation {}.",
                    verified.distributions_checked, verified.users_checked, verified.operation_id
                );
                for verified_loss in &verified.losses {
                    let loss = verified_loss.loss.clone().unwrap_or_default();
                    let distribution = loss.distribution.unwrap_or_default();
                    println!(
                        "  {} {} no longer receives {} {:?} (from {}){}",
                        if verified_loss.accepted {
                            "accepted"
                        } else {
                            "LOST    "
                        },
                        loss.user,
                        kind_name(distribution.kind),
                        distribution.name,
                        loss.maas360_group,
                        if verified_loss.accepted {
                            ": the plan listed it"
                        } else {
                            ""
                        }
                    );
                }
                println!(
                    "{}",
                    if verified.ok {
                        "No device lost an app or a policy the plan did not list."
                    } else {
                        "Some users lost distributions the plan did not list."
                    }
                );
            }
            Ok(verified.ok)
        }
    }
}

fn print_plan(plan: &pb::MigrationPlan) {
    println!("Plan {} for tenant {}", plan.plan_id, plan.tenant_id);
    if plan.groups.is_empty() {
        println!("  no confirmed mapping: nothing to do (see dirsync mapping list)");
    }
    for group in &plan.groups {
        println!(
            "  {} -> {} ({}{}): writes into {:?}",
            group.entra_group_name,
            group.maas360_group_name,
            mode_name(group.mode),
            if group.prune { ", prune" } else { "" },
            group.target_group_name
        );
        let apps = group
            .distributions
            .iter()
            .filter(|d| d.kind == pb::DistributionKind::App as i32)
            .count();
        println!(
            "    distributions: {apps} app(s), {} policy(ies){}",
            group.distributions.len() - apps,
            if group.mode == pb::MappingMode::Copy as i32 {
                ", copied onto the new group before any member"
            } else {
                ", kept where they are"
            }
        );
        println!(
            "    members: {} join, {} stay, {} leave, {} legacy (kept)",
            group.joining.len(),
            group.staying.len(),
            group.leaving.len(),
            group.legacy.len()
        );
        for member in &group.leaving {
            println!("      leaves: {}", member.user);
        }
    }
    if plan.losses.is_empty() {
        println!("Losses: none. No user loses an app or a policy.");
    } else {
        println!("Losses ({}):", plan.losses.len());
        for loss in &plan.losses {
            let distribution = loss.distribution.clone().unwrap_or_default();
            println!(
                "  {} loses {} {:?} (from {})",
                loss.user,
                kind_name(distribution.kind),
                distribution.name,
                loss.maas360_group
            );
        }
    }
    if !plan.unmatched_members.is_empty() {
        println!(
            "MaaS360 members no Entra user matches ({}):",
            plan.unmatched_members.len()
        );
        for member in &plan.unmatched_members {
            println!("  {} in {}", member.user, member.maas360_group);
        }
    }
    println!(
        "Apply exactly this plan with: dirsync migrate apply {} --plan {}",
        plan.tenant_id, plan.plan_id
    );
}

/// Follows an apply until it succeeds or fails, with its progress on stderr (stdout stays one
/// JSON object with --json).
async fn wait_for(
    client: &mut Client,
    tenant: &str,
    mut operation: pb::MigrationOperation,
    quiet: bool,
) -> anyhow::Result<pb::MigrationOperation> {
    let mut last = (u32::MAX, u32::MAX);
    while operation.state == pb::OperationState::Running as i32 {
        if !quiet && last != (operation.steps_done, operation.steps_total) {
            eprintln!(
                "applying: {} of {} steps",
                operation.steps_done, operation.steps_total
            );
            last = (operation.steps_done, operation.steps_total);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        operation = client
            .get_migration_operation(pb::GetMigrationOperationRequest {
                tenant: tenant.to_owned(),
                operation_id: operation.operation_id.clone(),
            })
            .await
            .map_err(explain)?
            .into_inner()
            .operation
            .context("the mapping service answered without the operation")?;
    }
    Ok(operation)
}

fn group_key(value: &str) -> pb::GroupKey {
    pb::GroupKey {
        key: Some(pb::group_key::Key::IdOrName(value.to_owned())),
    }
}

pub(crate) async fn mapping(
    config: &DirsyncConfig,
    server: &ServerArg,
    command: MappingCommand,
) -> anyhow::Result<()> {
    let mut client = client(config, server).await?;
    match command {
        MappingCommand::Set {
            tenant,
            entra_group,
            maas360_group,
            mode,
            prune,
            proposed,
            json,
        } => {
            let mapping = client
                .create_mapping(pb::CreateMappingRequest {
                    tenant,
                    entra_group: Some(group_key(&entra_group)),
                    maas360_group: Some(group_key(&maas360_group)),
                    mode: match mode {
                        ModeArg::Adopt => pb::MappingMode::Adopt,
                        ModeArg::Copy => pb::MappingMode::Copy,
                    } as i32,
                    prune,
                    state: if proposed {
                        pb::MappingState::Proposed
                    } else {
                        pb::MappingState::Confirmed
                    } as i32,
                })
                .await
                .map_err(explain)?
                .into_inner()
                .mapping
                .unwrap_or_default();
            if json {
                print_json(&mapping_json(&mapping));
            } else {
                println!(
                    "Mapping {}: Entra {:?} -> MaaS360 {:?} ({}{}), {}.",
                    mapping.mapping_id,
                    mapping.entra_group_name,
                    mapping.maas360_group_name,
                    mode_name(mapping.mode),
                    if mapping.prune { ", prune" } else { "" },
                    state_name(mapping.state)
                );
                println!("Next: dirsync migrate plan <tenant>");
            }
        }
        MappingCommand::List { tenant, json } => {
            let mut mappings = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_mappings(pb::ListMappingsRequest {
                        tenant: tenant.clone(),
                        page_size: 500,
                        page_token,
                    })
                    .await
                    .map_err(explain)?
                    .into_inner();
                mappings.extend(page.mappings);
                page_token = page.next_page_token;
                if page_token.is_empty() {
                    break;
                }
            }
            if json {
                print_json(&json!({
                    "mappings": mappings.iter().map(mapping_json).collect::<Vec<_>>(),
                }));
            } else {
                println!(
                    "{:<34} {:<28} {:<28} {:<6} {:<10}",
                    "MAPPING", "ENTRA GROUP", "MAAS360 GROUP", "MODE", "STATE"
                );
                for mapping in &mappings {
                    println!(
                        "{:<34} {:<28} {:<28} {:<6} {:<10}",
                        mapping.mapping_id,
                        mapping.entra_group_name,
                        mapping.maas360_group_name,
                        mode_name(mapping.mode),
                        state_name(mapping.state)
                    );
                }
            }
        }
        MappingCommand::Delete {
            tenant,
            entra_group,
            json,
        } => {
            client
                .delete_mapping(pb::DeleteMappingRequest {
                    tenant,
                    target: Some(pb::delete_mapping_request::Target::EntraGroup(group_key(
                        &entra_group,
                    ))),
                })
                .await
                .map_err(explain)?;
            if json {
                print_json(&json!({"deleted": true, "entra_group": entra_group}));
            } else {
                println!("The mapping of Entra group {entra_group:?} is deleted.");
            }
        }
    }
    Ok(())
}
