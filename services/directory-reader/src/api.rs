//! The gRPC service: each RPC resolves its tenant through the provisioner, then delegates.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use dirsync_graph::GraphClient;
use dirsync_proto::directory::v1 as pb;
use dirsync_proto::errors::{ApiError, ErrorReason};
use dirsync_proto::provisioner::v1::TenantMode;
use tonic::{Request, Response, Status};

use crate::Service;
use crate::connection::{self, Use};
use crate::desired;
use crate::drift;
use crate::entity;
use crate::error::{DirectoryError, Result};
use crate::provisioner::TenantInfo;
use crate::reads::{self, Stream};
use crate::settings::{self, PullSettings};
use crate::sync::{self, SyncRequest, Wait};
use crate::time::now_ms;

#[derive(Debug)]
pub(crate) struct Api {
    service: Arc<Service>,
    draining: dirsync_runtime::shutdown::Draining,
}

impl Api {
    pub(crate) fn new(
        service: Arc<Service>,
        draining: dirsync_runtime::shutdown::Draining,
    ) -> Self {
        Self { service, draining }
    }
}

impl Service {
    /// The tenant, its stored connection, and a Graph client for it.
    async fn connected(
        &self,
        tenant: &str,
    ) -> Result<(TenantInfo, entity::connection::Model, GraphClient)> {
        let tenant = self.provisioner.tenant(tenant).await?;
        let connection = self
            .store
            .connection(&tenant.id)
            .await?
            .ok_or_else(DirectoryError::no_connection)?;
        let client = connection::client(&connection, &self.config, Use::Sync)
            .map_err(connection::BuildError::stored)?;
        Ok((tenant, connection, client))
    }

    async fn settings(&self, tenant_id: &str) -> Result<PullSettings> {
        Ok(PullSettings::from_stored(
            self.store.settings(tenant_id).await?.as_ref(),
            self.config.deletion_guard_percent,
        ))
    }

    async fn set_connection(
        &self,
        request: pb::SetEntraConnectionRequest,
    ) -> Result<pb::SetEntraConnectionResponse> {
        let tenant = self.provisioner.tenant(&request.tenant).await?;
        let now = now_ms();
        let mut model = connection::validate(&tenant.id, request.connection.as_ref(), now)?;
        let client = connection::client(&model, &self.config, Use::Check)
            .map_err(connection::BuildError::invalid)?;
        let organization = connection::check(&client)
            .await
            .map_err(|e| connection::check_failed(&e, connection::is_certificate(&model)))?;
        model.organization = organization
            .display_name
            .clone()
            .unwrap_or_else(|| organization.id.clone());
        self.store.put_connection(model.clone()).await?;
        tracing::info!(tenant = %tenant.id, entra_tenant = %model.entra_tenant_id, "Entra connection set");
        Ok(pb::SetEntraConnectionResponse {
            connection: Some(connection::to_pb(&model)),
            organization: model.organization,
        })
    }

    async fn check_connection(&self, tenant: &str) -> Result<pb::CheckEntraConnectionResponse> {
        let tenant = self.provisioner.tenant(tenant).await?;
        let model = self
            .store
            .connection(&tenant.id)
            .await?
            .ok_or_else(DirectoryError::no_connection)?;
        let client = connection::client(&model, &self.config, Use::Check)
            .map_err(connection::BuildError::stored)?;
        let organization = connection::check(&client)
            .await
            .map_err(|e| connection::stored_check_failed(&e, connection::is_certificate(&model)))?;
        let name = organization
            .display_name
            .clone()
            .unwrap_or_else(|| organization.id.clone());
        self.store
            .touch_connection(&tenant.id, &name, now_ms())
            .await?;
        Ok(pb::CheckEntraConnectionResponse { organization: name })
    }

