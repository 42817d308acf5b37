//! The Graph reads under `/v1.0` (docs/graph.md §2, §3), as plain functions over the state
//! so that a top-level request and a `$batch` item take the same path: parse the target,
//! name its route and the permissions it needs, then answer it.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Query;
use axum::http::{StatusCode, Uri};
use serde_json::{Map, Value, json};

use super::config::{DeltaExpiry, GraphEmulatorConfig};
use super::cursor::{DeltaCursor, ListCursor, Phase, decode};
use super::delta;
use super::objects::{GROUP_PROPERTIES, Kind, USER_PROPERTIES, render};
use super::shared::Inner;
use super::traffic::GraphViolation;
use super::wire::GraphReply;

/// Default page size of `/users`, `/groups` and member lists (docs/graph.md §2.1).
const DEFAULT_TOP: usize = 100;
/// `$top` accepts 1–999 (docs/graph.md §2.1).
const MAX_TOP: usize = 999;

/// Permissions that allow reading users, groups and members, and the organization
/// (docs/graph.md §2.1, §2.2, §2.3; the organization's are general knowledge).
const USER_READERS: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const GROUP_READERS: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const ORGANIZATION_READERS: &[&str] = &[
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// A Graph read the emulator knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Organization,
    Users,
    User(String),
    Groups,
    Group(String),
    Members { group: String, transitive: bool },
    Delta(Kind),
    Unknown(String),
}

impl Route {
    /// The name requests are counted under.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Route::Organization => "organization",
            Route::Users => "users",
            Route::User(_) => "user",
            Route::Groups => "groups",
            Route::Group(_) => "group",
            Route::Members {
                transitive: false, ..
            } => "group_members",
            Route::Members {
                transitive: true, ..
            } => "group_transitive_members",
            Route::Delta(Kind::User) => "users_delta",
            Route::Delta(Kind::Group) => "groups_delta",
            Route::Unknown(_) => "unknown",
        }
    }

    /// Any one of these permissions allows the read.
    pub(crate) fn readers(&self) -> &'static [&'static str] {
        match self {
            Route::Organization => ORGANIZATION_READERS,
            Route::Users | Route::User(_) | Route::Delta(Kind::User) => USER_READERS,
            Route::Groups | Route::Group(_) | Route::Members { .. } | Route::Delta(Kind::Group) => {
                GROUP_READERS
            }
            Route::Unknown(_) => &[],
        }
    }
}

/// A read's target: the route, the path under `/v1.0/`, the decoded query pairs, and the
/// URI as sent (for checking that a link was followed exactly).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) route: Route,
    path: String,
    query: Vec<(String, String)>,
    uri: Uri,
}

impl Target {
    /// `uri` must be under `/v1.0/`.
    pub(crate) fn parse(uri: Uri) -> Result<Self, GraphReply> {
        let path = uri
            .path()
            .strip_prefix("/v1.0/")
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        let query = match uri.query() {
            None => Vec::new(),
            Some(_) => Query::<Vec<(String, String)>>::try_from_uri(&uri)
                .map(|Query(pairs)| pairs)
                .map_err(|_| {
                    GraphReply::error(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "The query string is malformed.",
                    )
                })?,
        };
        // Graph accepts system query options with or without the `$`.
        let query = query
            .into_iter()
            .map(|(key, value)| {
                let key = if key.starts_with('$') {
                    key
                } else if matches!(
                    key.as_str(),
                    "select"
                        | "top"
                        | "skiptoken"
                        | "deltatoken"
                        | "filter"
                        | "orderby"
                        | "search"
                        | "expand"
                        | "count"
                        | "skip"
                ) {
                    format!("${key}")
                } else {
                    key
                };
                (key, value)
            })
            .collect();
        let segments: Vec<&str> = path.split('/').collect();
        let delta = |s: &str| {
            matches!(
                s,
                "delta" | "microsoft.graph.delta" | "microsoft.graph.delta()"
            )
        };
        let route = match segments.as_slice() {
            ["organization"] => Route::Organization,
            ["users"] => Route::Users,
            ["groups"] => Route::Groups,
            ["users", d] if delta(d) => Route::Delta(Kind::User),
            ["groups", d] if delta(d) => Route::Delta(Kind::Group),
            ["users", id] => Route::User((*id).to_owned()),
            ["groups", id] => Route::Group((*id).to_owned()),
            ["groups", id, "members"] => Route::Members {
                group: (*id).to_owned(),
                transitive: false,
            },
            ["groups", id, "transitiveMembers"] => Route::Members {
                group: (*id).to_owned(),
                transitive: true,
            },
            [first, ..] => Route::Unknown((*first).to_owned()),
            [] => Route::Unknown(String::new()),
        };
        Ok(Self {
            route,
            path,
            query,
            uri,
        })
    }

