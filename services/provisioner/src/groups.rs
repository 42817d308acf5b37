//! Groups and memberships. Membership changes are explicit adds and removes
//! inside one transaction, never a read-modify-write of the member list, so
//! concurrent PATCHes to one group cannot lose each other's members.

use std::collections::BTreeSet;

use dirsync_proto::provisioner::v1 as pb;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::{Value, json};
use tonic::{Request, Response, Status};

use crate::entity::ResourceKind;
use crate::entity::{group, group_member, user};
use crate::error::{ProvisionerError, Result, quoted};
use crate::group_creates::{GroupCreates, NewGroup};
use crate::listing::{self, ColumnMap, Limits, SqlFilter};
use crate::store::{Store, mark_pending, mark_pending_many, new_id, now_ms};
use dirsync_proto::errors::ErrorReason;
use dirsync_scim::limits::MAX_SHORT_CHARS;

/// Ids per `IN (…)` list, well inside every backend's parameter limit.
const ID_CHUNK: usize = 500;
const DEFAULT_MEMBER_PAGE: u64 = 500;
const MAX_MEMBER_PAGE: u64 = 5_000;

#[derive(Debug)]
pub(crate) struct GroupApi {
    store: Store,
    limits: Limits,
    creates: GroupCreates,
}

impl GroupApi {
    pub(crate) fn new(store: Store, limits: Limits) -> Self {
        Self {
            creates: GroupCreates::spawn(store.clone()),
            store,
            limits,
        }
    }
}

/// What one update does, in order: clear, remove, add.
#[derive(Debug, Default)]
struct Change {
    display_name: Option<String>,
    external_id: Option<String>,
    remove_all_members: bool,
    remove: Vec<String>,
    add: Vec<String>,
    expected_version: i64,
}

fn validate_display_name(name: &str) -> Result<String> {
    if name.trim().is_empty() {
        return Err(ProvisionerError::invalid(
            "display_name",
            "displayName must not be empty",
        ));
    }
    // Counted as the gateway counts it, in characters, so that a name the gateway took is
    // never refused here (a 200-character Japanese name is 600 bytes).
    let chars = name.chars().count();
    if chars > MAX_SHORT_CHARS {
        return Err(ProvisionerError::invalid(
            "display_name",
            format!("displayName is longer than {MAX_SHORT_CHARS} characters ({chars})"),
        ));
    }
    Ok(name.to_owned())
}

fn dedup(ids: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    ids.into_iter()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty() && seen.insert(id.clone()))
        .collect()
}

fn to_pb(model: group::Model, member_count: u64, members: Vec<pb::GroupMember>) -> pb::Group {
    pb::Group {
        tenant_id: model.tenant_id,
        id: model.id,
        display_name: model.display_name,
        external_id: model.external_id.unwrap_or_default(),
        version: model.version,
        create_time: Some(dirsync_proto::time::from_unix_ms(model.created_at)),
        update_time: Some(dirsync_proto::time::from_unix_ms(model.updated_at)),
        member_count,
        members,
    }
}

struct GroupColumns;

impl ColumnMap for GroupColumns {
    fn equality(&self, path: &dirsync_scim::AttrPath, value: &str) -> Option<SqlFilter> {
        if path.value_filter.is_some() || path.sub_attr.is_some() {
            return None;
        }
        match path.name.to_ascii_lowercase().as_str() {
            "id" => Some(SqlFilter::exact_expr(group::Column::Id.eq(value))),
            "displayname" => Some(SqlFilter::exact_expr(
                group::Column::DisplayNameKey.eq(value.to_lowercase()),
            )),
            "externalid" => Some(SqlFilter::exact_expr(group::Column::ExternalId.eq(value))),
            _ => None,
        }
    }
}

fn mentions_members(raw_filter: &str) -> bool {
    raw_filter.to_ascii_lowercase().contains("members")
}

