//! [`GraphClient`]: the reads over an authenticated, throttling-aware transport.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::classify::graph_error;
use crate::cloud::{Cloud, Endpoints};
use crate::credentials::Credentials;
use crate::delta::{DeltaRound, DeltaStart, GroupChange, GroupMerge, UserChange, UserMerge};
use crate::error::GraphError;
use crate::model::{
    GROUP_FIELDS, Group, MEMBER_FIELDS, Member, Organization, USER_FIELDS, User, parse_item,
};
use crate::options::ClientOptions;
use crate::paging::{LinkGuard, Page};
use crate::retry::Retrying;
use crate::token::{Issuer, TokenCache};
use crate::transport::{Payload, Reply, Request, Transport};

/// A Microsoft Graph client for one tenant and application. Cheap to clone: clones share the
/// token, the concurrency bound, the throttling hold and the call counts.
#[derive(Clone)]
pub struct GraphClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    credentials: Credentials,
    pub(crate) endpoints: Endpoints,
    pub(crate) sender: Retrying,
    tokens: TokenCache,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("tenant_id", &self.inner.credentials.tenant_id)
            .field("client_id", &self.inner.credentials.client_id)
            .field("token_url", &self.inner.endpoints.token.as_str())
            .field("api_root", &self.inner.endpoints.api_root.as_str())
            .finish_non_exhaustive()
    }
}

/// Direct members, or every member below the group (docs/graph.md §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// `/groups/{id}/members`.
    Direct,
    /// `/groups/{id}/transitiveMembers`: nested groups flattened, the groups along the way
    /// included.
    Transitive,
}

impl Membership {
    pub(crate) fn segment(self) -> &'static str {
        match self {
            Membership::Direct => "members",
            Membership::Transitive => "transitiveMembers",
        }
    }

    pub(crate) fn route(self) -> &'static str {
        match self {
            Membership::Direct => "group_members",
            Membership::Transitive => "group_transitive_members",
        }
    }
}

impl GraphClient {
    /// Checks the configuration; makes no network call.
    pub fn new(
        credentials: Credentials,
        cloud: Cloud,
        options: ClientOptions,
    ) -> Result<Self, GraphError> {
        if credentials.tenant_id.trim().is_empty() {
            return Err(GraphError::Config("tenant_id is empty".to_owned()));
        }
        if credentials.client_id.trim().is_empty() {
            return Err(GraphError::Config("client_id is empty".to_owned()));
        }
        options.validate()?;
        let endpoints = Endpoints::new(&cloud, credentials.tenant_id.trim())?;
        let transport = Transport::new(options.request_timeout, options.max_concurrency)?;
        Ok(Self {
            inner: Arc::new(Inner {
                credentials,
                endpoints,
                sender: Retrying::new(transport, options),
                tokens: TokenCache::new(),
            }),
        })
    }

