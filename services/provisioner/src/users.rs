//! Users as Entra wants them. The SCIM document is stored whole, exactly as
//! normalised; the indexed columns are derived from it on every write.

use dirsync_proto::provisioner::v1 as pb;
use dirsync_scim::{CompValue, CompareOp, Filter, UserSummary};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::Value;
use tonic::{Request, Response, Status};

use crate::entity::ResourceKind;
use crate::entity::{group, group_member, user};
use crate::error::{ProvisionerError, Result, quoted};
use crate::listing::{self, ColumnMap, Limits, SqlFilter};
use crate::store::{Store, mark_pending, new_id, now_ms};
use crate::user_creates::UserCreates;
use crate::user_fields;
use crate::user_lookups::UserNameLookups;
use dirsync_proto::errors::ErrorReason;
use dirsync_scim::ScimType;

#[derive(Debug)]
pub(crate) struct UserApi {
    store: Store,
    limits: Limits,
    creates: UserCreates,
    lookups: UserNameLookups,
}

impl UserApi {
    pub(crate) fn new(store: Store, limits: Limits, lookups: UserNameLookups) -> Self {
        Self {
            creates: UserCreates::spawn(store.clone()),
            lookups,
            store,
            limits,
        }
    }
}

/// A validated user body: the stored document and what is indexed from it.
struct UserDocument {
    json: String,
    summary: UserSummary,
}

/// The user a request writes, from its SCIM document or its typed fields: both go through the
/// same normalisation, so both land in the same desired state.
fn parse_user(input: Option<pb::UserInput>) -> Result<UserDocument> {
    let (value, field) = match input.and_then(|input| input.source) {
        Some(pb::user_input::Source::ScimJson(json)) => {
            let value: Value = serde_json::from_str(&json).map_err(|error| {
                ProvisionerError::scim_type(
                    ScimType::InvalidSyntax,
                    Some("user.scim_json"),
                    format!("user is not valid JSON: {error}"),
                )
            })?;
            (value, "user.scim_json")
        }
        Some(pb::user_input::Source::Fields(fields)) => {
            (user_fields::to_document(&fields), "user.fields")
        }
        None => {
            return Err(ProvisionerError::scim_type(
                ScimType::InvalidSyntax,
                Some("user"),
                "user is required: its SCIM document (scim_json) or its typed fields",
            ));
        }
    };
    let document = dirsync_scim::normalize_user(value)
        .map_err(|error| ProvisionerError::scim(error, field))?;
    let summary = UserSummary::from_resource(&document)
        .map_err(|error| ProvisionerError::scim(error, field))?;
    Ok(UserDocument {
        json: document.to_string(),
        summary,
    })
}

fn lower(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|text| text.to_lowercase())
}

pub(crate) fn to_pb(model: user::Model) -> pb::User {
    to_pb_view(model, pb::UserView::Full)
}

/// The user as `view` asks: the typed fields cost a parse of the stored document, which a
/// client reading the document only (the SCIM gateway) spares with `USER_VIEW_BASIC`.
fn to_pb_view(model: user::Model, view: pb::UserView) -> pb::User {
    let fields = (view != pb::UserView::Basic).then(|| {
        let document: Value = serde_json::from_str(&model.scim_json).unwrap_or(Value::Null);
        user_fields::from_document(&document)
    });
    pb::User {
        tenant_id: model.tenant_id,
        id: model.id,
        fields,
        version: model.version,
        create_time: Some(dirsync_proto::time::from_unix_ms(model.created_at)),
        update_time: Some(dirsync_proto::time::from_unix_ms(model.updated_at)),
        scim_json: model.scim_json,
    }
}

/// The userName of Entra's matching query, `userName eq "…"`, when `filter` is exactly that.
fn matching_user_name(filter: &Filter) -> Option<&str> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::Str(user_name),
        } if path.name.eq_ignore_ascii_case("userName")
            && path.sub_attr.is_none()
            && path.value_filter.is_none() =>
        {
            Some(user_name)
        }
        _ => None,
    }
}

/// The resource as a SCIM client sees it, for evaluating filters that SQL
/// alone cannot decide.
fn filter_view(model: &user::Model) -> Value {
    let mut view: Value = serde_json::from_str(&model.scim_json).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut view {
        map.insert("id".to_owned(), Value::String(model.id.clone()));
        map.insert(
            "meta".to_owned(),
            dirsync_scim::meta::meta(
                "User",
                model.created_at,
                model.updated_at,
                model.version,
                None,
            ),
        );
    }
    view
}

struct UserColumns;