    async fn sync_state(&self, tenant: &str) -> Result<pb::GetSyncStateResponse> {
        let tenant = self.provisioner.tenant(tenant).await?;
        let state = self.store.sync_state(&tenant.id).await?;
        let has_cursor = self.store.cursors(&tenant.id).await?.is_some();
        let connected = self.store.connection(&tenant.id).await?.is_some();
        let scheduled = self.config.schedule && connected && tenant.mode == TenantMode::Pull;
        let time = dirsync_proto::time::from_unix_ms;
        Ok(pb::GetSyncStateResponse {
            state: Some(pb::SyncState {
                tenant_id: tenant.id.clone(),
                has_cursor,
                last_full_sync_time: state.as_ref().and_then(|s| s.last_full_sync_at).map(time),
                last_sync_time: state.as_ref().and_then(|s| s.last_sync_at).map(time),
                last_outcome: state
                    .as_ref()
                    .map(|s| s.last_outcome.clone())
                    .unwrap_or_default(),
                next_sync_time: scheduled
                    .then(|| time(crate::scheduler::next_sync(state.as_ref(), &self.config))),
                users: state
                    .as_ref()
                    .map_or(0, |s| u64::try_from(s.users).unwrap_or(0)),
                groups: state
                    .as_ref()
                    .map_or(0, |s| u64::try_from(s.groups).unwrap_or(0)),
            }),
        })
    }

