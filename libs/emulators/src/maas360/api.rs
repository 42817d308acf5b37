//! The emulated MaaS360 web-services API: authentication, users, groups and memberships.

use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use serde_json::{Map, Value, json};

use super::routes::Operation;
use super::shared::App;
use super::state::{Deletion, Refusal, USER_GROUP_TYPE, UserFilter, Window};
use super::tokens::TokenCheck;
use super::wire::{ApiRequest, Reply};

/// Page sizes the search APIs accept (docs/maas360.md §3).
const ALLOWED_PAGE_SIZES: [u32; 5] = [25, 50, 100, 200, 250];

/// Authentication refused for the admin user name or password: "Invalid credentials", HTTP
/// 200 (docs/maas360.md §2.2).
const ERR_INVALID_CREDENTIALS: u32 = 1002;
/// An invalid or expired token on a resource route: HTTP 401, "Token invalid" or
/// "Token expired." (docs/maas360.md §2.5).
const ERR_TOKEN: u32 = 1009;
// Codes of our own choosing, [inferred]: MaaS360's "Error Codes" chapter is a gap (docs/maas360.md §10). The
// texts name the part that is wrong so a client can say which.
const ERR_BILLING: u32 = 1001;
const ERR_APP: u32 = 1003;
const ERR_ACCESS_KEY: u32 = 1004;
const ERR_REFRESH: u32 = 1006;
const ERR_BILLING_MISMATCH: u32 = 1008;
const ERR_BAD_REQUEST: u32 = 1010;
const ERR_NOT_FOUND: u32 = 1011;

/// 2.0 `responseCode` for a duplicate, as seen for custom attributes [code] (docs/maas360.md §3).
const RESPONSE_DUPLICATE: u32 = 7;
const RESPONSE_NOT_FOUND: u32 = 4;
const RESPONSE_INVALID: u32 = 1;

/// Answers one request for `op`, whose path, method and traffic checks have already passed.
pub(crate) fn handle(app: &App, op: Operation, req: &ApiRequest) -> Reply {
    match op {
        Operation::AuthV1 => auth_v1(app, req),
        Operation::AuthV2 => auth_v2(app, req),
        Operation::RefreshToken => refresh_token(app, req),
        Operation::SearchUsers => search_users(app, req),
        Operation::UsersInGroup => users_in_group(app, req),
        Operation::AddUser => add_user(app, req),
        Operation::EditUser => edit_user(app, req),
        Operation::DeactivateUser => deactivate_user(app, req),
        Operation::ReactivateUser => reactivate_user(app, req),
        Operation::DeleteUser => delete_user(app, req),
        Operation::AddGroupsToUser => add_groups(app, req),
        Operation::RemoveGroupsFromUser => remove_groups(app, req),
        Operation::ListGroups => list_groups(app, req),
        Operation::CreateUserGroup => create_user_group(app, req),
        Operation::DeleteUserGroup => delete_user_group(app, req),
        Operation::DistributeApp => distribute_app(app, req),
        Operation::ChangeGroupPolicy => change_group_policy(app, req),
    }
}

fn error(req: &ApiRequest, status: StatusCode, code: u32, desc: &str) -> Reply {
    Reply::error(status, code, desc, req.format, req.quirks)
}

/// An error keyed by the resource, the way MaaS360 wraps a token refusal:
/// `{"users":{"errorCode":1009,"errorDesc":"Token invalid"}}` (docs/maas360.md §2.5).
fn resource_error(req: &ApiRequest, status: StatusCode, code: u32, desc: &str) -> Reply {
    let mut body = Map::new();
    body.insert(
        req.operation.resource().to_owned(),
        json!({"errorCode": code, "errorDesc": desc}),
    );
    req.reply(status, Value::Object(body))
}

/// Refusals of the authentication routes: HTTP 200 with a non-zero errorCode (docs/maas360.md §2.2).
fn auth_refusal(req: &ApiRequest, code: u32, desc: &str) -> Reply {
    req.reply(
        StatusCode::OK,
        json!({"authResponse": {"errorCode": code, "errorDesc": desc}}),
    )
}

