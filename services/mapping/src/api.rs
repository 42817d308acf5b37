//! The gRPC service: one method per RPC, each reading what it needs and delegating the
//! deciding to the pure modules (`matching`, `plan`, `verify`, `keys`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use dirsync_proto::errors::{ApiError, ErrorReason};
use dirsync_proto::mapping::v1 as pb;
use dirsync_proto::time::from_unix_ms;
use tonic::{Request, Response, Status};

use crate::Service;
use crate::entity::{group_mapping, operation, record};
use crate::error::{MappingError, Result, quoted};
use crate::keys::{Side, resolve};
use crate::matching::{RESEMBLES, UserIndex, name_similarity, overlap, score};
use crate::model::{
    is_bound, is_taken, mapping, mode_word, requested_mode, requested_state, state_word,
};
use crate::plan::{distribution_pb, planned, received};
use crate::store::{NewOperation, now_ms};
use crate::upstream::Tenant;
use crate::world::{EntraNeed, World};

const DEFAULT_CANDIDATES: usize = 5;
const MAX_CANDIDATES: usize = 50;
const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

#[derive(Debug)]
pub(crate) struct Api {
    service: Arc<Service>,
}

impl Api {
    pub(crate) fn new(service: Arc<Service>) -> Self {
        Self { service }
    }

    async fn tenant(&self, tenant: &str) -> Result<Tenant> {
        self.service.upstream.tenant(tenant).await
    }

    fn mapping_conflict(existing: &group_mapping::Model, message: String) -> MappingError {
        MappingError::Refused(Box::new(
            ApiError::new(ErrorReason::AlreadyExists, message)
                .resource("mapping", &existing.mapping_id),
        ))
    }

    async fn plan(&self, tenant: &Tenant) -> Result<(pb::MigrationPlan, World)> {
        let mappings = self.service.store.mappings(&tenant.id).await?;
        let planned = planned(&mappings);
        let world = if planned.is_empty() {
            World::default()
        } else {
            let maas360_ids: Vec<String> = planned
                .iter()
                .filter_map(|m| m.maas360_group_id.clone())
                .collect();
            let entra_ids = planned.iter().map(|m| m.entra_group_id.clone()).collect();
            World::read(
                &self.service.upstream,
                tenant,
                &maas360_ids,
                EntraNeed::MembersOf(entra_ids),
            )
            .await?
        };
        let mut plan = crate::plan::plan(&tenant.id, &world, &mappings)?;
        plan.create_time = Some(from_unix_ms(now_ms()));
        Ok((plan, world))
    }

    async fn operation_response(&self, row: &operation::Model) -> Result<pb::MigrationOperation> {
        let mappings = self
            .service
            .store
            .operation_mappings(&row.tenant_id, &row.operation_id)
            .await?;
        crate::model::operation(row, &mappings)
    }

    /// The mapping a delete names: by id, or by its Entra group (object id or name).
    async fn mapping_named(
        &self,
        tenant_id: &str,
        target: Option<&pb::delete_mapping_request::Target>,
    ) -> Result<group_mapping::Model> {
        match target {
            Some(pb::delete_mapping_request::Target::MappingId(id)) => self
                .service
                .store
                .mapping(tenant_id, id.trim())
                .await?
                .ok_or_else(|| MappingError::mapping_not_found(id.trim())),
            Some(pb::delete_mapping_request::Target::EntraGroup(key)) => {
                let mappings = self.service.store.mappings(tenant_id).await?;
                let groups: Vec<crate::world::EntraGroup> = mappings
                    .iter()
                    .map(|m| crate::world::EntraGroup {
                        id: m.entra_group_id.clone(),
                        name: m.entra_group_name.clone(),
                    })
                    .collect();
                let group =
                    resolve(Some(key), &groups, Side::Entra, "entra_group").map_err(|error| {
                        match error {
                            MappingError::Refused(api)
                                if api.reason() == ErrorReason::EntraNotFound =>
                            {
                                MappingError::Refused(Box::new(
                                    ApiError::new(
                                        ErrorReason::MappingNotFound,
                                        "no mapping of that Entra group",
                                    )
                                    .resource("mapping", ""),
                                ))
                            }
                            other => other,
                        }
                    })?;
                mappings
                    .into_iter()
                    .find(|m| m.entra_group_id == group.id)
                    .ok_or_else(|| MappingError::mapping_not_found(&group.id))
            }
            None => Err(MappingError::invalid(
                "target",
                "name the mapping: mapping_id or entra_group",
            )),
        }
    }
}