    async fn drift(&self, tenant: &str) -> Result<pb::GetDriftResponse> {
        let (tenant, _, client) = self.connected(tenant).await?;
        let settings = self.settings(&tenant.id).await?;
        let snapshot = sync::read_entra(&client)
            .await
            .map_err(|e| DirectoryError::graph(&e))?;
        let entra = desired::compute(&snapshot, &settings.rules(&[]))
            .map_err(|unknown| reads::entra_group_not_found(&unknown.entry))?;
        let (users, groups, maas360_users, maas360_groups) = tokio::try_join!(
            self.provisioner.current_users(&tenant.id),
            self.provisioner.current_groups(&tenant.id),
            self.provisioner.maas360_users(&tenant.id),
            self.provisioner.maas360_groups(&tenant.id),
        )?;
        // Only MaaS360 groups that Entra or dirsync has by name are read member by member.
        let wanted: HashSet<String> = entra
            .groups
            .iter()
            .map(|g| g.display_name.to_lowercase())
            .chain(groups.iter().map(|g| g.display_name.to_lowercase()))
            .collect();
        let mut members = BTreeMap::new();
        for group in maas360_groups {
            if !wanted.contains(&group.name.to_lowercase()) {
                continue;
            }
            let held: BTreeSet<String> = self
                .provisioner
                .maas360_group_users(&tenant.id, &group.group_id)
                .await?
                .iter()
                .filter(|u| drift::is_live(u))
                .map(|u| drift::maas360_key(u, tenant.full_username))
                .collect();
            members.insert(group.name, held);
        }
        Ok(drift::compare(&drift::Views {
            entra: &entra,
            users: &users,
            groups: &groups,
            maas360_users: &maas360_users,
            maas360_groups: &members,
            full_username: tenant.full_username,
        }))
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::directory_reader_service_server::DirectoryReaderService for Api {
    type StreamUsersStream = Stream<pb::StreamUsersResponse>;
    type StreamGroupsStream = Stream<pb::StreamGroupsResponse>;
    type StreamChangesStream = Stream<pb::StreamChangesResponse>;

    async fn set_entra_connection(
        &self,
        request: Request<pb::SetEntraConnectionRequest>,
    ) -> Reply<pb::SetEntraConnectionResponse> {
        Ok(Response::new(
            self.service.set_connection(request.into_inner()).await?,
        ))
    }

    async fn get_entra_connection(
        &self,
        request: Request<pb::GetEntraConnectionRequest>,
    ) -> Reply<pb::GetEntraConnectionResponse> {
        let request = request.into_inner();
        let tenant = self.service.provisioner.tenant(&request.tenant).await?;
        let connection = self
            .service
            .store
            .connection(&tenant.id)
            .await
            .map_err(Status::from)?;
        let settings = self.service.settings(&tenant.id).await?;
        Ok(Response::new(pb::GetEntraConnectionResponse {
            connection: connection.as_ref().map(connection::to_pb),
            pull: Some(settings.to_pb()),
        }))
    }

    async fn check_entra_connection(
        &self,
        request: Request<pb::CheckEntraConnectionRequest>,
    ) -> Reply<pb::CheckEntraConnectionResponse> {
        Ok(Response::new(
            self.service
                .check_connection(&request.into_inner().tenant)
                .await?,
        ))
    }

    async fn set_pull_settings(
        &self,
        request: Request<pb::SetPullSettingsRequest>,
    ) -> Reply<pb::SetPullSettingsResponse> {
        let request = request.into_inner();
        let tenant = self.service.provisioner.tenant(&request.tenant).await?;
        let model = settings::validate(&tenant.id, request.settings.as_ref(), now_ms())?;
        self.service
            .store
            .put_settings(model.clone())
            .await
            .map_err(Status::from)?;
        let stored =
            PullSettings::from_stored(Some(&model), self.service.config.deletion_guard_percent);
        Ok(Response::new(pb::SetPullSettingsResponse {
            settings: Some(stored.to_pb()),
        }))
    }

    async fn stream_users(
        &self,
        request: Request<pb::StreamUsersRequest>,
    ) -> Reply<Self::StreamUsersStream> {
        let request = request.into_inner();
        let scope = settings::scope(&request.group_scope, "group_scope")?;
        let (_, _, client) = self.service.connected(&request.tenant).await?;
        let users = reads::users(&client, &scope).await?;
        let messages = users
            .into_iter()
            .map(|user| pb::StreamUsersResponse { user: Some(user) })
            .collect();
        Ok(Response::new(reads::stream(
            messages,
            self.draining.clone(),
        )))
    }

    async fn stream_groups(
        &self,
        request: Request<pb::StreamGroupsRequest>,
    ) -> Reply<Self::StreamGroupsStream> {
        let request = request.into_inner();
        let scope = settings::scope(&request.group_scope, "group_scope")?;
        let (_, _, client) = self.service.connected(&request.tenant).await?;
        let groups = reads::groups(&client, &scope).await?;
        let messages = groups
            .into_iter()
            .map(|group| pb::StreamGroupsResponse { group: Some(group) })
            .collect();
        Ok(Response::new(reads::stream(
            messages,
            self.draining.clone(),
        )))
    }

    async fn list_group_members(
        &self,
        request: Request<pb::ListGroupMembersRequest>,
    ) -> Reply<pb::ListGroupMembersResponse> {
        let request = request.into_inner();
        let (tenant, _, client) = self.service.connected(&request.tenant).await?;
        Ok(Response::new(
            reads::group_members(&client, &self.service.member_cache, &tenant.id, &request).await?,
        ))
    }

    async fn stream_changes(
        &self,
        request: Request<pb::StreamChangesRequest>,
    ) -> Reply<Self::StreamChangesStream> {
        let request = request.into_inner();
        let scope = settings::scope(&request.group_scope, "group_scope")?;
        let (_, connection, client) = self.service.connected(&request.tenant).await?;
        let messages = crate::changes::round(
            &client,
            &connection::graph_root(&connection),
            &request.cursor,
            &scope,
        )
        .await?;
        Ok(Response::new(reads::stream(
            messages,
            self.draining.clone(),
        )))
    }

    async fn sync_tenant(
        &self,
        request: Request<pb::SyncTenantRequest>,
    ) -> Reply<pb::SyncTenantResponse> {
        let request = SyncRequest::from_pb(request.into_inner())?;
        match self.service.sync(request, Wait::Yes).await? {
            Some(response) => Ok(Response::new(response)),
            None => Err(ApiError::new(ErrorReason::Internal, "the sync did not run").into_status()),
        }
    }

    async fn get_sync_state(
        &self,
        request: Request<pb::GetSyncStateRequest>,
    ) -> Reply<pb::GetSyncStateResponse> {
        Ok(Response::new(
            self.service
                .sync_state(&request.into_inner().tenant)
                .await?,
        ))
    }

    async fn get_drift(
        &self,
        request: Request<pb::GetDriftRequest>,
    ) -> Reply<pb::GetDriftResponse> {
        Ok(Response::new(
            self.service.drift(&request.into_inner().tenant).await?,
        ))
    }
}