    fn option(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether this request is exactly `link` (a path with its query), compared after
    /// decoding so that percent-encoding differences do not count.
    fn is_exactly(&self, link: &str) -> bool {
        let Ok(expected) = link.parse::<Uri>() else {
            return false;
        };
        let decoded = |uri: &Uri| {
            Query::<Vec<(String, String)>>::try_from_uri(uri)
                .map(|Query(pairs)| pairs)
                .unwrap_or_default()
        };
        expected.path() == self.uri.path() && decoded(&expected) == decoded(&self.uri)
    }
}

/// What a read needs besides the state: where links point and the request's headers.
#[derive(Clone, Debug)]
pub(crate) struct ReadContext {
    /// `http://host:port`, the root of every link.
    pub(crate) base: String,
    /// `ConsistencyLevel: eventual` was sent (docs/graph.md §2.5).
    pub(crate) eventual: bool,
}

fn bad_request(message: impl Into<String>) -> GraphReply {
    GraphReply::error(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn not_found(id: &str) -> GraphReply {
    GraphReply::error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Answers one authorised, admitted read.
pub(crate) fn read(
    inner: &mut Inner,
    config: &GraphEmulatorConfig,
    ctx: &ReadContext,
    target: &Target,
) -> GraphReply {
    for option in ["$filter", "$orderby", "$search", "$expand"] {
        let delta_expand = option == "$expand" && target.route == Route::Delta(Kind::Group);
        if target.option(option).is_some() && !delta_expand {
            return GraphReply::error(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                format!("The Graph emulator does not implement {option}."),
            );
        }
    }
    match &target.route {
        Route::Organization => organization(config, ctx),
        Route::Users | Route::Groups | Route::Members { .. } => list(inner, ctx, target),
        Route::User(id) => single(inner, ctx, target, Kind::User, id),
        Route::Group(id) => single(inner, ctx, target, Kind::Group, id),
        Route::Delta(kind) => delta_read(inner, config, ctx, target, *kind),
        Route::Unknown(segment) => GraphReply::error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{segment}'."),
        ),
    }
}

fn organization(config: &GraphEmulatorConfig, ctx: &ReadContext) -> GraphReply {
    GraphReply::ok(json!({
        "@odata.context": format!("{}/v1.0/$metadata#organization", ctx.base),
        "value": [{
            "id": config.tenant_id,
            "displayName": "Contoso (Graph emulator)",
            "tenantType": "AAD",
            "verifiedDomains": [{
                "name": config.tenant_domain,
                "isDefault": true,
                "isInitial": true,
                "type": "Managed",
                "capabilities": "Email, OfficeCommunicationsOnline"
            }]
        }]
    }))
}

/// `$select` checked against `allowed`; `None` when absent. The error names the type.
fn parse_select(
    value: Option<&str>,
    allowed: &[&str],
    type_name: &str,
) -> Result<Option<Vec<String>>, GraphReply> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let mut names: Vec<String> = Vec::new();
    for name in value.split(',').map(str::trim) {
        if !allowed.contains(&name) {
            return Err(bad_request(format!(
                "Could not find a property named '{name}' on type '{type_name}'."
            )));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    Ok(Some(names))
}

fn parse_top(value: Option<&str>) -> Result<Option<usize>, GraphReply> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.trim().parse::<usize>() {
        Ok(top) if (1..=MAX_TOP).contains(&top) => Ok(Some(top)),
        _ => Err(bad_request(format!(
            "Invalid page size specified: '{value}'. Must be between 1 and {MAX_TOP} inclusive."
        ))),
    }
}

fn context(ctx: &ReadContext, set: &str, select: Option<&[String]>) -> String {
    match select {
        Some(names) => format!("{}/v1.0/$metadata#{set}({})", ctx.base, names.join(",")),
        None => format!("{}/v1.0/$metadata#{set}", ctx.base),
    }
}

/// Renders a user or group of a list: the selected properties that exist on its type, or the
/// type's defaults; members carry their `@odata.type` (docs/graph.md §2.3).
fn render_object(
    inner: &Inner,
    id: &str,
    kind: Kind,
    select: Option<&[String]>,
    typed: bool,
) -> Option<Value> {
    let names: Vec<&str> = match select {
        Some(names) => names
            .iter()
            .map(String::as_str)
            .filter(|n| kind.properties().contains(n))
            .collect(),
        None => kind.defaults().to_vec(),
    };
    let mut object = match kind {
        Kind::User => render(&names, |p| inner.tenant.user(id)?.property(p), false),
        Kind::Group => render(&names, |p| inner.tenant.group(id)?.property(p), false),
    };
    if object.is_empty() {
        return None;
    }
    if typed {
        object.insert(
            "@odata.type".to_owned(),
            Value::String(kind.odata_type().to_owned()),
        );
    }
    Some(Value::Object(object))
}

fn single(inner: &Inner, ctx: &ReadContext, target: &Target, kind: Kind, id: &str) -> GraphReply {
    let select = match parse_select(
        target.option("$select"),
        kind.properties(),
        kind.type_name(),
    ) {
        Ok(select) => select,
        Err(reply) => return reply,
    };
    let Some(Value::Object(mut object)) = render_object(inner, id, kind, select.as_deref(), false)
    else {
        return not_found(id);
    };
    let set = if kind == Kind::User {
        "users"
    } else {
        "groups"
    };
    object.insert(
        "@odata.context".to_owned(),
        Value::String(format!("{}/$entity", context(ctx, set, select.as_deref()))),
    );
    GraphReply::ok(Value::Object(object))
}

/// `/users`, `/groups`, `/groups/{id}/members`, `/groups/{id}/transitiveMembers`: pages in
/// id order, continued by a `$skiptoken` that repeats the original options (docs/graph.md §2.1).
fn list(inner: &mut Inner, ctx: &ReadContext, target: &Target) -> GraphReply {
    if target.option("$skip").is_some() {
        return bad_request("'$skip' is not supported by the service.");
    }
    let (allowed, type_name, set): (Vec<&str>, &str, &str) = match &target.route {
        Route::Users => (USER_PROPERTIES.to_vec(), "microsoft.graph.user", "users"),
        Route::Groups => (GROUP_PROPERTIES.to_vec(), "microsoft.graph.group", "groups"),
        _ => {
            let mut both: Vec<&str> = USER_PROPERTIES.to_vec();
            both.extend(
                GROUP_PROPERTIES
                    .iter()
                    .filter(|p| !USER_PROPERTIES.contains(p)),
            );
            (both, "microsoft.graph.directoryObject", "directoryObjects")
        }
    };
    let (select, top, after) = match target.option("$skiptoken").filter(|t| !t.is_empty()) {
        Some(token) => {
            let Some(cursor) = decode::<ListCursor>(token).filter(|c| c.path == target.path) else {
                return bad_request("The $skiptoken is not valid for this request.");
            };
            if !target.is_exactly(&cursor.link()) {
                inner.traffic.record(GraphViolation {
                    kind: "rebuiltLink".to_owned(),
                    route: target.route.name().to_owned(),
                    detail: format!(
                        "followed {} instead of the nextLink {}",
                        target.uri,
                        cursor.link()
                    ),
                });
            }
            let select = cursor
                .select
                .as_ref()
                .map(|s| s.split(',').map(str::to_owned).collect());
            (select, cursor.top, Some(cursor.after))
        }
        None => {
            let select = match parse_select(target.option("$select"), &allowed, type_name) {
                Ok(select) => select,
                Err(reply) => return reply,
            };
            let top = match parse_top(target.option("$top")) {
                Ok(top) => top,
                Err(reply) => return reply,
            };
            (select, top, None)
        }
    };
    let size = top.unwrap_or(DEFAULT_TOP);
    // One more than a page, to know whether another follows.
    let ids: Vec<(String, Kind)> = match &target.route {
        Route::Users => inner
            .tenant
            .users_after(after.as_deref())
            .take(size + 1)
            .map(|u| (u.id.clone(), Kind::User))
            .collect(),
        Route::Groups => inner
            .tenant
            .groups_after(after.as_deref())
            .take(size + 1)
            .map(|g| (g.id.clone(), Kind::Group))
            .collect(),
        Route::Members { group, transitive } => {
            let Some(record) = inner.tenant.group(group) else {
                return not_found(group);
            };
            if *transitive {
                let all = inner.tenant.transitive_members(group);
                let start = after
                    .as_deref()
                    .map_or(0, |a| all.partition_point(|(id, _)| id.as_str() <= a));
                all.into_iter().skip(start).take(size + 1).collect()
            } else {
                let range = match after.as_deref() {
                    Some(a) => record.members.range::<str, _>((
                        std::ops::Bound::Excluded(a),
                        std::ops::Bound::Unbounded,
                    )),
                    None => record.members.range::<str, _>(..),
                };
                range
                    .take(size + 1)
                    .map(|(id, kind)| (id.clone(), *kind))
                    .collect()
            }
        }
        _ => Vec::new(),
    };
    let more = ids.len() > size;
    let typed = matches!(target.route, Route::Members { .. });
    let value: Vec<Value> = ids
        .iter()
        .take(size)
        .filter_map(|(id, kind)| render_object(inner, id, *kind, select.as_deref(), typed))
        .collect();
    let mut body = Map::new();
    body.insert(
        "@odata.context".to_owned(),
        Value::String(context(ctx, set, select.as_deref())),
    );
    if more && let Some((last, _)) = ids.get(size - 1) {
        let cursor = ListCursor {
            path: target.path.clone(),
            after: last.clone(),
            select: select.as_ref().map(|s| s.join(",")),
            top,
        };
        body.insert(
            "@odata.nextLink".to_owned(),
            Value::String(format!("{}{}", ctx.base, cursor.link())),
        );
    }
    if target
        .option("$count")
        .is_some_and(|c| c.eq_ignore_ascii_case("true"))
        && ctx.eventual
    {
        // docs/graph.md §2.5: counted only with ConsistencyLevel: eventual, silently ignored without
        // it.
        let count = match &target.route {
            Route::Users => inner.tenant.user_count(),
            Route::Groups => inner.tenant.group_count(),
            Route::Members {
                group,
                transitive: false,
            } => inner.tenant.group(group).map_or(0, |g| g.members.len()),
            Route::Members {
                group,
                transitive: true,
            } => inner.tenant.transitive_members(group).len(),
            _ => 0,
        };
        body.insert("@odata.count".to_owned(), json!(count));
    }
    body.insert("value".to_owned(), Value::Array(value));
    GraphReply::ok(Value::Object(body))
}

/// The answer to an expired, unknown or foreign delta token (docs/graph.md §3.6).
fn resync(inner: &Inner, ctx: &ReadContext, kind: Kind) -> GraphReply {
    let resource = if kind == Kind::User {
        "users"
    } else {
        "groups"
    };
    match inner.delta_expiry {
        DeltaExpiry::Gone => GraphReply::error(
            StatusCode::GONE,
            "resyncRequired",
            "Resync required. Replace any local cached copies of the directory objects with the results of a full synchronization, starting from the Location header.",
        )
        .with_header(
            "Location",
            format!("{}/v1.0/{resource}/delta?$deltatoken=", ctx.base),
        ),
        DeltaExpiry::SyncStateNotFound => GraphReply::error(
            StatusCode::BAD_REQUEST,
            "syncStateNotFound",
            "The sync state generation is not found. Restart the synchronization without a delta token.",
        ),
    }
}

fn delta_read(
    inner: &mut Inner,
    config: &GraphEmulatorConfig,
    ctx: &ReadContext,
    target: &Target,
    kind: Kind,
) -> GraphReply {
    let resource = if kind == Kind::User {
        "users"
    } else {
        "groups"
    };
    let skiptoken = target.option("$skiptoken").filter(|t| !t.is_empty());
    let deltatoken = target.option("$deltatoken").filter(|t| !t.is_empty());
    let now = unix_now();
    let fresh_select = || -> Result<Vec<String>, GraphReply> {
        let mut allowed: Vec<&str> = kind.properties().to_vec();
        if kind == Kind::Group {
            allowed.push("members");
        }
        let mut select = parse_select(target.option("$select"), &allowed, kind.type_name())?
            .unwrap_or_else(|| kind.defaults().iter().map(|s| (*s).to_owned()).collect());
        // Older docs expand members instead of selecting them; both mean the same (docs/graph.md
        // §3.2).
        if let Some(expand) = target.option("$expand") {
            if kind == Kind::Group && expand.trim() == "members" {
                if !select.iter().any(|s| s == "members") {
                    select.push("members".to_owned());
                }
            } else {
                return Err(bad_request(
                    "Only $expand=members is supported on groups delta.",
                ));
            }
        }
        if !select.iter().any(|s| s == "id") {
            select.insert(0, "id".to_owned());
        }
        Ok(select)
    };
    let cursor = match (skiptoken, deltatoken) {
        (None, Some(latest)) if latest.eq_ignore_ascii_case("latest") => {
            // "Sync from now": no objects, a deltaLink at the current position (docs/graph.md §3.1).
            let select = match fresh_select() {
                Ok(select) => select,
                Err(reply) => return reply,
            };
            DeltaCursor {
                resource: resource.to_owned(),
                select,
                epoch: inner.delta_epoch,
                issued: now,
                phase: Phase::Done {
                    position: inner.tenant.log.position(),
                },
            }
        }
        (None, None) => {
            let select = match fresh_select() {
                Ok(select) => select,
                Err(reply) => return reply,
            };
            DeltaCursor {
                resource: resource.to_owned(),
                select,
                epoch: inner.delta_epoch,
                issued: now,
                phase: Phase::Enumerate {
                    after: None,
                    resume: None,
                    snapshot: inner.tenant.log.position(),
                },
            }
        }
        (Some(token), _) | (None, Some(token)) => {
            let is_delta_link = skiptoken.is_none();
            let Some(cursor) = decode::<DeltaCursor>(token) else {
                return resync(inner, ctx, kind);
            };
            let phase_fits = matches!(cursor.phase, Phase::Done { .. }) == is_delta_link;
            if cursor.resource != resource || !phase_fits {
                return resync(inner, ctx, kind);
            }
            if !target.is_exactly(&cursor.link()) {
                inner.traffic.record(GraphViolation {
                    kind: "rebuiltLink".to_owned(),
                    route: target.route.name().to_owned(),
                    detail: format!("followed {} instead of {}", target.uri, cursor.link()),
                });
            }
            let oldest = match cursor.phase {
                Phase::Enumerate { snapshot, .. } => snapshot,
                Phase::Changes { at, .. } => at,
                Phase::Done { position } => position,
            };
            let expired = cursor.epoch != inner.delta_epoch
                || now
                    >= cursor
                        .issued
                        .saturating_add(config.delta_token_ttl.as_secs())
                || oldest < inner.tenant.log.first()
                || oldest > inner.tenant.log.position();
            if expired {
                return resync(inner, ctx, kind);
            }
            match cursor.phase {
                // A deltaLink followed: a new round over the changes since it was issued.
                Phase::Done { position } => DeltaCursor {
                    issued: now,
                    phase: Phase::Changes {
                        at: position,
                        end: inner.tenant.log.position(),
                    },
                    ..cursor
                },
                _ => cursor,
            }
        }
    };
    let first_page = skiptoken.is_none();
    let select_for_context = cursor.select.clone();
    let page = match cursor.phase {
        Phase::Done { .. } => delta::DeltaPage {
            items: Vec::new(),
            next: cursor,
        },
        _ => delta::page(&inner.tenant, config, cursor),
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".to_owned(),
        Value::String(context(
            ctx,
            resource,
            first_page.then_some(select_for_context.as_slice()),
        )),
    );
    let mut next = page.next;
    let link_name = match &mut next.phase {
        Phase::Done { position } => {
            // Replays on demand: the next round starts a little earlier (docs/graph.md §3.5).
            *position = position
                .saturating_sub(inner.delta_replay)
                .max(inner.tenant.log.first());
            "@odata.deltaLink"
        }
        _ => "@odata.nextLink",
    };
    body.insert(
        link_name.to_owned(),
        Value::String(format!("{}{}", ctx.base, next.link())),
    );
    body.insert("value".to_owned(), Value::Array(page.items));
    GraphReply::ok(Value::Object(body))
}

/// The permissions a token carries that allow `route`, if any.
pub(crate) fn allowed(route: &Route, roles: &BTreeSet<String>) -> bool {
    route.readers().is_empty() || route.readers().iter().any(|r| roles.contains(*r))
}