    fn issuer(&self) -> Issuer<'_> {
        Issuer {
            credentials: &self.inner.credentials,
            endpoints: &self.inner.endpoints,
            sender: &self.inner.sender,
        }
    }

    /// HTTP exchanges so far, per route name (`token`, `users`, `batch`, …) and outcome (the
    /// status, or `timeout`, `connect`, `transport`, `oversized`).
    pub fn call_counts(&self) -> BTreeMap<(String, String), u64> {
        self.inner.sender.transport.counts()
    }

    /// Sends with the cached token (renewed once on a 401) and retries; a reply that is not a
    /// success becomes its [`GraphError`].
    pub(crate) async fn call(&self, request: &Request) -> Result<Reply, GraphError> {
        let issuer = self.issuer();
        let lease = self.inner.tokens.lease(&issuer).await?;
        let mut reply = self.inner.sender.send(request, Some(&lease.token)).await?;
        if reply.status == StatusCode::UNAUTHORIZED {
            tracing::debug!(route = request.route, "access token refused; renewing once");
            let lease = self
                .inner
                .tokens
                .lease_after_rejection(lease.generation, &issuer)
                .await?;
            reply = self.inner.sender.send(request, Some(&lease.token)).await?;
        }
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(graph_error(request.route, &reply))
        }
    }

    async fn page(&self, route: &'static str, url: Url) -> Result<Page, GraphError> {
        let reply = self
            .call(&Request {
                route,
                post: false,
                url,
                payload: Payload::None,
            })
            .await?;
        Page::parse(reply.body)
    }

    /// Every item of a collection, following `@odata.nextLink` exactly until it is absent.
    async fn collect(&self, route: &'static str, first: Url) -> Result<Vec<Value>, GraphError> {
        let mut page = self.page(route, first).await?;
        let mut items = std::mem::take(&mut page.value);
        let mut guard = LinkGuard::default();
        while let Some(link) = page.next_link.take() {
            guard.next(&link)?;
            page = self.page(route, self.inner.endpoints.link(&link)?).await?;
            items.append(&mut page.value);
        }
        Ok(items)
    }

    /// One token request and one Graph read (`GET /organization`), whatever is cached: says
    /// whether this tenant, application and credential work, and if not which part was
    /// refused ([`GraphError::auth_part`]).
    pub async fn check_connection(&self) -> Result<Organization, GraphError> {
        self.inner.tokens.renew_now(&self.issuer()).await?;
        self.organization().await
    }

    /// The tenant's organization object.
    pub async fn organization(&self) -> Result<Organization, GraphError> {
        let url = self.inner.endpoints.api(&["organization"])?;
        let page = self.page("organization", url).await?;
        let first = page.value.into_iter().next().ok_or_else(|| {
            GraphError::InvalidResponse("GET /organization returned no organization".to_owned())
        })?;
        parse_item(first, "the organization")
    }

    /// Every user, `$select`ing `select` ([`USER_FIELDS`] when empty), `$top` = the page size.
    pub async fn users(&self, select: &[&str]) -> Result<Vec<User>, GraphError> {
        let url = self.list_url(&["users"], select, USER_FIELDS)?;
        self.collect("users", url)
            .await?
            .into_iter()
            .map(|item| parse_item(item, "a user"))
            .collect()
    }

    /// Every group, `$select`ing `select` ([`GROUP_FIELDS`] when empty).
    pub async fn groups(&self, select: &[&str]) -> Result<Vec<Group>, GraphError> {
        let url = self.list_url(&["groups"], select, GROUP_FIELDS)?;
        self.collect("groups", url)
            .await?
            .into_iter()
            .map(|item| parse_item(item, "a group"))
            .collect()
    }

    /// The members of one group, direct or transitive, `$select`ing `select`
    /// ([`MEMBER_FIELDS`] when empty). An unknown group is [`GraphError::NotFound`].
    pub async fn group_members(
        &self,
        group_id: &str,
        membership: Membership,
        select: &[&str],
    ) -> Result<Vec<Member>, GraphError> {
        let url = self.list_url(
            &["groups", group_id, membership.segment()],
            select,
            MEMBER_FIELDS,
        )?;
        self.collect(membership.route(), url)
            .await?
            .into_iter()
            .map(Member::from_value)
            .collect()
    }

    /// One delta round over users (docs/graph.md §3.1): every page up to the deltaLink,
    /// merged per user. `select` ([`USER_FIELDS`] when empty) is sent only when the round does
    /// not resume a deltaLink, which already encodes it (docs/graph.md §3.2).
    pub async fn users_delta(
        &self,
        start: DeltaStart,
        select: &[&str],
    ) -> Result<DeltaRound<UserChange>, GraphError> {
        let url = self.delta_url("users", &start, &select_list(select, USER_FIELDS)?)?;
        let mut merge = UserMerge::default();
        let (delta_link, pages) = self
            .delta_round("users_delta", url, |item| merge.add(item))
            .await?;
        Ok(DeltaRound {
            changes: merge.into_changes(),
            delta_link,
            pages,
        })
    }

    /// One delta round over groups with membership tracking (`members` is always
    /// selected, so changes come back in `members@delta`, docs/graph.md §3.4), merged per group.
    pub async fn groups_delta(
        &self,
        start: DeltaStart,
        select: &[&str],
    ) -> Result<DeltaRound<GroupChange>, GraphError> {
        let mut fields = select_list(select, GROUP_FIELDS)?;
        if !fields.iter().any(|f| f == "members") {
            fields.push("members".to_owned());
        }
        let url = self.delta_url("groups", &start, &fields)?;
        let mut merge = GroupMerge::default();
        let (delta_link, pages) = self
            .delta_round("groups_delta", url, |item| merge.add(item))
            .await?;
        Ok(DeltaRound {
            changes: merge.into_changes(),
            delta_link,
            pages,
        })
    }

    /// Follows nextLinks (pages may be empty, docs/graph.md §3.1) until a page carries the
    /// deltaLink.
    async fn delta_round(
        &self,
        route: &'static str,
        first: Url,
        mut add: impl FnMut(Value) -> Result<(), GraphError>,
    ) -> Result<(String, u32), GraphError> {
        let mut url = first;
        let mut guard = LinkGuard::default();
        let mut pages = 0u32;
        loop {
            let page = self.page(route, url).await?;
            pages += 1;
            for item in page.value {
                add(item)?;
            }
            match (page.next_link, page.delta_link) {
                (Some(next), _) => {
                    guard.next(&next)?;
                    url = self.inner.endpoints.link(&next)?;
                }
                (None, Some(delta_link)) => {
                    // Checked now so a bad link fails this round, not the next one.
                    self.inner.endpoints.link(&delta_link)?;
                    return Ok((delta_link, pages));
                }
                (None, None) => {
                    return Err(GraphError::InvalidResponse(format!(
                        "{route}: a page with neither nextLink nor deltaLink"
                    )));
                }
            }
        }
    }

    fn delta_url(
        &self,
        resource: &str,
        start: &DeltaStart,
        fields: &[String],
    ) -> Result<Url, GraphError> {
        let select = format!("$select={}", fields.join(","));
        let query = match start {
            DeltaStart::Resume(link) => return self.inner.endpoints.link(link),
            DeltaStart::Full => select,
            DeltaStart::FromNow => format!("{select}&$deltatoken=latest"),
        };
        let mut url = self.inner.endpoints.api(&[resource, "delta"])?;
        url.set_query(Some(&query));
        Ok(url)
    }

    /// `{api}/{segments}?$select=…&$top={page_size}`.
    pub(crate) fn list_url(
        &self,
        segments: &[&str],
        select: &[&str],
        default: &[&str],
    ) -> Result<Url, GraphError> {
        let fields = select_list(select, default)?;
        let mut url = self.inner.endpoints.api(segments)?;
        url.set_query(Some(&format!(
            "$select={}&$top={}",
            fields.join(","),
            self.inner.sender.options.page_size
        )));
        Ok(url)
    }
}

/// `select`, or `default` when it is empty, with `id` always included; names are checked so
/// none can smuggle another query option in.
fn select_list(select: &[&str], default: &[&str]) -> Result<Vec<String>, GraphError> {
    let names = if select.is_empty() { default } else { select };
    let mut fields = Vec::with_capacity(names.len() + 1);
    for name in names {
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@'))
        {
            return Err(GraphError::Config(format!(
                "{name:?} is not a property name for $select"
            )));
        }
        if !fields.iter().any(|f| f == name) {
            fields.push(name.to_owned());
        }
    }
    if !fields.iter().any(|f| f == "id") {
        fields.insert(0, "id".to_owned());
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_defaults_dedupes_and_always_has_id() {
        assert_eq!(
            select_list(&[], &["id", "mail"]).ok(),
            Some(vec!["id".to_owned(), "mail".to_owned()])
        );
        assert_eq!(
            select_list(&["mail", "mail"], &[]).ok(),
            Some(vec!["id".to_owned(), "mail".to_owned()])
        );
        assert!(select_list(&["mail&$top=1"], &[]).is_err());
    }
}