fn auth_v1(app: &App, req: &ApiRequest) -> Reply {
    authenticate(app, req, false)
}

fn auth_v2(app: &App, req: &ApiRequest) -> Reply {
    authenticate(app, req, true)
}

/// The app and account fields every authentication route checks, in turn, so the errorDesc
/// names the part that is wrong.
fn check_app(app: &App, req: &ApiRequest) -> Option<(u32, &'static str)> {
    let c = app.config();
    let field = |name: &str| req.params.get(name).map_or("", String::as_str);
    if req.path("billingID") != c.billing_id || field("billingID").trim() != c.billing_id {
        Some((ERR_BILLING, "Invalid billing ID"))
    } else if field("appID") != c.app_id {
        Some((ERR_APP, "Invalid application ID"))
    } else if field("appVersion") != c.app_version {
        Some((ERR_APP, "Invalid app version"))
    } else if field("platformID") != c.platform_id {
        Some((ERR_APP, "Invalid platform ID"))
    } else if !field("userName").eq_ignore_ascii_case(&c.admin_user) {
        Some((ERR_INVALID_CREDENTIALS, "Invalid credentials"))
    } else {
        None
    }
}

/// Authentication 1.0 and 2.0: the full credentials, password and app access key included.
/// A refresh token here is not a password (refresh has its own route, docs/maas360.md
/// §2.3), so it is ignored.
fn authenticate(app: &App, req: &ApiRequest, v2: bool) -> Reply {
    let c = app.config();
    let field = |name: &str| req.params.get(name).map_or("", String::as_str);
    let refusal = check_app(app, req).or_else(|| {
        if field("appAccessKey") != c.app_access_key {
            Some((ERR_ACCESS_KEY, "Invalid app access key"))
        } else if field("password") != c.password {
            Some((ERR_INVALID_CREDENTIALS, "Invalid credentials"))
        } else {
            None
        }
    });
    if let Some((code, desc)) = refusal {
        return auth_refusal(req, code, desc);
    }
    issue(app, req, "password", v2)
}

/// `POST /auth-apis/auth/2.0/refreshToken/customer/{billingID}` with billingID, userName,
/// appID, appVersion, platformID and refreshToken (docs/maas360.md §2.3). A password or
/// access key sent along is recorded as a violation: the refresh call must not need them.
fn refresh_token(app: &App, req: &ApiRequest) -> Reply {
    let sent: Vec<&str> = ["password", "appAccessKey"]
        .into_iter()
        .filter(|name| req.params.contains_key(*name))
        .collect();
    if !sent.is_empty() {
        app.with(|i| {
            i.traffic.record_protocol_violation(
                req.operation.name(),
                "secret_on_refresh",
                format!("the refresh request carried {}", sent.join(" and ")),
            );
        });
    }
    if let Some((code, desc)) = check_app(app, req) {
        return auth_refusal(req, code, desc);
    }
    let refresh = req.params.get("refreshToken").map_or("", String::as_str);
    let billing = req.path("billingID");
    if !app.with(|i| i.tokens.redeem_refresh(refresh, billing)) {
        return auth_refusal(req, ERR_REFRESH, "Invalid or expired refresh token");
    }
    issue(app, req, "refresh_token", true)
}

/// A new token (and, for 2.0 and refresh, a new refresh token: rotation is [inferred]).
fn issue(app: &App, req: &ApiRequest, grant: &str, with_refresh: bool) -> Reply {
    let billing = req.path("billingID");
    let ttl = app.config().token_ttl;
    let (token, refresh) = app.with(|i| {
        *i.grants.entry(grant.to_owned()).or_insert(0) += 1;
        let token = i.tokens.issue(billing, ttl);
        let refresh = with_refresh.then(|| i.tokens.issue_refresh(billing));
        (token, refresh)
    });
    let mut response = Map::new();
    response.insert("authToken".to_owned(), json!(token));
    if let Some(refresh) = refresh {
        response.insert("refreshToken".to_owned(), json!(refresh));
    }
    response.insert("errorCode".to_owned(), json!(0));
    req.reply(StatusCode::OK, json!({ "authResponse": response }))
}