/// Every MaaS360 user group carrying distributions, with Entra candidates ranked.
fn proposals(
    world: &World,
    mappings: &[group_mapping::Model],
    max_candidates: usize,
) -> Vec<pb::Proposal> {
    let index = UserIndex::new(world);
    let mut proposals = Vec::new();
    for group in world
        .maas360_groups
        .iter()
        .filter(|g| !g.distributions.is_empty())
    {
        let members = world
            .maas360_members
            .get(&group.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut candidates: Vec<pb::Candidate> = world
            .entra_groups
            .iter()
            .map(|entra| {
                let entra_members = world
                    .entra_members
                    .get(&entra.id)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let names = name_similarity(&group.name, &entra.name);
                let overlap = overlap(&index, members, entra_members);
                pb::Candidate {
                    entra_group_id: entra.id.clone(),
                    entra_group_name: entra.name.clone(),
                    name_similarity: names,
                    member_overlap: overlap.ratio,
                    score: score(names, overlap.ratio),
                    matched_members: overlap.matched,
                    entra_members: overlap.entra_members,
                }
            })
            .filter(|c| c.score > 0.0)
            .collect();
        candidates.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.entra_group_name.cmp(&b.entra_group_name))
        });
        candidates.truncate(max_candidates);
        proposals.push(pb::Proposal {
            maas360_group_id: group.id.clone(),
            maas360_group_name: group.name.clone(),
            distributions: group.distributions.iter().map(distribution_pb).collect(),
            member_count: members.len() as u64,
            candidates,
            mapping_id: mappings
                .iter()
                .find(|m| {
                    m.maas360_group_id.as_deref() == Some(group.id.as_str())
                        || m.target_group_id == group.id
                })
                .map(|m| m.mapping_id.clone())
                .unwrap_or_default(),
        });
    }
    proposals.sort_by(|a, b| a.maas360_group_name.cmp(&b.maas360_group_name));
    proposals
}

fn page_offset(token: &str) -> Result<u64> {
    if token.is_empty() {
        return Ok(0);
    }
    token.parse().map_err(|_| {
        MappingError::invalid("page_token", "page_token is not one this server issued")
    })
}

fn page_size(size: i32) -> Result<u64> {
    match size {
        0 => Ok(DEFAULT_PAGE),
        size if size < 0 => Err(MappingError::invalid(
            "page_size",
            "page_size must not be negative",
        )),
        size => Ok(u64::try_from(size).unwrap_or(MAX_PAGE).min(MAX_PAGE)),
    }
}