/// The ids among `ids` that are users of the tenant.
pub(crate) async fn existing_users(
    txn: &impl ConnectionTrait,
    tenant_id: &str,
    ids: &[String],
) -> Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    for chunk in ids.chunks(ID_CHUNK) {
        let rows: Vec<String> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::TenantId.eq(tenant_id))
            .filter(user::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(txn)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// Fails naming (the first few of) the ids that are not in `found`.
pub(crate) fn refuse_unknown_members(ids: &[String], found: &BTreeSet<String>) -> Result<()> {
    let unknown: Vec<&str> = ids
        .iter()
        .filter(|id| !found.contains(*id))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ProvisionerError::invalid(
            "members",
            format!(
                "unknown member id(s): {}",
                unknown
                    .iter()
                    .take(5)
                    .map(|id| quoted(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

/// Fails naming every id that is not a user of the tenant.
pub(crate) async fn check_users_exist(
    txn: &impl ConnectionTrait,
    tenant_id: &str,
    ids: &[String],
) -> Result<()> {
    refuse_unknown_members(ids, &existing_users(txn, tenant_id, ids).await?)
}

async fn member_count(db: &impl ConnectionTrait, tenant_id: &str, group_id: &str) -> Result<u64> {
    Ok(group_member::Entity::find()
        .filter(group_member::Column::TenantId.eq(tenant_id))
        .filter(group_member::Column::GroupId.eq(group_id))
        .count(db)
        .await?)
}

/// Members with their userName, in user-id order, after `after`.
async fn members_page(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    group_id: &str,
    after: &str,
    limit: u64,
) -> Result<Vec<pb::GroupMember>> {
    let mut query = group_member::Entity::find()
        .select_only()
        .column(group_member::Column::UserId)
        .filter(group_member::Column::TenantId.eq(tenant_id))
        .filter(group_member::Column::GroupId.eq(group_id))
        .order_by_asc(group_member::Column::UserId)
        .limit(limit);
    if !after.is_empty() {
        query = query.filter(group_member::Column::UserId.gt(after));
    }
    let ids: Vec<String> = query.into_tuple().all(db).await?;
    let mut names = std::collections::HashMap::new();
    for chunk in ids.chunks(ID_CHUNK) {
        let rows: Vec<(String, String)> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::UserName)
            .filter(user::Column::TenantId.eq(tenant_id))
            .filter(user::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        names.extend(rows);
    }
    Ok(ids
        .into_iter()
        .map(|id| pb::GroupMember {
            display: names.get(&id).cloned().unwrap_or_default(),
            user_id: id,
        })
        .collect())
}

async fn all_members(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    group_id: &str,
) -> Result<Vec<pb::GroupMember>> {
    let mut members = Vec::new();
    loop {
        let after = members
            .last()
            .map(|m: &pb::GroupMember| m.user_id.clone())
            .unwrap_or_default();
        let page = members_page(db, tenant_id, group_id, &after, MAX_MEMBER_PAGE).await?;
        let done = (page.len() as u64) < MAX_MEMBER_PAGE;
        members.extend(page);
        if done {
            return Ok(members);
        }
    }
}

fn filter_view(model: &group::Model, members: Option<&[pb::GroupMember]>) -> Value {
    let mut view = json!({
        "schemas": [dirsync_scim::SCHEMA_GROUP],
        "id": model.id,
        "displayName": model.display_name,
        "meta": dirsync_scim::meta::meta("Group", model.created_at, model.updated_at, model.version, None),
    });
    if let Value::Object(map) = &mut view {
        if let Some(external_id) = &model.external_id {
            map.insert("externalId".to_owned(), Value::String(external_id.clone()));
        }
        if let Some(members) = members {
            map.insert(
                "members".to_owned(),
                Value::Array(
                    members
                        .iter()
                        .map(|m| json!({"value": m.user_id, "display": m.display}))
                        .collect(),
                ),
            );
        }
    }
    view
}

impl GroupApi {
    async fn load(
        &self,
        db: &impl ConnectionTrait,
        tenant_id: &str,
        id: &str,
    ) -> Result<group::Model> {
        group::Entity::find_by_id((tenant_id.to_owned(), id.to_owned()))
            .one(db)
            .await?
            .ok_or_else(|| ProvisionerError::not_found(ErrorReason::GroupNotFound, "group", id))
    }

    async fn render(&self, model: group::Model, include_members: bool) -> Result<pb::Group> {
        let db = self.store.db();
        let count = member_count(db, &model.tenant_id, &model.id).await?;
        let members = if include_members {
            all_members(db, &model.tenant_id, &model.id).await?
        } else {
            Vec::new()
        };
        Ok(to_pb(model, count, members))
    }

    async fn create(&self, request: pb::CreateGroupRequest) -> Result<pb::Group> {
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        self.store.check_writer(&tenant_id, request.source).await?;
        let display_name = validate_display_name(&request.display_name)?;
        let members = dedup(request.member_user_ids);
        let now = now_ms();
        let row = group::Model {
            tenant_id,
            id: new_id(),
            display_name_key: display_name.to_lowercase(),
            display_name,
            external_id: Some(request.external_id).filter(|id| !id.is_empty()),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let count = members.len() as u64;
        self.creates
            .create(NewGroup {
                row: row.clone(),
                members,
            })
            .await?;
        Ok(to_pb(row, count, Vec::new()))
    }

    async fn list(&self, request: pb::ListGroupsRequest) -> Result<pb::ListGroupsResponse> {
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        let page = self.limits.page(listing::PageRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            start_index: request.start_index,
            count_only: request.count_only,
        })?;
        let filter = listing::parse_filter(&request.filter)?;
        let sql = filter.as_ref().map_or(SqlFilter::everything(), |filter| {
            listing::translate(filter, &GroupColumns)
        });
        let mut query = group::Entity::find().filter(group::Column::TenantId.eq(tenant_id));
        if let Some(condition) = sql.condition.clone() {
            query = query.filter(condition);
        }
        let query = query
            .order_by_asc(group::Column::CreatedAt)
            .order_by_asc(group::Column::Id);
        let db = self.store.db();
        let (rows, total) = match &filter {
            Some(filter) if !sql.exact => {
                let with_members = mentions_members(&request.filter);
                let mut matched = Vec::new();
                for row in listing::candidates(db, query).await? {
                    let members = if with_members {
                        Some(all_members(db, &row.tenant_id, &row.id).await?)
                    } else {
                        None
                    };
                    if filter.matches(&filter_view(&row, members.as_deref())) {
                        matched.push(row);
                    }
                }
                listing::page_of(matched, page)
            }
            _ => listing::exact_page(db, query, page).await?,
        };
        let next_page_token = page.next_token(rows.len(), total);
        let mut groups = Vec::with_capacity(rows.len());
        for row in rows {
            groups.push(self.render(row, request.include_members).await?);
        }
        Ok(pb::ListGroupsResponse {
            groups,
            next_page_token,
            total_size: i64::try_from(total).unwrap_or(i64::MAX),
            start_index: page.start_index(),
        })
    }

    async fn update(&self, tenant_id: &str, id: &str, change: Change) -> Result<pb::Group> {
        let display_name = change
            .display_name
            .as_deref()
            .map(validate_display_name)
            .transpose()?;
        let add = dedup(change.add);
        let remove = dedup(change.remove);

        let write = self.store.write().await?;
        let current = self.load(&write.txn, tenant_id, id).await?;
        if change.expected_version != 0 && change.expected_version != current.version {
            return Err(ProvisionerError::version_conflict(
                change.expected_version,
                current.version,
            ));
        }
        check_users_exist(&write.txn, tenant_id, &add).await?;

        let mut update = group::Entity::update_many()
            .col_expr(
                group::Column::Version,
                Expr::col(group::Column::Version).add(1),
            )
            .col_expr(group::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(group::Column::TenantId.eq(tenant_id))
            .filter(group::Column::Id.eq(id));
        if let Some(name) = &display_name {
            update = update
                .col_expr(group::Column::DisplayName, Expr::value(name.clone()))
                .col_expr(
                    group::Column::DisplayNameKey,
                    Expr::value(name.to_lowercase()),
                );
        }
        if let Some(external_id) = &change.external_id {
            let value = Some(external_id.clone()).filter(|id| !id.is_empty());
            update = update.col_expr(group::Column::ExternalId, Expr::value(value));
        }
        update.exec(&write.txn).await.map_err(|error| {
            ProvisionerError::from(error).when_taken("display_name", || {
                format!(
                    "a group named {} already exists",
                    quoted(display_name.as_deref().unwrap_or_default())
                )
            })
        })?;

        // MaaS360 keeps group membership on the user (per-user group
        // add/remove), so each member whose groups change is queued.
        let mut affected: Vec<String> = add.iter().chain(remove.iter()).cloned().collect();
        if change.remove_all_members {
            affected.extend(current_member_ids(&write.txn, tenant_id, id).await?);
            group_member::Entity::delete_many()
                .filter(group_member::Column::TenantId.eq(tenant_id))
                .filter(group_member::Column::GroupId.eq(id))
                .exec(&write.txn)
                .await?;
        }
        for chunk in remove.chunks(ID_CHUNK) {
            group_member::Entity::delete_many()
                .filter(group_member::Column::TenantId.eq(tenant_id))
                .filter(group_member::Column::GroupId.eq(id))
                .filter(group_member::Column::UserId.is_in(chunk.to_vec()))
                .exec(&write.txn)
                .await?;
        }
        insert_members(&write.txn, tenant_id, id, &add).await?;
        if display_name.is_some() || change.external_id.is_some() {
            mark_pending(&write.txn, tenant_id, ResourceKind::Group, id, false).await?;
        }
        mark_users_pending(&write.txn, tenant_id, &dedup(affected)).await?;
        let updated = self.load(&write.txn, tenant_id, id).await?;
        let count = member_count(&write.txn, tenant_id, id).await?;
        write.commit().await?;
        Ok(to_pb(updated, count, Vec::new()))
    }

    async fn delete(&self, tenant_id: &str, id: &str) -> Result<()> {
        let write = self.store.write().await?;
        let deleted = group::Entity::delete_many()
            .filter(group::Column::TenantId.eq(tenant_id))
            .filter(group::Column::Id.eq(id))
            .exec(&write.txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(ProvisionerError::not_found(
                ErrorReason::GroupNotFound,
                "group",
                id,
            ));
        }
        let members = current_member_ids(&write.txn, tenant_id, id).await?;
        mark_users_pending(&write.txn, tenant_id, &members).await?;
        group_member::Entity::delete_many()
            .filter(group_member::Column::TenantId.eq(tenant_id))
            .filter(group_member::Column::GroupId.eq(id))
            .exec(&write.txn)
            .await?;
        mark_pending(&write.txn, tenant_id, ResourceKind::Group, id, true).await?;
        write.commit().await
    }
}

async fn current_member_ids(
    txn: &impl ConnectionTrait,
    tenant_id: &str,
    group_id: &str,
) -> Result<Vec<String>> {
    Ok(group_member::Entity::find()
        .select_only()
        .column(group_member::Column::UserId)
        .filter(group_member::Column::TenantId.eq(tenant_id))
        .filter(group_member::Column::GroupId.eq(group_id))
        .into_tuple()
        .all(txn)
        .await?)
}

pub(crate) async fn mark_users_pending(
    txn: &impl ConnectionTrait,
    tenant_id: &str,
    user_ids: &[String],
) -> Result<()> {
    // Each member once: a chunk naming a user twice would update its row twice in one
    // statement, which PostgreSQL refuses.
    let unique: Vec<String> = user_ids
        .iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .cloned()
        .collect();
    mark_pending_many(txn, tenant_id, ResourceKind::User, &unique, false).await
}

/// Adds members; a member already present is left as it is.
pub(crate) async fn insert_members(
    txn: &impl ConnectionTrait,
    tenant_id: &str,
    group_id: &str,
    user_ids: &[String],
) -> Result<()> {
    for chunk in user_ids.chunks(ID_CHUNK) {
        let rows = chunk.iter().map(|user_id| group_member::ActiveModel {
            tenant_id: Set(tenant_id.to_owned()),
            group_id: Set(group_id.to_owned()),
            user_id: Set(user_id.clone()),
        });
        group_member::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    group_member::Column::TenantId,
                    group_member::Column::GroupId,
                    group_member::Column::UserId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

#[tonic::async_trait]
impl pb::group_service_server::GroupService for GroupApi {
    async fn create_group(
        &self,
        request: Request<pb::CreateGroupRequest>,
    ) -> Result<Response<pb::CreateGroupResponse>, Status> {
        let group = self.create(request.into_inner()).await?;
        Ok(Response::new(pb::CreateGroupResponse {
            group: Some(group),
        }))
    }

    async fn get_group(
        &self,
        request: Request<pb::GetGroupRequest>,
    ) -> Result<Response<pb::GetGroupResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        let model = self.load(self.store.db(), &tenant_id, &request.id).await?;
        let group = self.render(model, request.include_members).await?;
        Ok(Response::new(pb::GetGroupResponse { group: Some(group) }))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }

    async fn update_group(
        &self,
        request: Request<pb::UpdateGroupRequest>,
    ) -> Result<Response<pb::UpdateGroupResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        self.store.check_writer(&tenant_id, request.source).await?;
        let change = Change {
            display_name: request.display_name,
            external_id: request.external_id,
            remove_all_members: request.remove_all_members,
            remove: request.remove_member_user_ids,
            add: request.add_member_user_ids,
            expected_version: request.expected_version,
        };
        let group = self.update(&tenant_id, &request.id, change).await?;
        Ok(Response::new(pb::UpdateGroupResponse {
            group: Some(group),
        }))
    }

    async fn delete_group(
        &self,
        request: Request<pb::DeleteGroupRequest>,
    ) -> Result<Response<pb::DeleteGroupResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        self.store.check_writer(&tenant_id, request.source).await?;
        self.delete(&tenant_id, &request.id).await?;
        Ok(Response::new(pb::DeleteGroupResponse {}))
    }

    async fn add_group_members(
        &self,
        request: Request<pb::AddGroupMembersRequest>,
    ) -> Result<Response<pb::AddGroupMembersResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        self.store.check_writer(&tenant_id, request.source).await?;
        let change = Change {
            add: request.user_ids,
            ..Change::default()
        };
        let group = self.update(&tenant_id, &request.group_id, change).await?;
        Ok(Response::new(pb::AddGroupMembersResponse {
            group: Some(group),
        }))
    }

    async fn remove_group_members(
        &self,
        request: Request<pb::RemoveGroupMembersRequest>,
    ) -> Result<Response<pb::RemoveGroupMembersResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        self.store.check_writer(&tenant_id, request.source).await?;
        let change = Change {
            remove: request.user_ids,
            ..Change::default()
        };
        let group = self.update(&tenant_id, &request.group_id, change).await?;
        Ok(Response::new(pb::RemoveGroupMembersResponse {
            group: Some(group),
        }))
    }

    async fn list_group_members(
        &self,
        request: Request<pb::ListGroupMembersRequest>,
    ) -> Result<Response<pb::ListGroupMembersResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        let size = match u64::try_from(request.page_size) {
            Ok(0) => DEFAULT_MEMBER_PAGE,
            Ok(size) => Ord::min(size, MAX_MEMBER_PAGE),
            Err(_) => {
                return Err(ProvisionerError::invalid(
                    "page_size",
                    "page_size must not be negative",
                )
                .into());
            }
        };
        let db = self.store.db();
        self.load(db, &tenant_id, &request.group_id).await?;
        let total = member_count(db, &tenant_id, &request.group_id).await?;
        let members =
            members_page(db, &tenant_id, &request.group_id, &request.page_token, size).await?;
        let next_page_token = match members.last() {
            Some(last) if members.len() as u64 == size => last.user_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListGroupMembersResponse {
            members,
            next_page_token,
            total_size: i64::try_from(total).unwrap_or(i64::MAX),
        }))
    }
}