/// `MaaS token="…"` (IBM's documentation, docs/maas360.md §2.4) or `MaaS token='…'` (IBM's own integration,
/// docs/maas360.md §2.4); the quotes must match. Also says which quotes were used.
fn maas_token(header: &str) -> Option<(&str, &'static str)> {
    let quoted = header.strip_prefix("MaaS token=")?;
    [('"', "double"), ('\'', "single")]
        .into_iter()
        .find_map(|(quote, style)| Some((quoted.strip_prefix(quote)?.strip_suffix(quote)?, style)))
        .filter(|(t, _)| !t.is_empty() && !t.contains(['"', '\'']))
}

/// Token present, current, and issued for the billing id in the path (checked on every route).
fn authorize(app: &App, req: &ApiRequest) -> Result<(), Reply> {
    let header = req
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(maas_token);
    let Some((token, style)) = header else {
        return Err(resource_error(
            req,
            StatusCode::UNAUTHORIZED,
            ERR_TOKEN,
            "Token invalid",
        ));
    };
    match app.with(|i| i.tokens.check(token, req.path("billingID"))) {
        TokenCheck::Valid => {
            app.with(|i| *i.quote_styles.entry(style.to_owned()).or_insert(0) += 1);
            Ok(())
        }
        TokenCheck::Unknown => Err(resource_error(
            req,
            StatusCode::UNAUTHORIZED,
            ERR_TOKEN,
            "Token invalid",
        )),
        TokenCheck::Expired => Err(resource_error(
            req,
            StatusCode::UNAUTHORIZED,
            ERR_TOKEN,
            "Token expired.",
        )),
        // [inferred] the answer to a token used against another account is not documented.
        TokenCheck::OtherAccount => Err(resource_error(
            req,
            StatusCode::FORBIDDEN,
            ERR_BILLING_MISMATCH,
            "Billing ID does not match the authenticated account",
        )),
    }
}

/// `pageNumber` (1-based) and `pageSize` (only the allowed sizes), with a per-API default size.
fn paging(req: &ApiRequest, default_size: u32) -> Result<(u32, u32), Reply> {
    let number = match req.param("pageNumber") {
        None => 1,
        Some(n) => n.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            error(
                req,
                StatusCode::BAD_REQUEST,
                ERR_BAD_REQUEST,
                "Invalid pageNumber",
            )
        })?,
    };
    let size = match req.param("pageSize") {
        None => default_size,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|s| ALLOWED_PAGE_SIZES.contains(s))
            .ok_or_else(|| {
                error(
                    req,
                    StatusCode::BAD_REQUEST,
                    ERR_BAD_REQUEST,
                    "Invalid pageSize: allowed values are 25, 50, 100, 200, 250",
                )
            })?,
    };
    Ok((number, size))
}

/// The search envelope `{"<outer>":{"count","pageNumber","pageSize","<inner>":[…]}}`, where
/// `count` is the total across pages (docs/maas360.md §3).
fn page(outer: &str, inner: &str, all: Vec<Value>, number: u32, size: u32) -> Value {
    let total = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip(window(number, size).skip_count())
        .take(usize::try_from(size).unwrap_or(usize::MAX))
        .collect();
    paged(outer, inner, total, items, number, size)
}

fn window(number: u32, size: u32) -> Window {
    Window {
        number,
        size: usize::try_from(size).unwrap_or(usize::MAX),
    }
}

/// The envelope of one page of `total` items.
fn paged(
    outer: &str,
    inner: &str,
    total: usize,
    items: Vec<Value>,
    number: u32,
    size: u32,
) -> Value {
    let mut envelope = Map::new();
    envelope.insert("count".to_owned(), json!(total));
    envelope.insert("pageNumber".to_owned(), json!(number));
    envelope.insert("pageSize".to_owned(), json!(size));
    envelope.insert(inner.to_owned(), Value::Array(items));
    let mut body = Map::new();
    body.insert(outer.to_owned(), Value::Object(envelope));
    Value::Object(body)
}