#[tonic::async_trait]
impl pb::mapping_service_server::MappingService for Api {
    async fn check_migration(
        &self,
        request: Request<pb::CheckMigrationRequest>,
    ) -> Result<Response<pb::CheckMigrationResponse>, Status> {
        let tenant = self.tenant(&request.into_inner().tenant).await?;
        let world =
            World::read(&self.service.upstream, &tenant, &[], EntraNeed::Everything).await?;
        let mappings = self.service.store.mappings(&tenant.id).await?;
        let proposals = proposals(&world, &mappings, 1);
        let with_distributions = proposals.len();
        let resembled: Vec<pb::Proposal> = proposals
            .into_iter()
            .filter(|p| p.candidates.first().is_some_and(|c| c.score >= RESEMBLES))
            .collect();
        let (recommendation, reason) = if let Some(first) = resembled.first() {
            let best = first
                .candidates
                .first()
                .map(|c| c.entra_group_name.as_str())
                .unwrap_or_default();
            (
                pb::MigrationOption::MigrateExisting,
                format!(
                    "{} of MaaS360's user groups with app or policy distributions resemble Entra \
                     groups (e.g. {} and Entra's {}): migrate first (Option 1): map them with \
                     `dirsync migrate propose` and `dirsync mapping set`, then plan and apply, \
                     before Entra's groups are provisioned, or their devices may lose what those \
                     groups distribute",
                    resembled.len(),
                    quoted(&first.maas360_group_name),
                    quoted(best)
                ),
            )
        } else if with_distributions > 0 {
            (
                pb::MigrationOption::ImportNew,
                format!(
                    "none of MaaS360's {with_distributions} user groups with distributions \
                     resembles an Entra group by name or by members: import (Option 2); Entra's \
                     groups arrive as new groups and the existing ones are left as they are"
                ),
            )
        } else {
            (
                pb::MigrationOption::ImportNew,
                "no MaaS360 user group carries an app or policy distribution: nothing would be \
                 lost by importing (Option 2)"
                    .to_owned(),
            )
        };
        Ok(Response::new(pb::CheckMigrationResponse {
            recommendation: recommendation as i32,
            reason,
            maas360_user_groups: u32::try_from(world.maas360_groups.len()).unwrap_or(u32::MAX),
            groups_with_distributions: u32::try_from(with_distributions).unwrap_or(u32::MAX),
            entra_groups: u32::try_from(world.entra_groups.len()).unwrap_or(u32::MAX),
            resembled,
        }))
    }

    async fn propose_mappings(
        &self,
        request: Request<pb::ProposeMappingsRequest>,
    ) -> Result<Response<pb::ProposeMappingsResponse>, Status> {
        let request = request.into_inner();
        let max = match request.max_candidates {
            0 => DEFAULT_CANDIDATES,
            n if n < 0 => {
                return Err(MappingError::invalid(
                    "max_candidates",
                    "max_candidates must not be negative",
                )
                .into());
            }
            n => usize::try_from(n)
                .unwrap_or(MAX_CANDIDATES)
                .min(MAX_CANDIDATES),
        };
        let tenant = self.tenant(&request.tenant).await?;
        let world =
            World::read(&self.service.upstream, &tenant, &[], EntraNeed::Everything).await?;
        let mappings = self.service.store.mappings(&tenant.id).await?;
        Ok(Response::new(pb::ProposeMappingsResponse {
            proposals: proposals(&world, &mappings, max),
        }))
    }