impl ColumnMap for UserColumns {
    fn equality(&self, path: &dirsync_scim::AttrPath, value: &str) -> Option<SqlFilter> {
        if path.value_filter.is_none() && path.sub_attr.is_none() {
            let name = path.name.to_ascii_lowercase();
            return match name.as_str() {
                "id" => Some(SqlFilter::exact_expr(user::Column::Id.eq(value))),
                "username" => Some(SqlFilter::exact_expr(
                    user::Column::UserNameKey.eq(value.to_lowercase()),
                )),
                "externalid" => Some(SqlFilter::exact_expr(user::Column::ExternalId.eq(value))),
                "displayname" => Some(SqlFilter::exact_expr(
                    user::Column::DisplayNameKey.eq(value.to_lowercase()),
                )),
                _ => None,
            };
        }
        // The indexed email is the work (else primary, else first) one, so it
        // narrows `emails[type eq "work"].value eq x` and `emails.value eq x`;
        // the evaluator then checks the exact element.
        let is_email_value = path.name.eq_ignore_ascii_case("emails")
            && path
                .sub_attr
                .as_deref()
                .is_none_or(|sub| sub.eq_ignore_ascii_case("value"));
        if is_email_value && path.value_filter.is_some() {
            return Some(SqlFilter::narrowing_expr(
                user::Column::EmailKey.eq(value.to_lowercase()),
            ));
        }
        None
    }

    fn boolean(&self, path: &dirsync_scim::AttrPath, value: bool) -> Option<SqlFilter> {
        path.is("active")
            .then(|| SqlFilter::exact_expr(user::Column::Active.eq(value)))
    }
}

impl UserApi {
    async fn create(&self, tenant_id: &str, input: Option<pb::UserInput>) -> Result<pb::User> {
        let document = parse_user(input)?;
        let summary = &document.summary;
        let now = now_ms();
        let row = user::Model {
            tenant_id: tenant_id.to_owned(),
            id: new_id(),
            user_name: summary.user_name.clone(),
            user_name_key: summary.user_name.to_lowercase(),
            external_id: summary.external_id.clone(),
            display_name: summary.display_name.clone(),
            display_name_key: lower(&summary.display_name),
            email: summary.email.clone(),
            email_key: lower(&summary.email),
            given_name: summary.given_name.clone(),
            family_name: summary.family_name.clone(),
            active: summary.active,
            scim_json: document.json,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.creates.create(row.clone()).await?;
        Ok(to_pb(row))
    }

    async fn get(&self, tenant_id: &str, id: &str) -> Result<user::Model> {
        user::Entity::find_by_id((tenant_id.to_owned(), id.to_owned()))
            .one(self.store.db())
            .await?
            .ok_or_else(|| ProvisionerError::not_found(ErrorReason::UserNotFound, "user", id))
    }

    async fn list(&self, request: pb::ListUsersRequest) -> Result<pb::ListUsersResponse> {
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        let view = request.view();
        let in_view = |row| to_pb_view(row, view);
        let page = self.limits.page(listing::PageRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            start_index: request.start_index,
            count_only: request.count_only,
        })?;
        let filter = listing::parse_filter(&request.filter)?;
        if let Some(user_name) = filter.as_ref().and_then(matching_user_name)
            && page.offset == 0
            && page.limit > 0
        {
            // userName is unique per tenant: the whole result is this one user or nobody.
            let rows: Vec<user::Model> = self
                .lookups
                .find(&tenant_id, user_name)
                .await?
                .into_iter()
                .collect();
            let total = rows.len() as u64;
            return Ok(pb::ListUsersResponse {
                next_page_token: page.next_token(rows.len(), total),
                users: rows.into_iter().map(in_view).collect(),
                total_size: i64::try_from(total).unwrap_or(i64::MAX),
                start_index: page.start_index(),
            });
        }
        let sql = filter.as_ref().map_or(SqlFilter::everything(), |filter| {
            listing::translate(filter, &UserColumns)
        });
        let mut query = user::Entity::find().filter(user::Column::TenantId.eq(tenant_id));
        if let Some(condition) = sql.condition.clone() {
            query = query.filter(condition);
        }
        let query = query
            .order_by_asc(user::Column::CreatedAt)
            .order_by_asc(user::Column::Id);
        let db = self.store.db();
        let (rows, total) = match &filter {
            Some(filter) if !sql.exact => {
                let matched = listing::candidates(db, query)
                    .await?
                    .into_iter()
                    .filter(|row| filter.matches(&filter_view(row)))
                    .collect();
                listing::page_of(matched, page)
            }
            _ => listing::exact_page(db, query, page).await?,
        };
        Ok(pb::ListUsersResponse {
            next_page_token: page.next_token(rows.len(), total),
            users: rows.into_iter().map(in_view).collect(),
            total_size: i64::try_from(total).unwrap_or(i64::MAX),
            start_index: page.start_index(),
        })
    }