fn include_all_users(req: &ApiRequest) -> u8 {
    match req.param("includeAllUsers") {
        Some("1") => 1,
        Some("2") => 2,
        _ => 0,
    }
}

fn search_users(app: &App, req: &ApiRequest) -> Reply {
    if let Err(reply) = authorize(app, req) {
        return reply;
    }
    let (number, size) = match paging(req, 50) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let filter = UserFilter {
        partial_user_name: req.param("partialUserName").map(str::to_owned),
        partial_full_name: req.param("partialFullUserName").map(str::to_owned),
        partial_email: req.param("partialEmailAddress").map(str::to_owned),
        domain: req.param("domain").map(str::to_owned),
        exact: req.param("match") == Some("1"),
        include_all_users: include_all_users(req),
    };
    let (total, items) = app.with(|i| i.dir.search_users(&filter, window(number, size)));
    req.reply(
        StatusCode::OK,
        paged("users", "user", total, items, number, size),
    )
}

fn users_in_group(app: &App, req: &ApiRequest) -> Reply {
    if let Err(reply) = authorize(app, req) {
        return reply;
    }
    let (number, size) = match paging(req, 25) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let gid = req.path("groupID");
    let include = include_all_users(req);
    let all = app.with(|i| {
        i.dir
            .has_group(gid)
            .then(|| i.dir.users_in_group(gid, include, window(number, size)))
    });
    match all {
        Some((total, items)) => req.reply(
            StatusCode::OK,
            paged("users", "user", total, items, number, size),
        ),
        // [inferred] the real answer for an unknown group is not documented.
        None => error(req, StatusCode::NOT_FOUND, ERR_NOT_FOUND, "Group not found"),
    }
}

/// The form fields of docs/maas360.md §4.3: `userName, domain, email,
/// fullName, authType, …`; also the XML fields of the TS client (§4.3). Whether MaaS360 answers
/// with the new `userIdentifier` is unknown, so [`EmulatorConfig::add_user_returns_identifier`]
/// can leave it out.
///
/// [`EmulatorConfig::add_user_returns_identifier`]: super::EmulatorConfig::add_user_returns_identifier
fn add_user(app: &App, req: &ApiRequest) -> Reply {
    if let Err(reply) = authorize(app, req) {
        return reply;
    }
    let text = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| req.param(n))
            .unwrap_or("")
            .to_owned()
    };
    let full_name = match req.param("fullName") {
        Some(name) => name.to_owned(),
        None => [req.param("firstName"), req.param("lastName")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
    };
    let auth_type = match req.param("authType").map(str::parse::<u8>) {
        None => Ok(0),
        Some(Ok(t)) if t <= 1 => Ok(t),
        Some(_) => Err(Refusal::Invalid(format!(
            "Invalid authType: {}",
            req.param("authType").unwrap_or_default()
        ))),
    };
    let outcome = auth_type.and_then(|auth_type| {
        app.with(|i| {
            let id = i.dir.add_user(
                &text(&["userName"]),
                &text(&["domain"]),
                &text(&["email", "emailAddress"]),
                &full_name,
                None,
            )?;
            i.dir.set_auth_type(&id, auth_type)?;
            Ok(id)
        })
    });
    let with_id = app.config().add_user_returns_identifier;
    req.action(outcome.map(|id| {
        let mut fields = Map::new();
        if with_id {
            fields.insert("userIdentifier".to_owned(), json!(id));
        }
        fields.insert("description".to_owned(), json!("User added successfully"));
        fields
    }))
}