    async fn create_mapping(
        &self,
        request: Request<pb::CreateMappingRequest>,
    ) -> Result<Response<pb::CreateMappingResponse>, Status> {
        let request = request.into_inner();
        let mode = requested_mode(request.mode, "mode")?;
        let state = requested_state(request.state, "state", pb::MappingState::Confirmed)?;
        let tenant = self.tenant(&request.tenant).await?;
        let upstream = &self.service.upstream;
        let entra_groups: Vec<crate::world::EntraGroup> = upstream
            .entra_groups(&tenant.id)
            .await?
            .into_iter()
            .map(|g| crate::world::EntraGroup {
                id: g.id,
                name: g.display_name,
            })
            .collect();
        let maas360_groups: Vec<crate::world::Maas360Group> = upstream
            .maas360_groups(&tenant.id)
            .await?
            .into_iter()
            .map(|g| crate::world::Maas360Group {
                id: g.group_id,
                name: g.name,
                distributions: Vec::new(),
            })
            .collect();
        let entra = resolve(
            request.entra_group.as_ref(),
            &entra_groups,
            Side::Entra,
            "entra_group",
        )?;
        let maas360 = resolve(
            request.maas360_group.as_ref(),
            &maas360_groups,
            Side::Maas360,
            "maas360_group",
        )?;
        let now = now_ms();
        for existing in self.service.store.mappings(&tenant.id).await? {
            let same_entra = existing.entra_group_id == entra.id;
            let same_maas360 = existing.maas360_group_id.as_deref() == Some(maas360.id.as_str())
                || existing.target_group_id == maas360.id;
            if same_entra && same_maas360 {
                if existing.mode == mode_word(mode)
                    && existing.prune == request.prune
                    && (is_taken(&existing.state) || existing.state == state_word(state))
                {
                    // The same request again: the mapping it made.
                    return Ok(Response::new(pb::CreateMappingResponse {
                        mapping: Some(mapping(&existing)),
                    }));
                }
                return Err(Self::mapping_conflict(
                    &existing,
                    format!(
                        "Entra group {} is already mapped onto {} by mapping {} ({}, {}); \
                         change it with UpdateMapping",
                        quoted(&entra.name),
                        quoted(&maas360.name),
                        existing.mapping_id,
                        existing.mode,
                        existing.state
                    ),
                )
                .into());
            }
            if same_entra {
                return Err(Self::mapping_conflict(
                    &existing,
                    format!(
                        "Entra group {} is already mapped onto MaaS360 group {} by mapping {}; an \
                         Entra group maps to at most one MaaS360 group",
                        quoted(&entra.name),
                        quoted(existing.maas360_group_name.as_deref().unwrap_or("")),
                        existing.mapping_id
                    ),
                )
                .into());
            }
            if same_maas360 {
                return Err(Self::mapping_conflict(
                    &existing,
                    format!(
                        "MaaS360 group {} is already the target of Entra group {} by mapping {}; a \
                         MaaS360 group is the target of at most one Entra group",
                        quoted(&maas360.name),
                        quoted(&existing.entra_group_name),
                        existing.mapping_id
                    ),
                )
                .into());
            }
        }
        let row = group_mapping::Model {
            tenant_id: tenant.id.clone(),
            mapping_id: uuid::Uuid::new_v4().to_string(),
            entra_group_id: entra.id.clone(),
            entra_group_name: entra.name.clone(),
            maas360_group_id: Some(maas360.id.clone()),
            maas360_group_name: Some(maas360.name.clone()),
            mode: mode_word(mode).to_owned(),
            state: state_word(state).to_owned(),
            prune: request.prune,
            target_group_id: String::new(),
            target_group_name: String::new(),
            operation_id: String::new(),
            last_error: String::new(),
            created_at: now,
            updated_at: now,
        };
        self.service.store.insert_mapping(row.clone()).await?;
        tracing::info!(tenant_id = %tenant.id, mapping_id = %row.mapping_id, entra_group = %row.entra_group_id, maas360_group = %maas360.id, mode = %row.mode, prune = row.prune, "mapping created");
        Ok(Response::new(pb::CreateMappingResponse {
            mapping: Some(mapping(&row)),
        }))
    }

    async fn get_mapping(
        &self,
        request: Request<pb::GetMappingRequest>,
    ) -> Result<Response<pb::GetMappingResponse>, Status> {
        let request = request.into_inner();
        if request.mapping_id.trim().is_empty() {
            return Err(MappingError::invalid("mapping_id", "mapping_id is required").into());
        }
        let tenant = self.tenant(&request.tenant).await?;
        let row = self
            .service
            .store
            .mapping(&tenant.id, request.mapping_id.trim())
            .await?
            .ok_or_else(|| MappingError::mapping_not_found(request.mapping_id.trim()))?;
        Ok(Response::new(pb::GetMappingResponse {
            mapping: Some(mapping(&row)),
        }))
    }

    async fn list_mappings(
        &self,
        request: Request<pb::ListMappingsRequest>,
    ) -> Result<Response<pb::ListMappingsResponse>, Status> {
        let request = request.into_inner();
        let size = page_size(request.page_size)?;
        let offset = page_offset(&request.page_token)?;
        let tenant = self.tenant(&request.tenant).await?;
        let (rows, total) = self
            .service
            .store
            .mapping_page(&tenant.id, offset, size)
            .await?;
        let next = offset + rows.len() as u64;
        Ok(Response::new(pb::ListMappingsResponse {
            mappings: rows.iter().map(mapping).collect(),
            next_page_token: if next < total {
                next.to_string()
            } else {
                String::new()
            },
            total_size: i64::try_from(total).unwrap_or(i64::MAX),
        }))
    }

