//! Tenants and their SCIM bearer tokens. A token is 256 random bits shown
//! once; only its SHA-256 is stored. (A slow password hash buys nothing for a
//! secret with that much entropy, and would cost every SCIM request.)

use dirsync_proto::provisioner::v1 as pb;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::entity::{scim_token, tenant};
use crate::error::{ProvisionerError, Result, quoted};
use crate::reconcile::Policy;
use crate::reconcile::connection::{self, TenantConnection};
use crate::reconcile::identity::UsernameMapping;
use crate::store::{Store, new_id, now_ms};
use dirsync_proto::errors::ErrorReason;
use dirsync_runtime::config::ProvisionerConfig;

const TOKEN_PREFIX: &str = "dsy_";
const MAX_TENANT_NAME: usize = 128;

#[derive(Debug)]
pub(crate) struct TenantApi {
    store: Store,
    settings: ProvisionerConfig,
    /// Ends the token revocation streams when the server shuts down.
    draining: dirsync_runtime::shutdown::Draining,
}

impl TenantApi {
    pub(crate) fn new(
        store: Store,
        settings: ProvisionerConfig,
        draining: dirsync_runtime::shutdown::Draining,
    ) -> Self {
        Self {
            store,
            settings,
            draining,
        }
    }
}

/// A new bearer token (32 bytes from the operating system's random source, in hex) and the
/// hash that is stored in its place.
fn new_token() -> Result<(String, String)> {
    use rand::TryRng as _;
    let mut secret = [0u8; 32];
    rand::rngs::SysRng
        .try_fill_bytes(&mut secret)
        .map_err(|error| {
            ProvisionerError::Database(format!("cannot draw a token from the OS: {error}"))
        })?;
    let hex: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
    let token = format!("{TOKEN_PREFIX}{hex}");
    let hash = hash_token(&token);
    Ok((token, hash))
}