/// [inferred] edit, deactivate, reactivate, delete and per-user group changes: the paths are
/// not confirmed (docs/maas360.md §4.5); answers follow the v1 actionResponse convention.
fn edit_user(app: &App, req: &ApiRequest) -> Reply {
    if let Err(reply) = authorize(app, req) {
        return reply;
    }
    let email = req.param("email").or_else(|| req.param("emailAddress"));
    let full_name = req.params.get("fullName").map(|s| s.trim());
    // [inferred] renaming through the edit call; MaaS360's portal can rename.
    let rename = (req.param("userName"), req.param("domain"));
    let id = req.path("userIdentifier");
    let outcome = app.with(|i| i.dir.edit_user(id, email, full_name, rename));
    req.action(outcome.map(|()| Map::new()))
}

fn deactivate_user(app: &App, req: &ApiRequest) -> Reply {
    user_action(app, req, |dir, id| dir.set_active(id, false))
}

fn reactivate_user(app: &App, req: &ApiRequest) -> Reply {
    user_action(app, req, |dir, id| dir.set_active(id, true))
}

/// Queued for the daily job (or done at once when the job runs without delay), refused while
/// the user has an active device (docs/maas360.md §4.5). The success texts are
/// [inferred].
fn delete_user(app: &App, req: &ApiRequest) -> Reply {
    if let Err(reply) = authorize(app, req) {
        return reply;
    }
    let id = req.path("userIdentifier");
    let at_once = app.config().deletion_job_after == Some(std::time::Duration::ZERO);
    let outcome = app.with(|i| i.dir.delete_user(id, tokio::time::Instant::now(), at_once));
    req.action(outcome.map(|deletion| {
        let description = match deletion {
            Deletion::Queued => {
                "User marked for deletion. The user will be deleted within 24 hours."
            }
            Deletion::Deleted => "User deleted successfully.",
        };
        let mut fields = Map::new();
        fields.insert("description".to_owned(), json!(description));
        fields
    }))
}

fn user_action(
    app: &App,
    req: &ApiRequest,
    f: impl FnOnce(&mut super::state::Directory, &str) -> Result<(), Refusal>,
) -> Reply {
    if let Err(reply) = authorize(app, req) {
        return reply;
    }
    let id = req.path("userIdentifier");
    let outcome = app.with(|i| f(&mut i.dir, id));
    req.action(outcome.map(|()| Map::new()))
}