    async fn update_mapping(
        &self,
        request: Request<pb::UpdateMappingRequest>,
    ) -> Result<Response<pb::UpdateMappingResponse>, Status> {
        let request = request.into_inner();
        if request.mapping_id.trim().is_empty() {
            return Err(MappingError::invalid("mapping_id", "mapping_id is required").into());
        }
        let mode = request
            .mode
            .map(|mode| requested_mode(mode, "mode"))
            .transpose()?;
        let state = request
            .state
            .map(|state| requested_state(state, "state", pb::MappingState::Confirmed))
            .transpose()?;
        let tenant = self.tenant(&request.tenant).await?;
        let mut row = self
            .service
            .store
            .mapping(&tenant.id, request.mapping_id.trim())
            .await?
            .ok_or_else(|| MappingError::mapping_not_found(request.mapping_id.trim()))?;
        if is_taken(&row.state) {
            return Err(MappingError::refused(
                ErrorReason::VersionConflict,
                format!(
                    "mapping {} is {} (operation {}): it can no longer be changed",
                    row.mapping_id, row.state, row.operation_id
                ),
            )
            .into());
        }
        if let Some(mode) = mode {
            row.mode = mode_word(mode).to_owned();
        }
        if let Some(prune) = request.prune {
            row.prune = prune;
        }
        if let Some(state) = state {
            row.state = state_word(state).to_owned();
        } else if row.state == "failed" && (mode.is_some() || request.prune.is_some()) {
            // A failed mapping that was corrected is confirmed again.
            row.state = "confirmed".to_owned();
        }
        row.updated_at = now_ms();
        if !self.service.store.update_mapping(&row).await? {
            return Err(MappingError::refused(
                ErrorReason::VersionConflict,
                format!(
                    "mapping {} was taken by an apply meanwhile: it can no longer be changed",
                    row.mapping_id
                ),
            )
            .into());
        }
        Ok(Response::new(pb::UpdateMappingResponse {
            mapping: Some(mapping(&row)),
        }))
    }

    async fn delete_mapping(
        &self,
        request: Request<pb::DeleteMappingRequest>,
    ) -> Result<Response<pb::DeleteMappingResponse>, Status> {
        let request = request.into_inner();
        let tenant = self.tenant(&request.tenant).await?;
        let row = self
            .mapping_named(&tenant.id, request.target.as_ref())
            .await?;
        if is_taken(&row.state)
            || !self
                .service
                .store
                .delete_mapping(&tenant.id, &row.mapping_id)
                .await?
        {
            return Err(MappingError::refused(
                ErrorReason::VersionConflict,
                format!(
                    "mapping {} is being applied or applied (operation {}): the Entra group \
                     writes to {}; it is not deleted",
                    row.mapping_id,
                    row.operation_id,
                    quoted(&row.target_group_name)
                ),
            )
            .into());
        }
        tracing::info!(tenant_id = %tenant.id, mapping_id = %row.mapping_id, "mapping deleted");
        Ok(Response::new(pb::DeleteMappingResponse {}))
    }

    async fn plan_migration(
        &self,
        request: Request<pb::PlanMigrationRequest>,
    ) -> Result<Response<pb::PlanMigrationResponse>, Status> {
        let tenant = self.tenant(&request.into_inner().tenant).await?;
        let (plan, _) = self.plan(&tenant).await?;
        Ok(Response::new(pb::PlanMigrationResponse {
            plan: Some(plan),
        }))
    }