pub(crate) fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn validate_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ProvisionerError::invalid(
            "name",
            "tenant name must not be empty",
        ));
    }
    if name.len() > MAX_TENANT_NAME {
        return Err(ProvisionerError::invalid(
            "name",
            format!("tenant name is longer than {MAX_TENANT_NAME} bytes"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ProvisionerError::invalid(
            "name",
            "tenant name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

fn username_mapping_name(mapping: i32) -> Result<&'static str> {
    match pb::UsernameMapping::try_from(mapping) {
        Ok(pb::UsernameMapping::Unspecified | pb::UsernameMapping::LocalPart) => Ok("local_part"),
        Ok(pb::UsernameMapping::Full) => Ok("full"),
        Err(_) => Err(ProvisionerError::invalid(
            "policy.username_mapping",
            format!("unknown username_mapping {mapping}"),
        )),
    }
}

async fn active_token_count(db: &impl ConnectionTrait, tenant_id: &str) -> Result<u32> {
    let count = scim_token::Entity::find()
        .filter(scim_token::Column::TenantId.eq(tenant_id))
        .filter(scim_token::Column::RevokedAt.is_null())
        .count(db)
        .await?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

fn to_pb(model: tenant::Model, active_token_count: u32) -> pb::Tenant {
    let maas360 = connection::from_model(&model).map(|connection| connection.to_pb());
    let username_mapping = if model.username_mapping == "full" {
        pb::UsernameMapping::Full
    } else {
        pb::UsernameMapping::LocalPart
    };
    let mode = mode_of(&model) as i32;
    pb::Tenant {
        tenant_id: model.tenant_id,
        name: model.name,
        create_time: Some(dirsync_proto::time::from_unix_ms(model.created_at)),
        active_token_count,
        maas360,
        policy: Some(pb::TenantPolicy {
            deactivate_on_disable: model.deactivate_on_disable,
            delete_on_delete: model.delete_on_delete,
            username_mapping: username_mapping as i32,
            active_device: if model.active_device_policy == "park" {
                pb::ActiveDevicePolicy::Park
            } else {
                pb::ActiveDevicePolicy::Deactivate
            } as i32,
            lookalike_groups: if model.lookalike_group_policy == "import" {
                pb::LookalikeGroupPolicy::Import
            } else {
                pb::LookalikeGroupPolicy::Park
            } as i32,
        }),
        mode,
    }
}

/// The tenant's mode as the API shows it.
pub(crate) fn mode_of(model: &tenant::Model) -> pb::TenantMode {
    if model.mode == "pull" {
        pb::TenantMode::Pull
    } else {
        pb::TenantMode::Push
    }
}

fn active_device_policy_name(policy: i32) -> Result<&'static str> {
    match pb::ActiveDevicePolicy::try_from(policy) {
        Ok(pb::ActiveDevicePolicy::Unspecified | pb::ActiveDevicePolicy::Deactivate) => {
            Ok("deactivate")
        }
        Ok(pb::ActiveDevicePolicy::Park) => Ok("park"),
        Err(_) => Err(ProvisionerError::invalid(
            "policy.active_device",
            format!("unknown active_device policy {policy}"),
        )),
    }
}

fn lookalike_group_policy_name(policy: i32) -> Result<&'static str> {
    match pb::LookalikeGroupPolicy::try_from(policy) {
        Ok(pb::LookalikeGroupPolicy::Unspecified | pb::LookalikeGroupPolicy::Park) => Ok("park"),
        Ok(pb::LookalikeGroupPolicy::Import) => Ok("import"),
        Err(_) => Err(ProvisionerError::invalid(
            "policy.lookalike_groups",
            format!("unknown lookalike_groups policy {policy}"),
        )),
    }
}

/// The tenant a request names, by id or by name.
pub(crate) async fn find(db: &impl ConnectionTrait, tenant: &str) -> Result<tenant::Model> {
    let tenant = tenant.trim();
    if tenant.is_empty() {
        return Err(ProvisionerError::invalid(
            "tenant",
            "tenant is required (its id or its name)",
        ));
    }
    if let Some(found) = tenant::Entity::find_by_id(tenant.to_owned())
        .one(db)
        .await?
    {
        return Ok(found);
    }
    tenant::Entity::find()
        .filter(tenant::Column::Name.eq(tenant))
        .one(db)
        .await?
        .ok_or_else(|| ProvisionerError::not_found(ErrorReason::TenantNotFound, "tenant", tenant))
}

impl TenantApi {
    async fn find(&self, tenant: &str) -> Result<tenant::Model> {
        find(self.store.db(), tenant).await
    }

    async fn issue_token(
        &self,
        tenant_id: &str,
        revoke_existing: bool,
    ) -> Result<pb::IssueScimTokenResponse> {
        let write = self.store.write().await?;
        let exists = tenant::Entity::find_by_id(tenant_id.to_owned())
            .one(&write.txn)
            .await?
            .is_some();
        if !exists {
            return Err(ProvisionerError::not_found(
                ErrorReason::TenantNotFound,
                "tenant",
                tenant_id,
            ));
        }
        let now = now_ms();
        let revoked = if revoke_existing {
            scim_token::Entity::update_many()
                .col_expr(scim_token::Column::RevokedAt, Expr::value(now))
                .filter(scim_token::Column::TenantId.eq(tenant_id))
                .filter(scim_token::Column::RevokedAt.is_null())
                .exec(&write.txn)
                .await?
                .rows_affected
        } else {
            0
        };
        let (token, hash) = new_token()?;
        scim_token::ActiveModel {
            token_hash: Set(hash),
            tenant_id: Set(tenant_id.to_owned()),
            created_at: Set(now),
            revoked_at: Set(None),
        }
        .insert(&write.txn)
        .await?;
        write.commit().await?;
        if revoked > 0 {
            self.store.announce_token_revocation(tenant_id);
        }
        tracing::info!(tenant_id, revoked, "SCIM token issued");
        Ok(pb::IssueScimTokenResponse {
            tenant_id: tenant_id.to_owned(),
            scim_token: token,
            revoked_tokens: u32::try_from(revoked).unwrap_or(u32::MAX),
        })
    }
}

#[tonic::async_trait]
impl pb::tenant_service_server::TenantService for TenantApi {
    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::CreateTenantResponse>, Status> {
        let request = request.into_inner();
        let name = validate_name(&request.name)?;
        let policy = request.policy.unwrap_or(pb::TenantPolicy {
            deactivate_on_disable: true,
            delete_on_delete: true,
            username_mapping: pb::UsernameMapping::LocalPart as i32,
            active_device: pb::ActiveDevicePolicy::Deactivate as i32,
            lookalike_groups: pb::LookalikeGroupPolicy::Park as i32,
        });
        let username_mapping = username_mapping_name(policy.username_mapping)?;
        let active_device = active_device_policy_name(policy.active_device)?;
        let lookalike_groups = lookalike_group_policy_name(policy.lookalike_groups)?;

        let tenant_id = new_id();
        let maas360 = match &request.maas360 {
            Some(requested) => {
                let stored_policy = Policy {
                    deactivate_on_disable: policy.deactivate_on_disable,
                    delete_on_delete: policy.delete_on_delete,
                    username_mapping: UsernameMapping::from_stored(username_mapping),
                    park_on_active_device: active_device == "park",
                    import_lookalike_groups: lookalike_groups == "import",
                };
                let connection =
                    TenantConnection::from_request(&tenant_id, requested, stored_policy)?;
                connection.check(&self.settings).await?;
                Some(connection)
            }
            None => None,
        };
        let (token, hash) = new_token()?;
        let now = now_ms();
        let write = self.store.write().await?;
        let model = tenant::ActiveModel {
            tenant_id: Set(tenant_id.clone()),
            name: Set(name.clone()),
            created_at: Set(now),
            deactivate_on_disable: Set(policy.deactivate_on_disable),
            delete_on_delete: Set(policy.delete_on_delete),
            username_mapping: Set(username_mapping.to_owned()),
            mode: Set("push".to_owned()),
            active_device_policy: Set(active_device.to_owned()),
            lookalike_group_policy: Set(lookalike_groups.to_owned()),
            maas360_routes_toml: Set(maas360.as_ref().and_then(|c| c.routes_toml.clone())),
            maas360_base_url: Set(maas360.as_ref().map(|c| c.base_url.clone())),
            maas360_billing_id: Set(maas360.as_ref().map(|c| c.billing_id.clone())),
            maas360_admin_user: Set(maas360.as_ref().map(|c| c.admin_user.clone())),
            maas360_app_id: Set(maas360.as_ref().map(|c| c.app_id.clone())),
            maas360_app_version: Set(maas360.as_ref().map(|c| c.app_version.clone())),
            maas360_platform_id: Set(maas360.as_ref().map(|c| c.platform_id.clone())),
            maas360_password_ref: Set(maas360.as_ref().map(|c| c.password_ref.clone())),
            maas360_app_access_key_ref: Set(maas360.as_ref().map(|c| c.app_access_key_ref.clone())),
        }
        .insert(&write.txn)
        .await
        .map_err(|error| {
            ProvisionerError::from(error).when_taken("name", || {
                format!("a tenant named {} already exists", quoted(&name))
            })
        })?;
        scim_token::ActiveModel {
            token_hash: Set(hash),
            tenant_id: Set(tenant_id.clone()),
            created_at: Set(now),
            revoked_at: Set(None),
        }
        .insert(&write.txn)
        .await
        .map_err(ProvisionerError::from)?;
        write.commit().await?;
        tracing::info!(tenant_id, name, "tenant created");
        Ok(Response::new(pb::CreateTenantResponse {
            tenant: Some(to_pb(model, 1)),
            scim_token: token,
        }))
    }

    async fn get_tenant(
        &self,
        request: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::GetTenantResponse>, Status> {
        let tenant = request.into_inner().tenant;
        let model = self.find(tenant.trim()).await?;
        let tokens = active_token_count(self.store.db(), &model.tenant_id).await?;
        Ok(Response::new(pb::GetTenantResponse {
            tenant: Some(to_pb(model, tokens)),
        }))
    }

    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let page = request.into_inner();
        let size = crate::work::clamp_page_size(page.page_size)?;
        let db = self.store.db();
        let total = tenant::Entity::find()
            .count(db)
            .await
            .map_err(ProvisionerError::from)?;
        let mut query = tenant::Entity::find().order_by_asc(tenant::Column::TenantId);
        if !page.page_token.is_empty() {
            query = query.filter(tenant::Column::TenantId.gt(page.page_token.clone()));
        }
        let rows = query
            .limit(size + 1)
            .all(db)
            .await
            .map_err(ProvisionerError::from)?;
        let more = rows.len() as u64 > size;
        let mut tenants = Vec::with_capacity(rows.len());
        for model in rows
            .into_iter()
            .take(usize::try_from(size).unwrap_or(usize::MAX))
        {
            let tokens = active_token_count(db, &model.tenant_id).await?;
            tenants.push(to_pb(model, tokens));
        }
        let next_page_token = match (more, tenants.last()) {
            (true, Some(last)) => last.tenant_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListTenantsResponse {
            tenants,
            next_page_token,
            total_size: i64::try_from(total).unwrap_or(i64::MAX),
        }))
    }

    async fn issue_scim_token(
        &self,
        request: Request<pb::IssueScimTokenRequest>,
    ) -> Result<Response<pb::IssueScimTokenResponse>, Status> {
        let request = request.into_inner();
        let tenant = self.find(&request.tenant).await?;
        Ok(Response::new(
            self.issue_token(&tenant.tenant_id, request.revoke_existing)
                .await?,
        ))
    }

    async fn rotate_scim_token(
        &self,
        request: Request<pb::RotateScimTokenRequest>,
    ) -> Result<Response<pb::RotateScimTokenResponse>, Status> {
        let tenant = self.find(&request.into_inner().tenant).await?;
        let issued = self.issue_token(&tenant.tenant_id, true).await?;
        Ok(Response::new(pb::RotateScimTokenResponse {
            tenant_id: issued.tenant_id,
            scim_token: issued.scim_token,
            revoked_tokens: issued.revoked_tokens,
        }))
    }

    async fn resolve_scim_token(
        &self,
        request: Request<pb::ResolveScimTokenRequest>,
    ) -> Result<Response<pb::ResolveScimTokenResponse>, Status> {
        let token = request.into_inner().token;
        // Unknown and revoked tokens read the same to the caller.
        let unknown = || Status::unauthenticated("unknown or revoked SCIM token");
        if !token.starts_with(TOKEN_PREFIX) {
            return Err(unknown());
        }
        let found = scim_token::Entity::find_by_id(hash_token(&token))
            .filter(scim_token::Column::RevokedAt.is_null())
            .one(self.store.db())
            .await
            .map_err(ProvisionerError::from)?;
        match found {
            Some(row) => Ok(Response::new(pb::ResolveScimTokenResponse {
                tenant_id: row.tenant_id,
            })),
            None => Err(unknown()),
        }
    }

    type WatchScimTokenRevocationsStream = std::pin::Pin<
        Box<
            dyn tokio_stream::Stream<Item = Result<pb::WatchScimTokenRevocationsResponse, Status>>
                + Send,
        >,
    >;

    async fn watch_scim_token_revocations(
        &self,
        _request: Request<pb::WatchScimTokenRevocationsRequest>,
    ) -> Result<Response<Self::WatchScimTokenRevocationsStream>, Status> {
        use tokio::sync::broadcast::error::RecvError;

        let draining = self.draining.clone().started();
        let mut revocations = self.store.watch_token_revocations();
        // A small buffer: a watcher that stops reading is cut off by `Lagged` upstream.
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            tokio::pin!(draining);
            loop {
                let received = tokio::select! {
                    () = &mut draining => break,
                    received = revocations.recv() => received,
                };
                let message = match received {
                    Ok(tenant_id) => Ok(pb::WatchScimTokenRevocationsResponse { tenant_id }),
                    // The watcher missed revocations: it must forget every cached token.
                    Err(RecvError::Lagged(missed)) => Err(Status::data_loss(format!(
                        "{missed} revocations were missed; drop every cached token and watch again"
                    ))),
                    Err(RecvError::Closed) => break,
                };
                let last = message.is_err();
                if sender.send(message).await.is_err() || last {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn set_maas360_connection(
        &self,
        request: Request<pb::SetMaas360ConnectionRequest>,
    ) -> Result<Response<pb::SetMaas360ConnectionResponse>, Status> {
        let request = request.into_inner();
        let current = self.find(&request.tenant).await?;
        let requested = request
            .maas360
            .ok_or_else(|| ProvisionerError::invalid("maas360", "maas360 is required"))?;
        let connection = TenantConnection::from_request(
            &current.tenant_id,
            &requested,
            connection::policy_of(&current),
        )?;
        connection.check(&self.settings).await?;
        let write = self.store.write().await?;
        let updated = tenant::ActiveModel {
            tenant_id: Set(current.tenant_id.clone()),
            maas360_base_url: Set(Some(connection.base_url.clone())),
            maas360_billing_id: Set(Some(connection.billing_id.clone())),
            maas360_admin_user: Set(Some(connection.admin_user.clone())),
            maas360_app_id: Set(Some(connection.app_id.clone())),
            maas360_app_version: Set(Some(connection.app_version.clone())),
            maas360_platform_id: Set(Some(connection.platform_id.clone())),
            maas360_password_ref: Set(Some(connection.password_ref.clone())),
            maas360_app_access_key_ref: Set(Some(connection.app_access_key_ref.clone())),
            maas360_routes_toml: Set(connection.routes_toml.clone()),
            ..Default::default()
        }
        .update(&write.txn)
        .await
        .map_err(ProvisionerError::from)?;
        write.commit().await?;
        tracing::info!(tenant_id = %updated.tenant_id, base_url = %connection.base_url, "MaaS360 connection set");
        let tokens = active_token_count(self.store.db(), &updated.tenant_id).await?;
        Ok(Response::new(pb::SetMaas360ConnectionResponse {
            tenant: Some(to_pb(updated, tokens)),
        }))
    }

    async fn probe_maas360(
        &self,
        request: Request<pb::ProbeMaas360Request>,
    ) -> Result<Response<pb::ProbeMaas360Response>, Status> {
        let request = request.into_inner();
        let model = self.find(&request.tenant).await?;
        let connection = connection::from_model(&model).ok_or_else(|| {
            ProvisionerError::refused(
                ErrorReason::NoMaas360Connection,
                "the tenant has no MaaS360 connection; set one with `dirsync tenant set-maas360`",
            )
        })?;
        let client = connection.client(&self.settings).map_err(|error| {
            ProvisionerError::invalid("maas360", format!("MaaS360 connection: {error}"))
        })?;
        let options = dirsync_maas360::probe::ProbeOptions {
            write: request.write,
            ..Default::default()
        };
        let report = dirsync_maas360::probe::run(&client, &options).await;
        tracing::info!(tenant = %model.tenant_id, passed = report.passed, write = request.write, "MaaS360 probed");
        let step = |step: &dirsync_maas360::probe::ProbeStep| pb::ProbeStep {
            route: step.route.as_str().to_owned(),
            method: step.method.clone(),
            path: step.path.clone(),
            evidence: step.evidence.clone(),
            outcome: match step.outcome {
                dirsync_maas360::probe::StepOutcome::Ok => "ok",
                dirsync_maas360::probe::StepOutcome::Failed => "failed",
                dirsync_maas360::probe::StepOutcome::Skipped => "skipped",
                dirsync_maas360::probe::StepOutcome::NotApplicable => "not_applicable",
            }
            .to_owned(),
            http_status: step.status.map_or(0, u32::from),
            error: step.error.clone().unwrap_or_default(),
            note: [Some(step.check.clone()), step.note.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; "),
        };
        Ok(Response::new(pb::ProbeMaas360Response {
            passed: report.passed,
            steps: report
                .steps
                .iter()
                .chain(&report.cleanup)
                .map(step)
                .collect(),
            leftovers: report.leftovers,
        }))
    }

    async fn set_tenant_mode(
        &self,
        request: Request<pb::SetTenantModeRequest>,
    ) -> Result<Response<pb::SetTenantModeResponse>, Status> {
        let request = request.into_inner();
        let current = self.find(&request.tenant).await?;
        let mode = match pb::TenantMode::try_from(request.mode) {
            Ok(pb::TenantMode::Push) => "push",
            Ok(pb::TenantMode::Pull) => "pull",
            _ => {
                return Err(ProvisionerError::invalid(
                    "mode",
                    "mode is TENANT_MODE_PUSH or TENANT_MODE_PULL",
                )
                .into());
            }
        };
        let write = self.store.write().await?;
        let updated = tenant::ActiveModel {
            tenant_id: Set(current.tenant_id.clone()),
            mode: Set(mode.to_owned()),
            ..Default::default()
        }
        .update(&write.txn)
        .await
        .map_err(ProvisionerError::from)?;
        write.commit().await?;
        self.store.forget_tenant_mode(&updated.tenant_id);
        tracing::info!(tenant = %updated.tenant_id, mode, "tenant mode set");
        let tokens = active_token_count(self.store.db(), &updated.tenant_id).await?;
        Ok(Response::new(pb::SetTenantModeResponse {
            tenant: Some(to_pb(updated, tokens)),
        }))
    }

    async fn set_tenant_policy(
        &self,
        request: Request<pb::SetTenantPolicyRequest>,
    ) -> Result<Response<pb::SetTenantPolicyResponse>, Status> {
        let request = request.into_inner();
        let current = self.find(&request.tenant).await?;
        let policy = request
            .policy
            .ok_or_else(|| ProvisionerError::invalid("policy", "policy is required"))?;
        let username_mapping = username_mapping_name(policy.username_mapping)?;
        let active_device = active_device_policy_name(policy.active_device)?;
        let lookalike_groups = lookalike_group_policy_name(policy.lookalike_groups)?;
        let write = self.store.write().await?;
        let updated = tenant::ActiveModel {
            tenant_id: Set(current.tenant_id.clone()),
            deactivate_on_disable: Set(policy.deactivate_on_disable),
            delete_on_delete: Set(policy.delete_on_delete),
            username_mapping: Set(username_mapping.to_owned()),
            active_device_policy: Set(active_device.to_owned()),
            lookalike_group_policy: Set(lookalike_groups.to_owned()),
            ..Default::default()
        }
        .update(&write.txn)
        .await
        .map_err(ProvisionerError::from)?;
        // Groups parked as look-alikes may go in now: they are tried again at once.
        let requeued = if lookalike_groups == "import" && current.lookalike_group_policy != "import"
        {
            crate::reconcile::queue::requeue_parked(
                &write.txn,
                &updated.tenant_id,
                crate::reconcile::queue::Requeue {
                    kind: Some(crate::entity::ResourceKind::Group),
                    resource_ids: None,
                },
            )
            .await?
        } else {
            0
        };
        write.commit().await?;
        tracing::info!(
            tenant = %updated.tenant_id,
            requeued,
            username_mapping,
            active_device,
            lookalike_groups,
            "tenant policy set"
        );
        let tokens = active_token_count(self.store.db(), &updated.tenant_id).await?;
        Ok(Response::new(pb::SetTenantPolicyResponse {
            tenant: Some(to_pb(updated, tokens)),
        }))
    }
}