fn group_ids(req: &ApiRequest) -> Vec<String> {
    req.param("groupIds")
        .or_else(|| req.param("groupId"))
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn add_groups(app: &App, req: &ApiRequest) -> Reply {
    let ids = group_ids(req);
    user_action(app, req, |dir, id| dir.change_membership(id, &ids, true))
}

fn remove_groups(app: &App, req: &ApiRequest) -> Reply {
    let ids = group_ids(req);
    user_action(app, req, |dir, id| dir.change_membership(id, &ids, false))
}

fn list_groups(app: &App, req: &ApiRequest) -> Reply {
    if let Err(reply) = authorize(app, req) {
        return reply;
    }
    let (number, size) = match paging(req, 250) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let all = app.with(|i| i.dir.groups_json());
    req.reply(StatusCode::OK, page("groups", "group", all, number, size))
}

/// A 2.0-style answer: non-200 with `{"response":{"responseCode":…}}` on failure (docs/maas360.md §3, §5.3).
fn response_failure(req: &ApiRequest, refusal: &Refusal) -> Reply {
    let (status, code) = match refusal {
        Refusal::AlreadyExists(_) => (StatusCode::BAD_REQUEST, RESPONSE_DUPLICATE),
        Refusal::NotFound(_) => (StatusCode::NOT_FOUND, RESPONSE_NOT_FOUND),
        Refusal::Invalid(_) | Refusal::ActiveDevice(_) => {
            (StatusCode::BAD_REQUEST, RESPONSE_INVALID)
        }
    };
    req.reply(
        status,
        json!({"response": {"responseCode": code, "description": refusal.to_string()}}),
    )
}

/// [gap] emulator-only: creating a local user group by API is not documented (docs/maas360.md §5.4).
fn create_user_group(app: &App, req: &ApiRequest) -> Reply {
    if let Err(reply) = authorize(app, req) {
        return reply;
    }
    let name = req.param("groupName").unwrap_or("").to_owned();
    let category = req.param("category").unwrap_or("Public").to_owned();
    match app.with(|i| i.dir.create_group(&name, USER_GROUP_TYPE, &category, None)) {
        Ok(id) => req.reply(
            StatusCode::OK,
            json!({"response": {"name": name, "groupID": id}}),
        ),
        Err(refusal) => response_failure(req, &refusal),
    }
}

/// [gap] emulator-only: deleting a local user group by API is not documented (docs/maas360.md §5.4).
fn delete_user_group(app: &App, req: &ApiRequest) -> Reply {
    if let Err(reply) = authorize(app, req) {
        return reply;
    }
    let id = req.path("groupID");
    match app.with(|i| i.dir.delete_group(id)) {
        Ok(()) => req.reply(
            StatusCode::OK,
            json!({"response": {"responseCode": 0, "description": "Group deleted"}}),
        ),
        Err(refusal) => response_failure(req, &refusal),
    }
}

/// `distributeApp` to a group (`targetDevices` 1, docs/maas360.md §6): the group carries the
/// app from then on, once however often it is asked. Answers `{"actionResponse":{"status":
/// "Success"|"Failure","description"}}` as the clients read it [code].
fn distribute_app(app: &App, req: &ApiRequest) -> Reply {
    if let Err(reply) = authorize(app, req) {
        return reply;
    }
    let outcome = match (
        req.param("appType"),
        req.param("appId"),
        req.param("targetDevices"),
        req.param("deviceGroupId"),
    ) {
        (Some(app_type), Some(app_id), Some("1"), Some(group)) => {
            app.with(|i| i.dir.distribute_app(group, app_type, app_id))
        }
        (_, _, Some("1"), _) | (_, _, None, _) => Err(Refusal::Invalid(
            "Missing required parameter: appType, appId, targetDevices or deviceGroupId".to_owned(),
        )),
        (_, _, Some(other), _) => Err(Refusal::Invalid(format!(
            "targetDevices {other}: the emulator distributes to groups (1) only"
        ))),
    };
    let body = match outcome {
        Ok(()) => json!({"actionResponse": {"status": "Success",
            "description": "App distributed successfully"}}),
        Err(refusal) => json!({"actionResponse": {"status": "Failure",
            "description": refusal.to_string()}}),
    };
    req.reply(StatusCode::OK, body)
}

/// `changeGroupPolicy` (docs/maas360.md §5.3): the group's policies of the request's
/// `policyType` become the named ones. The answer's shape is a gap; a 2.0-style `response`
/// is [inferred].
fn change_group_policy(app: &App, req: &ApiRequest) -> Reply {
    if let Err(reply) = authorize(app, req) {
        return reply;
    }
    let (Some(group), Some(policy_type)) = (req.param("groupId"), req.param("policyType")) else {
        return response_failure(
            req,
            &Refusal::Invalid("Missing required parameter: groupId or policyType".to_owned()),
        );
    };
    // A JSON list arrives flattened to comma-joined text (wire.rs).
    let names: Vec<String> = req
        .param("policyName")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    match app.with(|i| i.dir.set_group_policies(group, policy_type, &names)) {
        Ok(()) => req.reply(
            StatusCode::OK,
            json!({"response": {"responseCode": 0, "description": "Policy changed"}}),
        ),
        Err(refusal) => response_failure(req, &refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::maas_token;

    #[test]
    fn authorization_header_must_be_exact() {
        assert_eq!(maas_token("MaaS token=\"abc\""), Some(("abc", "double")));
        assert_eq!(maas_token("MaaS token='abc'"), Some(("abc", "single")));
        assert_eq!(maas_token("MaaS token='abc\""), None);
        assert_eq!(maas_token("MaaS token=abc"), None);
        assert_eq!(maas_token("Bearer MaaS token=\"abc\""), None);
        assert_eq!(maas_token("MaaS token=\"\""), None);
        assert_eq!(maas_token("MaaS token=\"a\"b\""), None);
    }
}