    async fn apply_migration(
        &self,
        request: Request<pb::ApplyMigrationRequest>,
    ) -> Result<Response<pb::ApplyMigrationResponse>, Status> {
        let request = request.into_inner();
        let plan_id = request.plan_id.trim();
        if plan_id.is_empty() {
            return Err(MappingError::invalid(
                "plan_id",
                "plan_id is required: the id of the plan reviewed (`dirsync migrate plan`)",
            )
            .into());
        }
        let tenant = self.tenant(&request.tenant).await?;
        let store = &self.service.store;
        if let Some(existing) = store.operation_for_plan(&tenant.id, plan_id).await?
            && existing.state != "failed"
        {
            // Applying the same plan again: the operation that carries it out, resumed by
            // the runners if it was interrupted.
            self.service.wake.notify_waiters();
            return Ok(Response::new(pb::ApplyMigrationResponse {
                operation: Some(self.operation_response(&existing).await?),
            }));
        }
        if let Some(running) = store.latest_operation(&tenant.id, Some("running")).await? {
            return Err(MappingError::refused(
                ErrorReason::StalePlan,
                format!(
                    "operation {} (plan {}) is still carrying out an earlier plan; wait for it, \
                     then plan again",
                    running.operation_id, running.plan_id
                ),
            )
            .into());
        }
        let (plan, world) = self.plan(&tenant).await?;
        if plan.plan_id != plan_id {
            return Err(MappingError::Refused(Box::new(
                ApiError::new(
                    ErrorReason::StalePlan,
                    format!(
                        "plan {plan_id} is stale: what it rests on changed since (the plan is \
                         {} now); review it again with PlanMigration (`dirsync migrate plan`)",
                        plan.plan_id
                    ),
                )
                .meta("current_plan_id", plan.plan_id.clone()),
            ))
            .into());
        }
        let operation_id = uuid::Uuid::new_v4().to_string();
        let records = records(&operation_id, &plan, &world)?;
        let now = now_ms();
        let row = operation::Model {
            operation_id: operation_id.clone(),
            tenant_id: tenant.id.clone(),
            plan_id: plan.plan_id.clone(),
            state: "running".to_owned(),
            plan: prost::Message::encode_to_vec(&plan),
            steps_total: i32::try_from(crate::apply::steps(&plan).len()).unwrap_or(i32::MAX),
            steps_done: 0,
            users_recorded: i32::try_from(records.len()).unwrap_or(i32::MAX),
            last_error: String::new(),
            lease_owner: String::new(),
            lease_until: 0,
            created_at: now,
            updated_at: now,
        };
        store
            .start_operation(NewOperation {
                row: row.clone(),
                records,
                mapping_ids: plan.groups.iter().map(|g| g.mapping_id.clone()).collect(),
            })
            .await?;
        tracing::info!(tenant_id = %tenant.id, operation_id, plan_id = %plan.plan_id, steps = row.steps_total, users_recorded = row.users_recorded, "migration started");
        self.service.wake.notify_waiters();
        Ok(Response::new(pb::ApplyMigrationResponse {
            operation: Some(self.operation_response(&row).await?),
        }))
    }

    async fn get_migration_operation(
        &self,
        request: Request<pb::GetMigrationOperationRequest>,
    ) -> Result<Response<pb::GetMigrationOperationResponse>, Status> {
        let request = request.into_inner();
        let tenant = self.tenant(&request.tenant).await?;
        let row =
            operation_named(&self.service, &tenant.id, request.operation_id.trim(), None).await?;
        Ok(Response::new(pb::GetMigrationOperationResponse {
            operation: Some(self.operation_response(&row).await?),
        }))
    }

    async fn verify_migration(
        &self,
        request: Request<pb::VerifyMigrationRequest>,
    ) -> Result<Response<pb::VerifyMigrationResponse>, Status> {
        let request = request.into_inner();
        let tenant = self.tenant(&request.tenant).await?;
        let row = operation_named(
            &self.service,
            &tenant.id,
            request.operation_id.trim(),
            Some("succeeded"),
        )
        .await?;
        if row.state == "running" {
            return Err(MappingError::refused(
                ErrorReason::StalePlan,
                format!(
                    "operation {} is still running ({} of {} steps): verify when it has finished",
                    row.operation_id, row.steps_done, row.steps_total
                ),
            )
            .into());
        }
        let plan = crate::model::decode_plan(&row)?;
        let records = self.service.store.records(&row.operation_id).await?;
        let world = World::read(&self.service.upstream, &tenant, &[], EntraNeed::Nothing).await?;
        let verified =
            crate::verify::verify(&row.operation_id, &plan, &records, &received(&world))?;
        if verified.ok && row.state == "succeeded" {
            self.service
                .store
                .mark_verified(&tenant.id, &row.operation_id)
                .await?;
        }
        tracing::info!(tenant_id = %tenant.id, operation_id = %row.operation_id, ok = verified.ok, users = verified.users_checked, losses = verified.losses.len(), "migration verified");
        Ok(Response::new(verified))
    }

