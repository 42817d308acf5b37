//! The routes file: an operator's corrections to the built-in [`RouteTable`], read at start-up,
//! so a wrong guess about MaaS360's API is fixed without a rebuild.
//!
//! The file is TOML. Each table `[routes.<name>]` overrides any subset of one route's fields;
//! routes and fields left out keep their defaults:
//!
//! ```toml
//! # What our tenant's documentation (Setup > Web Services API > Documentation) says.
//! [routes.edit_user]
//! method = "POST"                      # GET, POST, PUT, PATCH or DELETE
//! path = "/user-apis/user/1.0/editUser/customer/{billingID}/user/{userIdentifier}"
//! encoding = "form"                    # query, form or json
//! envelope = ""                        # json only: dotted wrapper keys, e.g. "authRequest.maaS360AdminAuth"
//! success = "action_status"            # http_ok, action_status, response_code or auth_token
//!
//! [routes.delete_user_group]
//! path = "/group-apis/group/1.0/deleteGroup/customer/{billingID}/group/{groupID}"
//! ```
//!
//! Names are those of [`RouteName`]. A path uses the placeholders `{billingID}`,
//! `{userIdentifier}` and `{groupID}`, each a whole segment, and must contain exactly those its
//! route needs ([`RouteName::placeholders`]). Parsing refuses, naming the route: an unknown route
//! or field, an unknown method, encoding or success rule, a malformed path, an unknown, missing
//! or repeated placeholder, a GET with a body encoding, and `auth_token` on a non-authentication
//! route (or another rule on one). An overridden route is labelled [`Evidence::Operator`].
//!
//! `docs/maas360-routes.md` lists every route with its default and its evidence.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::routes::{
    Encoding, Evidence, Method, Route, RouteName, RouteTable, Success, template_placeholders,
};

/// Why a routes file was refused. Every variant about one route names it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoutesFileError {
    #[error("cannot read routes file {path}: {reason}")]
    Read { path: String, reason: String },
    /// Not TOML, or a field that no route has (the message gives the line).
    #[error("routes file is not valid: {0}")]
    Syntax(String),
    #[error("routes file: unknown route {0:?} (known: {known})", known = known_names())]
    UnknownRoute(String),
    #[error("routes file: route {route}: unknown {field} {value:?}")]
    UnknownValue {
        route: String,
        field: &'static str,
        value: String,
    },
    #[error("routes file: route {route}: path {path:?}: {reason}")]
    BadPath {
        route: String,
        path: String,
        reason: String,
    },
    #[error(
        "routes file: route {route}: unknown placeholder {{{placeholder}}} (this route takes {takes})",
        takes = takes(route)
    )]
    UnknownPlaceholder { route: String, placeholder: String },
    #[error("routes file: route {route}: the path needs the placeholder {{{placeholder}}}")]
    MissingPlaceholder { route: String, placeholder: String },
    #[error("routes file: route {route}: {reason}")]
    Inconsistent { route: String, reason: String },
}