    async fn replace(&self, request: pb::ReplaceUserRequest) -> Result<pb::User> {
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        self.store.check_writer(&tenant_id, request.source).await?;
        let document = parse_user(request.user)?;
        let summary = &document.summary;
        let write = self.store.write().await?;
        let current = user::Entity::find_by_id((tenant_id, request.id.clone()))
            .one(&write.txn)
            .await?
            .ok_or_else(|| {
                ProvisionerError::not_found(ErrorReason::UserNotFound, "user", &request.id)
            })?;
        if request.expected_version != 0 && request.expected_version != current.version {
            return Err(ProvisionerError::version_conflict(
                request.expected_version,
                current.version,
            ));
        }
        let row = user::Model {
            user_name: summary.user_name.clone(),
            user_name_key: summary.user_name.to_lowercase(),
            external_id: summary.external_id.clone(),
            display_name: summary.display_name.clone(),
            display_name_key: lower(&summary.display_name),
            email: summary.email.clone(),
            email_key: lower(&summary.email),
            given_name: summary.given_name.clone(),
            family_name: summary.family_name.clone(),
            active: summary.active,
            scim_json: document.json,
            version: current.version + 1,
            updated_at: now_ms(),
            ..current.clone()
        };
        // The version in the WHERE clause makes the write conditional on
        // PostgreSQL too, where transactions run side by side.
        let updated = user::Entity::update_many()
            .set(user::ActiveModel {
                user_name: Set(row.user_name.clone()),
                user_name_key: Set(row.user_name_key.clone()),
                external_id: Set(row.external_id.clone()),
                display_name: Set(row.display_name.clone()),
                display_name_key: Set(row.display_name_key.clone()),
                email: Set(row.email.clone()),
                email_key: Set(row.email_key.clone()),
                given_name: Set(row.given_name.clone()),
                family_name: Set(row.family_name.clone()),
                active: Set(row.active),
                scim_json: Set(row.scim_json.clone()),
                version: Set(row.version),
                updated_at: Set(row.updated_at),
                ..Default::default()
            })
            .filter(user::Column::TenantId.eq(row.tenant_id.clone()))
            .filter(user::Column::Id.eq(row.id.clone()))
            .filter(user::Column::Version.eq(current.version))
            .exec(&write.txn)
            .await
            .map_err(|error| {
                ProvisionerError::from(error).when_taken("userName", || {
                    format!("userName {} is already taken", quoted(&row.user_name))
                })
            })?;
        if updated.rows_affected == 0 {
            return Err(ProvisionerError::version_conflict(
                current.version,
                current.version + 1,
            ));
        }
        mark_pending(
            &write.txn,
            &row.tenant_id,
            ResourceKind::User,
            &row.id,
            false,
        )
        .await?;
        write.commit().await?;
        Ok(to_pb(row))
    }

    async fn delete(&self, tenant_id: &str, id: &str) -> Result<()> {
        let write = self.store.write().await?;
        let deleted = user::Entity::delete_many()
            .filter(user::Column::TenantId.eq(tenant_id))
            .filter(user::Column::Id.eq(id))
            .exec(&write.txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(ProvisionerError::not_found(
                ErrorReason::UserNotFound,
                "user",
                id,
            ));
        }
        let groups: Vec<String> = group_member::Entity::find()
            .select_only()
            .column(group_member::Column::GroupId)
            .filter(group_member::Column::TenantId.eq(tenant_id))
            .filter(group_member::Column::UserId.eq(id))
            .into_tuple()
            .all(&write.txn)
            .await?;
        if !groups.is_empty() {
            group_member::Entity::delete_many()
                .filter(group_member::Column::TenantId.eq(tenant_id))
                .filter(group_member::Column::UserId.eq(id))
                .exec(&write.txn)
                .await?;
            group::Entity::update_many()
                .col_expr(
                    group::Column::Version,
                    Expr::col(group::Column::Version).add(1),
                )
                .col_expr(group::Column::UpdatedAt, Expr::value(now_ms()))
                .filter(group::Column::TenantId.eq(tenant_id))
                .filter(group::Column::Id.is_in(groups.clone()))
                .exec(&write.txn)
                .await?;
            // Deleting the MaaS360 user ends its memberships; the groups
            // themselves need no MaaS360 write.
        }
        mark_pending(&write.txn, tenant_id, ResourceKind::User, id, true).await?;
        write.commit().await?;
        Ok(())
    }
}

#[tonic::async_trait]
impl pb::user_service_server::UserService for UserApi {
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        self.store.check_writer(&tenant_id, request.source).await?;
        let user = self.create(&tenant_id, request.user).await?;
        Ok(Response::new(pb::CreateUserResponse { user: Some(user) }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        let user = to_pb_view(self.get(&tenant_id, &request.id).await?, request.view());
        Ok(Response::new(pb::GetUserResponse { user: Some(user) }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }

    async fn replace_user(
        &self,
        request: Request<pb::ReplaceUserRequest>,
    ) -> Result<Response<pb::ReplaceUserResponse>, Status> {
        let user = self.replace(request.into_inner()).await?;
        Ok(Response::new(pb::ReplaceUserResponse { user: Some(user) }))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let request = request.into_inner();
        let tenant_id = self.store.tenant_id(&request.tenant).await?;
        self.store.check_writer(&tenant_id, request.source).await?;
        self.delete(&tenant_id, &request.id).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }
}