    async fn resolve_group(
        &self,
        request: Request<pb::ResolveGroupRequest>,
    ) -> Result<Response<pb::ResolveGroupResponse>, Status> {
        let request = request.into_inner();
        if request.entra_group_id.trim().is_empty() && request.display_name.trim().is_empty() {
            return Err(MappingError::invalid(
                "entra_group_id",
                "name the group: entra_group_id or display_name",
            )
            .into());
        }
        // The provisioner asks by tenant id: a tenant with mappings under that id needs no
        // lookup; otherwise the tenant is resolved (it may have been named by name).
        let store = &self.service.store;
        let tenant_id = if store.has_mappings(request.tenant.trim()).await? {
            request.tenant.trim().to_owned()
        } else {
            self.tenant(&request.tenant).await?.id
        };
        let mappings = store.mappings(&tenant_id).await?;
        let external_id = request.entra_group_id.trim();
        let name = request.display_name.trim().to_lowercase();
        let found = mappings
            .iter()
            .find(|m| !external_id.is_empty() && m.entra_group_id == external_id)
            .or_else(|| {
                mappings
                    .iter()
                    .find(|m| !name.is_empty() && m.entra_group_name.to_lowercase() == name)
            });
        let (resolution, found) = match found {
            None => (pb::Resolution::Unmapped, None),
            Some(row) if is_bound(row) => (pb::Resolution::Mapped, Some(mapping(row))),
            Some(row) => (pb::Resolution::Pending, Some(mapping(row))),
        };
        Ok(Response::new(pb::ResolveGroupResponse {
            resolution: resolution as i32,
            mapping: found,
        }))
    }
}

/// An operation by id, or the tenant's latest (of `state`, when given).
async fn operation_named(
    service: &Service,
    tenant_id: &str,
    operation_id: &str,
    latest_of: Option<&str>,
) -> Result<operation::Model> {
    let found = if operation_id.is_empty() {
        service.store.latest_operation(tenant_id, latest_of).await?
    } else {
        service.store.operation(tenant_id, operation_id).await?
    };
    found.ok_or_else(|| {
        let what = if operation_id.is_empty() {
            format!(
                "the tenant has no {}migration operation yet",
                latest_of.map(|s| format!("{s} ")).unwrap_or_default()
            )
        } else {
            format!("no migration operation {}", quoted(operation_id))
        };
        MappingError::Refused(Box::new(
            ApiError::new(ErrorReason::MappingNotFound, what)
                .resource("migration operation", operation_id),
        ))
    })
}

/// What every affected user receives before the first write: members of the mapped groups,
/// and Entra members joining them whom MaaS360 already holds.
fn records(
    operation_id: &str,
    plan: &pb::MigrationPlan,
    world: &World,
) -> Result<Vec<record::Model>> {
    let received = received(world);
    let mut users: HashMap<&str, &str> = HashMap::new();
    for group in &plan.groups {
        for member in group
            .joining
            .iter()
            .chain(&group.staying)
            .chain(&group.leaving)
            .chain(&group.legacy)
        {
            if !member.maas360_user_id.is_empty() {
                users.insert(member.maas360_user_id.as_str(), member.user.as_str());
            }
        }
    }
    let mut seen_keys = BTreeSet::new();
    let mut rows = Vec::with_capacity(users.len());
    let mut ordered: Vec<(&str, &str)> = users.into_iter().collect();
    ordered.sort_unstable();
    for (user_id, key) in ordered {
        // One record per user key (MaaS360 keeps a username once per domain).
        if !seen_keys.insert(key) {
            continue;
        }
        let list = received.get(user_id).map(Vec::as_slice).unwrap_or_default();
        rows.push(record::Model {
            operation_id: operation_id.to_owned(),
            user_key: key.to_owned(),
            maas360_user_id: user_id.to_owned(),
            distributions: crate::verify::encode(list)?,
        });
    }
    Ok(rows)
}
