//! [`Maas360Client`]: the user, group and membership operations over an authenticated
//! transport.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;

use crate::config::{ClientOptions, Credentials};
use crate::error::Maas360Error;
use crate::lenient::text_of;
use crate::model::{
    DeleteOutcome, Distribution, Maas360Group, Maas360User, NewUser, Page, UserChanges, UserGroup,
    UserSearch, parse_group, parse_page, parse_user,
};
use crate::paging::{allowed_page_size, page_number};
use crate::rate_limit::RateLimitStatus;
use crate::routes::{RouteName, RouteTable};
use crate::token::{AuthContext, TokenCache};
use crate::transport::{Call, TOKEN_REFUSED, Transport, classify, describe, error_code};

/// How many pages `find_user` reads before giving up, in case a server ignores `match=1` and
/// answers a partial match over a huge directory.
const FIND_USER_MAX_PAGES: u32 = 40;
/// How many pages of 250 `list_user_groups` reads at most (50,000 groups), so a server that
/// never ends its paging cannot keep the client reading.
const GROUP_LIST_MAX_PAGES: u32 = 200;
/// The smallest page MaaS360 serves: enough to read `searchByGroup`'s total `count`.
const SMALLEST_PAGE: u32 = 25;

/// A MaaS360 web-services client for one customer account. Cheap to clone; clones share the
/// token and the call counts.
#[derive(Clone)]
pub struct Maas360Client {
    inner: Arc<Inner>,
}

struct Inner {
    credentials: Credentials,
    options: ClientOptions,
    transport: Transport,
    tokens: TokenCache,
}

impl fmt::Debug for Maas360Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Maas360Client")
            .field("base_url", &self.inner.credentials.base_url)
            .field("billing_id", &self.inner.credentials.billing_id)
            .field("auth_version", &self.inner.options.auth_version)
            .finish_non_exhaustive()
    }
}

impl Maas360Client {
    /// Checks the configuration; makes no network call.
    pub fn new(credentials: Credentials, options: ClientOptions) -> Result<Self, Maas360Error> {
        if credentials.billing_id.trim().is_empty() {
            return Err(Maas360Error::Config("billing_id is empty".to_owned()));
        }
        if credentials.admin_user.trim().is_empty() {
            return Err(Maas360Error::Config("admin_user is empty".to_owned()));
        }
        if options.request_timeout.is_zero() {
            return Err(Maas360Error::Config("request_timeout is zero".to_owned()));
        }
        if options.renew_before >= options.token_lifetime {
            return Err(Maas360Error::Config(
                "renew_before must be shorter than token_lifetime".to_owned(),
            ));
        }
        let transport = Transport::new(&credentials.base_url, options.request_timeout)?;
        Ok(Self {
            inner: Arc::new(Inner {
                credentials,
                options,
                transport,
                tokens: TokenCache::new(),
            }),
        })
    }

