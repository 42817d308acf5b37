//! The demo's Option 1 phase (docs/maas360.md §8): MaaS360 starts as a customer has it before
//! Entra, with local users (with devices) and user groups carrying apps and policies that
//! resemble Entra's groups. The demo checks, proposes, confirms the best candidates, plans,
//! applies, lets Entra provision, and verifies that no device lost a distribution.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use dirsync_emulators::convergence::Legacy;
use dirsync_emulators::maas360::{Device, Distribution, Seed, SeedGroup, SeedUser};
use dirsync_entra_simulator::Directory;
use dirsync_proto::mapping::v1 as pb;
use tonic::transport::Channel;

use crate::progress::Bar;

/// How the demo maps one legacy group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The same name as the Entra group: adopted.
    Same,
    /// A look-alike name (case and punctuation): adopted.
    LookAlike,
    /// Another name: copied onto a new group named after the Entra group.
    Renamed,
}

/// What MaaS360 held before Entra, and what the migration should keep of it.
pub(crate) struct LegacyTenant {
    pub(crate) seed: Seed,
    /// Entra group object id → (MaaS360 group name, mode).
    groups: BTreeMap<String, (String, Shape)>,
    /// MaaS360 groups that stay as they were.
    kept_groups: BTreeSet<String>,
    /// Legacy-only users, `username@domain`.
    legacy_users: BTreeSet<String>,
    /// Per legacy group name: its legacy-only members.
    legacy_members: BTreeMap<String, BTreeSet<String>>,
    pub(crate) distributions: usize,
}

fn local_and_domain(upn: &str) -> (String, String) {
    match upn.split_once('@') {
        Some((local, domain)) => (local.to_owned(), domain.to_owned()),
        None => (upn.to_owned(), String::new()),
    }
}

/// The name a customer's admin might have given a group before Entra: "Office London" as
/// "OFFICE-LONDON".
fn look_alike(name: &str) -> String {
    name.to_uppercase().replace(' ', "-")
}

