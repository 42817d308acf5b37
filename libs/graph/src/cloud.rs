//! Which Microsoft cloud to talk to: the login (token) host, the Graph host, and the scope
//! that names Graph in that cloud.

use reqwest::Url;

use crate::error::GraphError;

/// A Microsoft cloud. The authority and Graph host differ per national cloud, so both are
/// configurable (docs/graph.md §1.3, "National clouds").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cloud {
    /// `login.microsoftonline.com` and `graph.microsoft.com`.
    Global,
    /// US Government L4 (GCC High): `login.microsoftonline.us` and `graph.microsoft.us`.
    GccHigh,
    /// Explicit roots, for other clouds and for emulators: `login_url` is what precedes
    /// `/{tenant}/oauth2/v2.0/token`, `graph_url` what precedes `/v1.0/...`.
    Custom {
        login_url: String,
        graph_url: String,
    },
}

impl Cloud {
    pub fn login_url(&self) -> &str {
        match self {
            Cloud::Global => "https://login.microsoftonline.com",
            Cloud::GccHigh => "https://login.microsoftonline.us",
            Cloud::Custom { login_url, .. } => login_url,
        }
    }

    pub fn graph_url(&self) -> &str {
        match self {
            Cloud::Global => "https://graph.microsoft.com",
            Cloud::GccHigh => "https://graph.microsoft.us",
            Cloud::Custom { graph_url, .. } => graph_url,
        }
    }

    /// `{graph}/.default`: every application permission consented for Graph in this cloud
    /// (docs/graph.md §1.1).
    pub fn scope(&self) -> String {
        format!("{}/.default", self.graph_url().trim_end_matches('/'))
    }
}

/// The URLs a client derives once from its cloud and tenant.
#[derive(Clone, Debug)]
pub(crate) struct Endpoints {
    /// `{login}/{tenant}/oauth2/v2.0/token`; also the `aud` of a client assertion (docs/graph.md
    /// §1.2).
    pub(crate) token: Url,
    /// `{graph}/v1.0/`, with the trailing slash so relative joins stay under it.
    pub(crate) api_root: Url,
    pub(crate) scope: String,
}

impl Endpoints {
    pub(crate) fn new(cloud: &Cloud, tenant: &str) -> Result<Self, GraphError> {
        let login = base_url("login_url", cloud.login_url())?;
        let graph = base_url("graph_url", cloud.graph_url())?;
        let mut token = login;
        token
            .path_segments_mut()
            .map_err(|()| GraphError::Config("login_url cannot hold a path".to_owned()))?
            .pop_if_empty()
            .extend([tenant, "oauth2", "v2.0", "token"]);
        let mut api_root = graph;
        api_root
            .path_segments_mut()
            .map_err(|()| GraphError::Config("graph_url cannot hold a path".to_owned()))?
            .pop_if_empty()
            .extend(["v1.0", ""]);
        Ok(Self {
            token,
            api_root,
            scope: cloud.scope(),
        })
    }

    /// `{api_root}{segments...}` with each segment percent-encoded on its own, so an id can
    /// never change which resource is addressed.
    pub(crate) fn api(&self, segments: &[&str]) -> Result<Url, GraphError> {
        let mut url = self.api_root.clone();
        url.path_segments_mut()
            .map_err(|()| GraphError::Config("graph_url cannot hold a path".to_owned()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// A link Graph handed back (nextLink, deltaLink), parsed but otherwise untouched. It must
    /// stay under this client's Graph API root: the bearer token goes wherever it points.
    pub(crate) fn link(&self, link: &str) -> Result<Url, GraphError> {
        let url = Url::parse(link)
            .map_err(|e| GraphError::InvalidResponse(format!("link {link:?} is not a URL: {e}")))?;
        if url.origin() != self.api_root.origin() || !url.path().starts_with(self.api_root.path()) {
            return Err(GraphError::InvalidResponse(format!(
                "link {link:?} leaves the Graph API root {}",
                self.api_root
            )));
        }
        Ok(url)
    }

    /// The path and query of a link under the API root, relative to it (`/groups/…?…`), as
    /// `$batch` wants it (docs/graph.md §5). The characters are the link's own.
    pub(crate) fn relative(&self, url: &Url) -> Result<String, GraphError> {
        let full = url.as_str();
        let root = self.api_root.as_str();
        full.strip_prefix(root)
            .map(|rest| format!("/{rest}"))
            .ok_or_else(|| {
                GraphError::InvalidResponse(format!("link {full:?} is not under {root}"))
            })
    }
}

fn base_url(name: &str, value: &str) -> Result<Url, GraphError> {
    let url = Url::parse(value.trim())
        .map_err(|e| GraphError::Config(format!("{name} {value:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(GraphError::Config(format!(
            "{name} {value:?} must be an http(s) URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(GraphError::Config(format!(
            "{name} {value:?} must not carry a query or fragment"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(cloud: &Cloud) -> Endpoints {
        match Endpoints::new(cloud, "contoso.onmicrosoft.com") {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn gcc_high_uses_the_us_government_hosts() {
        let e = endpoints(&Cloud::GccHigh);
        assert_eq!(
            e.token.as_str(),
            "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(e.api_root.as_str(), "https://graph.microsoft.us/v1.0/");
        assert_eq!(e.scope, "https://graph.microsoft.us/.default");
    }

    #[test]
    fn global_uses_the_worldwide_hosts() {
        let e = endpoints(&Cloud::Global);
        assert_eq!(
            e.token.as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(e.api_root.as_str(), "https://graph.microsoft.com/v1.0/");
        assert_eq!(e.scope, "https://graph.microsoft.com/.default");
    }

    #[test]
    fn custom_roots_keep_their_path_and_drop_a_trailing_slash() {
        let e = endpoints(&Cloud::Custom {
            login_url: "http://127.0.0.1:9000/".to_owned(),
            graph_url: "http://127.0.0.1:9001/graph".to_owned(),
        });
        assert_eq!(
            e.token.as_str(),
            "http://127.0.0.1:9000/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(e.api_root.as_str(), "http://127.0.0.1:9001/graph/v1.0/");
        assert_eq!(e.scope, "http://127.0.0.1:9001/graph/.default");
    }

    #[test]
    fn ids_are_one_segment_each() {
        let e = endpoints(&Cloud::Global);
        let url = e.api(&["groups", "a/b?c", "members"]);
        assert_eq!(
            url.map(|u| u.to_string()).ok().as_deref(),
            Some("https://graph.microsoft.com/v1.0/groups/a%2Fb%3Fc/members")
        );
    }

    #[test]
    fn links_must_stay_under_the_api_root() {
        let e = endpoints(&Cloud::Global);
        assert!(
            e.link("https://graph.microsoft.com/v1.0/users?$skiptoken=abc")
                .is_ok()
        );
        assert!(e.link("https://evil.example/v1.0/users").is_err());
        assert!(e.link("https://graph.microsoft.com/beta/users").is_err());
        assert!(e.link("not a url").is_err());
    }

    #[test]
    fn relative_form_keeps_the_links_own_characters() {
        let e = endpoints(&Cloud::Global);
        let link = "https://graph.microsoft.com/v1.0/groups/g1/members?$select=id&$skiptoken=X%2BY";
        let relative = e.link(link).and_then(|u| e.relative(&u));
        assert_eq!(
            relative.ok().as_deref(),
            Some("/groups/g1/members?$select=id&$skiptoken=X%2BY")
        );
    }
}