/// The placeholders a route takes, as an error message lists them.
fn takes(route: &str) -> String {
    route
        .parse::<RouteName>()
        .map(|name| {
            name.placeholders()
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn known_names() -> String {
    RouteName::ALL
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    #[serde(default)]
    routes: BTreeMap<String, RouteOverride>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteOverride {
    method: Option<String>,
    path: Option<String>,
    encoding: Option<String>,
    envelope: Option<String>,
    success: Option<String>,
}

impl RouteTable {
    /// The defaults with the overrides of a routes file's text.
    pub fn from_toml(text: &str) -> Result<Self, RoutesFileError> {
        Self::defaults().with_overrides(text, "routes file")
    }

    /// The defaults with the overrides of the routes file at `path`.
    pub fn load(path: &Path) -> Result<Self, RoutesFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| RoutesFileError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::defaults().with_overrides(&text, &format!("routes file {}", path.display()))
    }

    /// This table with the overrides of a routes file's text; `origin` becomes the
    /// [`Route::source`] of every route it changes. All or nothing: on error nothing changes.
    pub fn with_overrides(mut self, text: &str, origin: &str) -> Result<Self, RoutesFileError> {
        let file: RoutesFile =
            toml::from_str(text).map_err(|e| RoutesFileError::Syntax(e.to_string()))?;
        for (name, change) in file.routes {
            let route_name: RouteName = name
                .parse()
                .map_err(|()| RoutesFileError::UnknownRoute(name.clone()))?;
            let route = apply(self.get(route_name).clone(), &name, change, origin)?;
            self.set(route);
        }
        Ok(self)
    }
}

fn apply(
    mut route: Route,
    name: &str,
    change: RouteOverride,
    origin: &str,
) -> Result<Route, RoutesFileError> {
    let unknown = |field: &'static str, value: &str| RoutesFileError::UnknownValue {
        route: name.to_owned(),
        field,
        value: value.to_owned(),
    };
    if let Some(method) = &change.method {
        route.method = method.parse().map_err(|()| unknown("method", method))?;
    }
    if let Some(encoding) = &change.encoding {
        route.encoding = encoding
            .parse()
            .map_err(|()| unknown("encoding", encoding))?;
    }
    if let Some(success) = &change.success {
        route.success = success
            .parse()
            .map_err(|()| unknown("success rule", success))?;
    }
    if let Some(envelope) = &change.envelope {
        envelope.trim().clone_into(&mut route.envelope);
    }
    if let Some(path) = &change.path {
        check_path(route.name, name, path)?;
        path.trim().clone_into(&mut route.template);
    }
    check_consistent(&route, name)?;
    route.evidence = Evidence::Operator;
    origin.clone_into(&mut route.source);
    Ok(route)
}

fn check_path(route_name: RouteName, name: &str, path: &str) -> Result<(), RoutesFileError> {
    let path = path.trim();
    let found = template_placeholders(path).map_err(|reason| RoutesFileError::BadPath {
        route: name.to_owned(),
        path: path.to_owned(),
        reason,
    })?;
    for placeholder in &found {
        // A known placeholder this route has no value for (say {userIdentifier} on
        // list_groups) is as unknown to it as a misspelt one.
        if !route_name.placeholders().contains(placeholder) {
            return Err(RoutesFileError::UnknownPlaceholder {
                route: name.to_owned(),
                placeholder: (*placeholder).to_owned(),
            });
        }
        if found.iter().filter(|p| *p == placeholder).count() > 1 {
            return Err(RoutesFileError::BadPath {
                route: name.to_owned(),
                path: path.to_owned(),
                reason: format!("{{{placeholder}}} appears twice"),
            });
        }
    }
    if let Some(missing) = route_name
        .placeholders()
        .iter()
        .find(|p| !found.contains(p))
    {
        return Err(RoutesFileError::MissingPlaceholder {
            route: name.to_owned(),
            placeholder: (*missing).to_owned(),
        });
    }
    Ok(())
}

fn check_consistent(route: &Route, name: &str) -> Result<(), RoutesFileError> {
    let inconsistent = |reason: &str| RoutesFileError::Inconsistent {
        route: name.to_owned(),
        reason: reason.to_owned(),
    };
    if route.method == Method::Get && route.encoding != Encoding::Query {
        return Err(inconsistent("a GET carries its parameters in the query"));
    }
    if route.name.is_auth() != (route.success == Success::AuthToken) {
        return Err(inconsistent(
            "auth_token is the success rule of the authentication routes, and only of them",
        ));
    }
    if route.encoding != Encoding::Json && !route.envelope.is_empty() {
        return Err(inconsistent("an envelope needs the json encoding"));
    }
    if route.envelope.split('.').any(str::is_empty) && !route.envelope.is_empty() {
        return Err(inconsistent("the envelope has an empty key"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> RoutesFileError {
        match RouteTable::from_toml(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(error) => error,
        }
    }

    #[test]
    fn overrides_only_what_the_file_names() {
        let text = r#"
            # our tenant
            [routes.edit_user]
            path = "/user-apis/user/2.0/editUser/customer/{billingID}/{userIdentifier}"
            encoding = "json"

            [routes.delete_user_group]
            method = "post"
            path = "/group-apis/group/1.0/deleteGroup/customer/{billingID}/group/{groupID}"
            encoding = "form"
        "#;
        let table = match RouteTable::from_toml(text) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        let edit = table.get(RouteName::EditUser);
        assert_eq!(
            edit.template,
            "/user-apis/user/2.0/editUser/customer/{billingID}/{userIdentifier}"
        );
        assert_eq!(edit.encoding, Encoding::Json);
        assert_eq!(
            edit.method,
            Method::Post,
            "unchanged fields keep the default"
        );
        assert_eq!(edit.evidence, Evidence::Operator);
        assert_eq!(edit.source, "routes file");
        assert_eq!(table.get(RouteName::DeleteUserGroup).method, Method::Post);
        let defaults = RouteTable::defaults();
        for name in RouteName::ALL {
            if !matches!(name, RouteName::EditUser | RouteName::DeleteUserGroup) {
                assert_eq!(table.get(name), defaults.get(name), "{name}");
            }
        }
        assert_eq!(RouteTable::from_toml(""), Ok(RouteTable::defaults()));
    }

    #[test]
    fn refusals_name_the_route() {
        let e = refused("[routes.editUser]\npath = \"/x/{billingID}\"");
        assert_eq!(e, RoutesFileError::UnknownRoute("editUser".to_owned()));
        assert!(
            e.to_string().contains("edit_user"),
            "lists the known names: {e}"
        );

        let e = refused("[routes.edit_user]\npath = \"/x/{billingID}/{userId}\"");
        assert_eq!(
            e,
            RoutesFileError::UnknownPlaceholder {
                route: "edit_user".to_owned(),
                placeholder: "userId".to_owned()
            }
        );
        let e = refused("[routes.edit_user]\npath = \"/x/{billingID}\"");
        assert_eq!(
            e,
            RoutesFileError::MissingPlaceholder {
                route: "edit_user".to_owned(),
                placeholder: "userIdentifier".to_owned()
            }
        );
        let e = refused("[routes.list_groups]\npath = \"/x/{billingID}/{groupID}\"");
        assert!(
            matches!(e, RoutesFileError::UnknownPlaceholder { ref route, ref placeholder }
                if route == "list_groups" && placeholder == "groupID"),
            "{e}"
        );
        let e = refused("[routes.search_users]\npath = \"/x/{billingID}/{billingID}\"");
        assert!(matches!(e, RoutesFileError::BadPath { ref route, .. } if route == "search_users"));
        let e = refused("[routes.search_users]\npath = \"x/{billingID}\"");
        assert!(matches!(e, RoutesFileError::BadPath { .. }), "{e}");
        let e = refused("[routes.add_user]\nmethod = \"FETCH\"");
        assert!(
            matches!(e, RoutesFileError::UnknownValue { ref route, field: "method", .. } if route == "add_user")
        );
        let e = refused("[routes.add_user]\nencoding = \"xml\"");
        assert!(matches!(
            e,
            RoutesFileError::UnknownValue {
                field: "encoding",
                ..
            }
        ));
        let e = refused("[routes.add_user]\nsuccess = \"ok\"");
        assert!(matches!(
            e,
            RoutesFileError::UnknownValue {
                field: "success rule",
                ..
            }
        ));
        let e = refused("[routes.add_user]\nsuccess = \"auth_token\"");
        assert!(
            matches!(e, RoutesFileError::Inconsistent { ref route, .. } if route == "add_user")
        );
        let e = refused("[routes.search_users]\nencoding = \"form\"");
        assert!(matches!(e, RoutesFileError::Inconsistent { .. }));
        let e = refused("[routes.add_user]\nenvelope = \"a.b\"");
        assert!(matches!(e, RoutesFileError::Inconsistent { .. }));
        let e = refused("[routes.add_user]\npathh = \"/x/{billingID}\"");
        assert!(
            matches!(e, RoutesFileError::Syntax(ref m) if m.contains("pathh")),
            "{e}"
        );
        let e = refused("[route.add_user]\npath = \"/x/{billingID}\"");
        assert!(matches!(e, RoutesFileError::Syntax(_)), "{e}");
        assert!(matches!(refused("[routes"), RoutesFileError::Syntax(_)));
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let missing = RouteTable::load(Path::new("/nonexistent/dirsync-routes.toml"));
        assert!(matches!(missing, Err(RoutesFileError::Read { .. })));
    }
}