/// MaaS360 before Entra: `count` user groups resembling Entra groups (each with an app and a
/// policy, most of the Entra group's members as local users with an iPhone, and one person of
/// its own), and one group no Entra group resembles.
pub(crate) fn legacy_tenant(directory: &Directory, count: usize) -> LegacyTenant {
    let enabled: BTreeMap<&str, &dirsync_entra_simulator::DirectoryUser> = directory
        .users
        .iter()
        .filter(|user| user.account_enabled)
        .map(|user| (user.object_id.as_str(), user))
        .collect();
    let domain = directory
        .users
        .first()
        .map(|user| local_and_domain(&user.user_principal_name).1)
        .unwrap_or_else(|| "contoso.example".to_owned());
    let mut candidates: Vec<&dirsync_entra_simulator::DirectoryGroup> = directory
        .groups
        .iter()
        .filter(|group| {
            group
                .members
                .iter()
                .filter(|m| enabled.contains_key(m.as_str()))
                .count()
                >= 3
        })
        .collect();
    candidates.sort_by(|a, b| a.display_name.cmp(&b.display_name));

    let mut users: BTreeMap<String, SeedUser> = BTreeMap::new();
    let mut device = 0usize;
    let mut with_device = |user_name: String, domain: String, email: String, full_name: String| {
        device += 1;
        SeedUser {
            user_name,
            domain,
            email,
            full_name,
            devices: vec![Device {
                csn: format!("DEMO-IPHONE-{device:05}"),
                platform: "iOS".to_owned(),
                active: true,
            }],
            ..SeedUser::default()
        }
    };
    let mut tenant = LegacyTenant {
        seed: Seed::default(),
        groups: BTreeMap::new(),
        kept_groups: BTreeSet::new(),
        legacy_users: BTreeSet::new(),
        legacy_members: BTreeMap::new(),
        distributions: 0,
    };
    for (index, group) in candidates.into_iter().take(count).enumerate() {
        let shape = match index % 3 {
            0 => Shape::Same,
            1 => Shape::LookAlike,
            _ => Shape::Renamed,
        };
        let name = match shape {
            Shape::Same => group.display_name.clone(),
            Shape::LookAlike => look_alike(&group.display_name),
            Shape::Renamed => format!("{} (MaaS360)", group.display_name),
        };
        let entra_members: Vec<&&dirsync_entra_simulator::DirectoryUser> = group
            .members
            .iter()
            .filter_map(|id| enabled.get(id.as_str()))
            .collect();
        // Most of Entra's members are already there, as local users with a device.
        let mut members = Vec::new();
        for user in entra_members.iter().take(entra_members.len() * 3 / 5 + 1) {
            let (local, user_domain) = local_and_domain(&user.user_principal_name);
            members.push(format!("{local}@{user_domain}"));
            users
                .entry(format!("{local}@{user_domain}"))
                .or_insert_with(|| {
                    with_device(
                        local,
                        user_domain,
                        user.mail.clone(),
                        user.display_name.clone(),
                    )
                });
        }
        // And one person of its own, whom Entra does not have.
        let own = format!("legacy.member{index}");
        let own_key = format!("{own}@{domain}");
        users.insert(
            own_key.clone(),
            with_device(
                own.clone(),
                domain.clone(),
                own_key.clone(),
                format!("Legacy Member {index}"),
            ),
        );
        members.push(own_key.clone());
        tenant.legacy_users.insert(own_key.to_lowercase());
        match shape {
            Shape::Renamed => {
                tenant.kept_groups.insert(name.clone());
            }
            _ => {
                tenant
                    .legacy_members
                    .entry(name.clone())
                    .or_default()
                    .insert(own_key.to_lowercase());
            }
        }
        tenant.seed.groups.push(SeedGroup {
            name: name.clone(),
            members,
            apps: vec![Distribution {
                id: format!("com.contoso.app{index}"),
                name: format!("Contoso App {index}"),
                platform: "iOS".to_owned(),
                app_type: "2".to_owned(),
            }],
            policies: vec![Distribution {
                id: format!("policy-{index}"),
                name: format!("{} policy", group.display_name),
                platform: "iOS".to_owned(),
                app_type: String::new(),
            }],
            ..SeedGroup::default()
        });
        tenant.distributions += 2;
        tenant.groups.insert(group.object_id.clone(), (name, shape));
    }
    // A group nobody in Entra resembles: left exactly as it is.
    let kiosk = "legacy.kiosk".to_owned();
    let kiosk_key = format!("{kiosk}@{domain}");
    users.insert(
        kiosk_key.clone(),
        with_device(
            kiosk,
            domain.clone(),
            kiosk_key.clone(),
            "Lobby Kiosk".to_owned(),
        ),
    );
    tenant.legacy_users.insert(kiosk_key.to_lowercase());
    tenant.kept_groups.insert("Lobby Kiosks".to_owned());
    tenant.seed.groups.push(SeedGroup {
        name: "Lobby Kiosks".to_owned(),
        members: vec![kiosk_key],
        apps: vec![Distribution {
            id: "com.contoso.kiosk".to_owned(),
            name: "Kiosk Browser".to_owned(),
            platform: "iOS".to_owned(),
            app_type: "2".to_owned(),
        }],
        ..SeedGroup::default()
    });
    tenant.seed.users = users.into_values().collect();
    tenant
}

impl LegacyTenant {
    pub(crate) fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// What the comparison should allow once `directory` (as Entra holds it now) is
    /// provisioned: adopted groups under their MaaS360 names, the rest kept as it was.
    pub(crate) fn legacy(&self, directory: &Directory) -> Legacy {
        let mut legacy = Legacy {
            groups: self.kept_groups.clone(),
            users: self.legacy_users.clone(),
            members: self.legacy_members.clone(),
            ..Legacy::default()
        };
        for group in &directory.groups {
            if let Some((name, shape)) = self.groups.get(&group.object_id)
                && *shape != Shape::Renamed
                && *name != group.display_name
            {
                legacy
                    .group_targets
                    .insert(group.display_name.clone(), name.clone());
            }
        }
        legacy
    }
}

/// What the migration did, for the summary.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct Migrated {
    pub(crate) recommendation: String,
    pub(crate) mappings: usize,
    pub(crate) plan_losses: usize,
    pub(crate) distributions_kept: u32,
    pub(crate) distributions_lost: u32,
    pub(crate) users_checked: u32,
}

fn key(value: &str) -> pb::GroupKey {
    pb::GroupKey {
        key: Some(pb::group_key::Key::Id(value.to_owned())),
    }
}