    fn auth(&self) -> AuthContext<'_> {
        AuthContext {
            credentials: &self.inner.credentials,
            options: &self.inner.options,
            transport: &self.inner.transport,
        }
    }

    /// One authentication call now; on refusal the error says which part was refused when
    /// MaaS360's answer tells (billing id, admin credentials, app id/access key...).
    pub async fn authenticate(&self) -> Result<(), Maas360Error> {
        self.inner.tokens.authenticate_now(&self.auth()).await
    }

    /// One call to the token refresh route now (auth 2.0 only), authenticating first if no
    /// refresh token is held. Unlike a routine renewal it does not fall back to the password,
    /// so it tells whether refreshing works on this tenant.
    pub async fn refresh_token(&self) -> Result<(), Maas360Error> {
        self.inner.tokens.refresh_now(&self.auth()).await
    }

    /// Until when MaaS360 asked not to be called, if that is still ahead: 0 requests remaining
    /// until the reset window ends, or a 429's Retry-After. Updated by every response, so a
    /// caller can pause the whole tenant before MaaS360 refuses anything.
    pub fn throttled_until(&self) -> Option<tokio::time::Instant> {
        self.inner.transport.rate_limit().throttled_until()
    }

    /// What the latest responses said about the rate limit.
    pub fn rate_limit(&self) -> RateLimitStatus {
        self.inner.transport.rate_limit().status()
    }

    pub(crate) fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The numeric `groupType` of MaaS360's user groups for this client (3 unless configured).
    pub fn user_group_type(&self) -> i64 {
        self.inner.options.user_group_type
    }

    /// The routes this client calls.
    pub fn routes(&self) -> &RouteTable {
        &self.inner.options.routes
    }

    /// Number of HTTP calls made to MaaS360 so far, per route name and outcome. The outcome is
    /// the HTTP status (`"200"`, `"429"`, …) or `"timeout"`, `"connect"`, `"transport"`,
    /// `"oversized"` when no complete response arrived.
    pub fn call_counts(&self) -> BTreeMap<(String, String), u64> {
        self.inner.transport.counts()
    }

    /// Calls one resource route with the cached token; on a 401 renews once and repeats.
    /// `path` fills the route's placeholders besides the billing id; `params` travel as the
    /// route's encoding says.
    async fn call(
        &self,
        name: RouteName,
        path: &[(&str, &str)],
        params: Vec<(&'static str, String)>,
    ) -> Result<Value, Maas360Error> {
        let route = self.inner.options.routes.get(name);
        let mut all = vec![("billingID", self.inner.credentials.billing_id.as_str())];
        all.extend_from_slice(path);
        let call = Call {
            route,
            url: self.inner.transport.url(route, &all)?,
            params,
        };
        let auth = self.auth();
        let lease = self.inner.tokens.lease(&auth).await?;
        let reply = self
            .inner
            .transport
            .execute(&call, Some(&lease.token))
            .await?;
        // 401 with errorCode 1009, "Token invalid" or "Token expired." (docs/maas360.md
        // §2.5); the code alone also counts, whatever the status.
        let refused = reply.status == StatusCode::UNAUTHORIZED
            || error_code(reply.body.as_ref()) == Some(TOKEN_REFUSED);
        if !refused {
            return classify(route, reply);
        }
        tracing::debug!(route = name.as_str(), "token refused; renewing once");
        let lease = self
            .inner
            .tokens
            .lease_after_rejection(lease.generation, &auth)
            .await?;
        let reply = self
            .inner
            .transport
            .execute(&call, Some(&lease.token))
            .await?;
        classify(route, reply)
    }

    /// The user with exactly this user name and domain (case-insensitive), active or not.
    pub async fn find_user(
        &self,
        user_name: &str,
        domain: &str,
    ) -> Result<Option<Maas360User>, Maas360Error> {
        require("user_name", user_name)?;
        let mut search = UserSearch {
            partial_user_name: Some(user_name.to_owned()),
            domain: Some(domain.to_owned()).filter(|d| !d.is_empty()),
            email: None,
            exact: true,
            page_number: 1,
            page_size: 250,
        };
        loop {
            let page = self.search_users(&search).await?;
            // Filter again here: `match=1` semantics are not documented well enough to trust
            // alone (docs/maas360.md §4.1).
            if let Some(user) = page.items.iter().find(|u| {
                u.user_name.eq_ignore_ascii_case(user_name) && u.domain.eq_ignore_ascii_case(domain)
            }) {
                return Ok(Some(user.clone()));
            }
            if !page.has_more()
                || page.items.is_empty()
                || search.page_number >= FIND_USER_MAX_PAGES
            {
                return Ok(None);
            }
            search.page_number += 1;
        }
    }

    /// One page of users matching `query`; all users, with or without devices.
    pub async fn search_users(
        &self,
        query: &UserSearch,
    ) -> Result<Page<Maas360User>, Maas360Error> {
        let number = page_number(query.page_number);
        let size = allowed_page_size(query.page_size);
        let mut params = vec![
            ("includeAllUsers", "1".to_owned()),
            ("match", if query.exact { "1" } else { "0" }.to_owned()),
            ("pageNumber", number.to_string()),
            ("pageSize", size.to_string()),
        ];
        if let Some(name) = query.partial_user_name.as_ref().filter(|s| !s.is_empty()) {
            params.push(("partialUserName", name.clone()));
        }
        if let Some(domain) = query.domain.as_ref().filter(|s| !s.is_empty()) {
            params.push(("domain", domain.clone()));
        }
        if let Some(email) = query.email.as_ref().filter(|s| !s.is_empty()) {
            params.push(("partialEmailAddress", email.clone()));
        }
        let body = self.call(RouteName::SearchUsers, &[], params).await?;
        Ok(parse_page(&body, "users", "user", number, size, parse_user))
    }

    /// Creates a local user and returns its `userIdentifier`: from the answer if MaaS360 gives
    /// it, else by looking the user up by user name and domain (whether addUser answers with
    /// it is unknown, docs/maas360.md §4.3).
    pub async fn add_user(&self, user: &NewUser) -> Result<String, Maas360Error> {
        require("user_name", &user.user_name)?;
        require("domain", &user.domain)?;
        require("email", &user.email)?;
        // The form fields of docs/maas360.md §4.3; authType 0 is a local
        // user (§4.1), which is what a user created by API is.
        let mut form = vec![
            ("userName", user.user_name.clone()),
            ("domain", user.domain.clone()),
            ("email", user.email.clone()),
            ("authType", "0".to_owned()),
        ];
        if !user.full_name.is_empty() {
            form.push(("fullName", user.full_name.clone()));
        }
        let body = self.call(RouteName::AddUser, &[], form).await?;
        let id = body
            .get("actionResponse")
            .map(|a| text_of(a, &["userIdentifier", "userId", "UserIdentifier"]))
            .unwrap_or_default();
        if !id.is_empty() {
            return Ok(id);
        }
        // Whether addUser returns the identifier is [inferred] (docs/maas360.md §4.3); look the user up instead.
        match self.find_user(&user.user_name, &user.domain).await? {
            Some(found) if !found.user_identifier.is_empty() => Ok(found.user_identifier),
            _ => Err(Maas360Error::Permanent {
                status: None,
                detail: "add_user: succeeded but the new user cannot be found".to_owned(),
            }),
        }
    }

    /// Changes the given fields; with nothing to change, makes no call.
    pub async fn edit_user(
        &self,
        user_identifier: &str,
        changes: &UserChanges,
    ) -> Result<(), Maas360Error> {
        require("user_identifier", user_identifier)?;
        let mut form = Vec::new();
        if let Some(email) = &changes.email {
            form.push(("email", email.clone()));
        }
        if let Some(full_name) = &changes.full_name {
            form.push(("fullName", full_name.clone()));
        }
        if let Some(user_name) = &changes.user_name {
            form.push(("userName", user_name.clone()));
        }
        if let Some(domain) = &changes.domain {
            form.push(("domain", domain.clone()));
        }
        if form.is_empty() {
            return Ok(());
        }
        self.user_action(RouteName::EditUser, user_identifier, form)
            .await
    }

    /// Deactivates a user: MaaS360 keeps it (and its devices) and withdraws what its groups
    /// distribute to it until it is reactivated.
    pub async fn deactivate_user(&self, user_identifier: &str) -> Result<(), Maas360Error> {
        self.user_action(RouteName::DeactivateUser, user_identifier, Vec::new())
            .await
    }

    /// Reactivates a user; MaaS360 restores its distributions by itself.
    pub async fn reactivate_user(&self, user_identifier: &str) -> Result<(), Maas360Error> {
        self.user_action(RouteName::ReactivateUser, user_identifier, Vec::new())
            .await
    }

    /// Asks MaaS360 to delete a user. MaaS360 queues deletions for a daily job and refuses
    /// them while the user has an active device ([`Maas360Error::ActiveDevice`]); a queued
    /// deletion is [`DeleteOutcome::Queued`]: done as far as the caller goes, not to be
    /// repeated (docs/maas360.md §4.5).
    pub async fn delete_user(&self, user_identifier: &str) -> Result<DeleteOutcome, Maas360Error> {
        require("user_identifier", user_identifier)?;
        let body = self
            .call(
                RouteName::DeleteUser,
                &[("userIdentifier", user_identifier)],
                Vec::new(),
            )
            .await?;
        Ok(DeleteOutcome::from_description(&describe(Some(&body))))
    }

    async fn user_action(
        &self,
        name: RouteName,
        user_identifier: &str,
        params: Vec<(&'static str, String)>,
    ) -> Result<(), Maas360Error> {
        require("user_identifier", user_identifier)?;
        self.call(name, &[("userIdentifier", user_identifier)], params)
            .await
            .map(|_| ())
    }

    /// Creates a local user group and returns its `groupIdentifier`.
    pub async fn create_user_group(&self, name: &str) -> Result<String, Maas360Error> {
        require("name", name)?;
        let body = self
            .call(
                RouteName::CreateUserGroup,
                &[],
                vec![("groupName", name.to_owned())],
            )
            .await?;
        let id = [body.get("response"), Some(&body)]
            .into_iter()
            .flatten()
            .map(|v| text_of(v, &["groupIdentifier", "groupID", "groupId", "id"]))
            .find(|id| !id.is_empty())
            .unwrap_or_default();
        if id.is_empty() {
            return Err(Maas360Error::Permanent {
                status: Some(200),
                detail: "create_user_group: no group id in the response".to_owned(),
            });
        }
        Ok(id)
    }

    pub async fn delete_user_group(&self, group_identifier: &str) -> Result<(), Maas360Error> {
        require("group_identifier", group_identifier)?;
        self.call(
            RouteName::DeleteUserGroup,
            &[("groupID", group_identifier)],
            Vec::new(),
        )
        .await
        .map(|_| ())
    }

    /// Distributes an app to a user group: `distributeApp` with `targetDevices` 1 and the
    /// group's id as `deviceGroupId` (docs/maas360.md §6; that a user group's id is taken there
    /// is \[inferred\]). Neither installs at once nor mails the users: a migration copying a
    /// distribution must not look like a new one to them.
    pub async fn distribute_app_to_group(
        &self,
        group_identifier: &str,
        app: &Distribution,
    ) -> Result<(), Maas360Error> {
        require("group_identifier", group_identifier)?;
        require("app id", &app.id)?;
        require("app type", &app.app_type)?;
        let form = vec![
            ("appType", app.app_type.clone()),
            ("appId", app.id.clone()),
            ("targetDevices", "1".to_owned()),
            ("deviceGroupId", group_identifier.to_owned()),
            ("instantInstall", "No".to_owned()),
            ("sendEmail", "No".to_owned()),
        ];
        self.call(RouteName::DistributeApp, &[], form)
            .await
            .map(|_| ())
    }

    /// Sets a group's policies of one policy type (`changeGroupPolicy`, docs/maas360.md §5.3):
    /// the group then carries exactly `policy_names` for that type.
    pub async fn set_group_policies(
        &self,
        group_identifier: &str,
        policy_type: &str,
        policy_names: &[String],
    ) -> Result<(), Maas360Error> {
        require("group_identifier", group_identifier)?;
        require("policy type", policy_type)?;
        let mut fields = vec![
            ("groupId", group_identifier.to_owned()),
            ("policyRequest.policyType", policy_type.to_owned()),
        ];
        fields.extend(
            policy_names
                .iter()
                .map(|name| ("policyRequest.policyName[]", name.clone())),
        );
        self.call(RouteName::ChangeGroupPolicy, &[], fields)
            .await
            .map(|_| ())
    }

    /// Adds one user to several groups in one call (per-user addGroups).
    pub async fn add_user_to_groups(
        &self,
        user_identifier: &str,
        group_identifiers: &[String],
    ) -> Result<(), Maas360Error> {
        self.group_change(
            RouteName::AddGroupsToUser,
            user_identifier,
            group_identifiers,
        )
        .await
    }

    /// Removes one user from several groups in one call (per-user removeGroups).
    pub async fn remove_user_from_groups(
        &self,
        user_identifier: &str,
        group_identifiers: &[String],
    ) -> Result<(), Maas360Error> {
        self.group_change(
            RouteName::RemoveGroupsFromUser,
            user_identifier,
            group_identifiers,
        )
        .await
    }

    async fn group_change(
        &self,
        route: RouteName,
        user_identifier: &str,
        group_identifiers: &[String],
    ) -> Result<(), Maas360Error> {
        require("user_identifier", user_identifier)?;
        if group_identifiers.is_empty() {
            return Ok(());
        }
        if group_identifiers
            .iter()
            .any(|g| g.is_empty() || g.contains(','))
        {
            return Err(Maas360Error::Permanent {
                status: None,
                detail: format!("{route}: a group identifier is empty or has a comma"),
            });
        }
        let form = vec![("groupIds", group_identifiers.join(","))];
        self.user_action(route, user_identifier, form).await
    }

    /// One page of user and device groups (all types), with their category and app and policy
    /// distributions where the list carries them.
    pub async fn list_groups(
        &self,
        page_number_requested: u32,
        page_size: u32,
    ) -> Result<Page<Maas360Group>, Maas360Error> {
        let number = page_number(page_number_requested);
        let size = allowed_page_size(page_size);
        let query = vec![
            ("pageNumber", number.to_string()),
            ("pageSize", size.to_string()),
        ];
        let body = self.call(RouteName::ListGroups, &[], query).await?;
        Ok(parse_page(
            &body,
            "groups",
            "group",
            number,
            size,
            parse_group,
        ))
    }

    /// Every user group (the configured `groupType`, 3 by default) with its category and
    /// distributions, without member counts: one call per 250 groups.
    pub async fn user_groups(&self) -> Result<Vec<Maas360Group>, Maas360Error> {
        let wanted = self.inner.options.user_group_type;
        let mut groups = Vec::new();
        for number in 1..=GROUP_LIST_MAX_PAGES {
            let page = self.list_groups(number, 250).await?;
            let done = !page.has_more() || page.items.is_empty();
            groups.extend(
                page.items
                    .into_iter()
                    .filter(|g| g.type_code() == Some(wanted)),
            );
            if done {
                break;
            }
        }
        Ok(groups)
    }

    /// Every user group (the configured `groupType`, 3 by default) with its real member count,
    /// category and distributions where the list carries them. Costs one call per 250 groups
    /// plus one small `searchByGroup` call per user group.
    pub async fn list_user_groups(&self) -> Result<Vec<UserGroup>, Maas360Error> {
        let wanted = self.inner.options.user_group_type;
        let mut groups = Vec::new();
        for number in 1..=GROUP_LIST_MAX_PAGES {
            let page = self.list_groups(number, 250).await?;
            let done = !page.has_more() || page.items.is_empty();
            groups.extend(
                page.items
                    .into_iter()
                    .filter(|g| g.type_code() == Some(wanted)),
            );
            if done {
                break;
            }
        }
        let mut counted = Vec::with_capacity(groups.len());
        for group in groups {
            let member_count = self
                .user_group_member_count(&group.group_identifier)
                .await?;
            counted.push(UserGroup {
                group,
                member_count,
            });
        }
        Ok(counted)
    }

    /// How many users a group has, with or without devices: the total `count` of a
    /// smallest-page `searchByGroup` (docs/maas360.md §3, §4.2).
    pub async fn user_group_member_count(
        &self,
        group_identifier: &str,
    ) -> Result<u64, Maas360Error> {
        Ok(self
            .users_in_group(group_identifier, 1, SMALLEST_PAGE)
            .await?
            .total)
    }

    /// One page of the members of a group, with or without devices.
    pub async fn users_in_group(
        &self,
        group_identifier: &str,
        page_number_requested: u32,
        page_size: u32,
    ) -> Result<Page<Maas360User>, Maas360Error> {
        require("group_identifier", group_identifier)?;
        let number = page_number(page_number_requested);
        let size = allowed_page_size(page_size);
        let query = vec![
            ("includeAllUsers", "1".to_owned()),
            ("pageNumber", number.to_string()),
            ("pageSize", size.to_string()),
        ];
        let body = self
            .call(
                RouteName::UsersInGroup,
                &[("groupID", group_identifier)],
                query,
            )
            .await?;
        Ok(parse_page(&body, "users", "user", number, size, parse_user))
    }
}

/// Empty identifiers would produce a different URL (a missing segment), so they stop here.
fn require(what: &str, value: &str) -> Result<(), Maas360Error> {
    if value.trim().is_empty() {
        return Err(Maas360Error::Permanent {
            status: None,
            detail: format!("{what} is empty"),
        });
    }
    Ok(())
}