/// Check, propose, map each proposal's best candidate (adopt, or copy where the names differ
/// beyond look-alike), plan, and apply exactly that plan.
pub(crate) async fn migrate(
    channel: Channel,
    tenant: &str,
    legacy: &LegacyTenant,
) -> anyhow::Result<Migrated> {
    let mut mapping = pb::mapping_service_client::MappingServiceClient::new(channel);
    let bar = Bar::new("Option 1 migration");
    let check = mapping
        .check_migration(pb::CheckMigrationRequest {
            tenant: tenant.to_owned(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("migrate check: {}", status.message()))?
        .into_inner();
    let recommendation = match pb::MigrationOption::try_from(check.recommendation) {
        Ok(pb::MigrationOption::MigrateExisting) => "Option 1",
        Ok(pb::MigrationOption::ImportNew) => "Option 2",
        _ => "none",
    };
    let proposals = mapping
        .propose_mappings(pb::ProposeMappingsRequest {
            tenant: tenant.to_owned(),
            max_candidates: 3,
        })
        .await
        .map_err(|status| anyhow::anyhow!("migrate propose: {}", status.message()))?
        .into_inner()
        .proposals;
    let mut mapped = 0;
    for proposal in &proposals {
        let Some(best) = proposal.candidates.first() else {
            continue;
        };
        // An operator confirms a candidate that clearly matches, by name or by members.
        if best.score < 0.5 {
            continue;
        }
        let shape = legacy
            .groups
            .get(&best.entra_group_id)
            .map(|(_, shape)| *shape)
            .unwrap_or(Shape::Same);
        let mode = if shape == Shape::Renamed {
            pb::MappingMode::Copy
        } else {
            pb::MappingMode::Adopt
        };
        mapping
            .create_mapping(pb::CreateMappingRequest {
                tenant: tenant.to_owned(),
                entra_group: Some(key(&best.entra_group_id)),
                maas360_group: Some(key(&proposal.maas360_group_id)),
                mode: mode as i32,
                prune: false,
                state: pb::MappingState::Confirmed as i32,
            })
            .await
            .map_err(|status| anyhow::anyhow!("mapping set: {}", status.message()))?;
        mapped += 1;
    }
    let plan = mapping
        .plan_migration(pb::PlanMigrationRequest {
            tenant: tenant.to_owned(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("migrate plan: {}", status.message()))?
        .into_inner()
        .plan
        .unwrap_or_default();
    let mut operation = mapping
        .apply_migration(pb::ApplyMigrationRequest {
            tenant: tenant.to_owned(),
            plan_id: plan.plan_id.clone(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("migrate apply: {}", status.message()))?
        .into_inner()
        .operation
        .unwrap_or_default();
    let started = Instant::now();
    while operation.state == pb::OperationState::Running as i32 {
        bar.set(
            u64::from(operation.steps_done),
            u64::from(operation.steps_total),
        );
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "the migration did not finish in 5 minutes: {operation:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        operation = mapping
            .get_migration_operation(pb::GetMigrationOperationRequest {
                tenant: tenant.to_owned(),
                operation_id: operation.operation_id.clone(),
            })
            .await
            .map_err(|status| anyhow::anyhow!("migration operation: {}", status.message()))?
            .into_inner()
            .operation
            .context("the mapping service lost the operation")?;
    }
    anyhow::ensure!(
        operation.state == pb::OperationState::Succeeded as i32,
        "the migration failed: {}",
        operation.last_error
    );
    bar.finish(&format!(
        "{recommendation} recommended; {mapped} group(s) mapped, plan {} with {} loss(es) applied in {} steps; {} users' distributions recorded",
        plan.plan_id,
        plan.losses.len(),
        operation.steps_total,
        operation.users_recorded
    ));
    Ok(Migrated {
        recommendation: recommendation.to_owned(),
        mappings: mapped,
        plan_losses: plan.losses.len(),
        ..Migrated::default()
    })
}

/// After provisioning: every recorded distribution, still received?
pub(crate) async fn verify(
    channel: Channel,
    tenant: &str,
    migrated: &mut Migrated,
) -> anyhow::Result<()> {
    let verified = pb::mapping_service_client::MappingServiceClient::new(channel)
        .verify_migration(pb::VerifyMigrationRequest {
            tenant: tenant.to_owned(),
            operation_id: String::new(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("migrate verify: {}", status.message()))?
        .into_inner();
    let lost = u32::try_from(verified.losses.len()).unwrap_or(u32::MAX);
    migrated.distributions_lost = lost;
    migrated.distributions_kept = verified.distributions_checked.saturating_sub(lost);
    migrated.users_checked = verified.users_checked;
    eprintln!(
        "  verify: {} of {} users' {} distribution(s) kept, {} lost",
        verified.users_checked, verified.users_checked, migrated.distributions_kept, lost
    );
    Ok(())
}
