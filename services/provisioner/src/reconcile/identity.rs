//! How an Entra user becomes a MaaS360 user: the username and domain come
//! from `userName` (MaaS360's own Entra sync uses the UPN prefix as the
//! username), the rest from the SCIM document.

use serde::{Deserialize, Serialize};

/// The MaaS360 fields dirsync manages for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub(crate) user_name: String,
    pub(crate) domain: String,
    pub(crate) email: String,
    pub(crate) full_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsernameMapping {
    /// `ada@contoso.com` → username `ada`, domain `contoso.com`.
    LocalPart,
    /// `ada@contoso.com` → username `ada@contoso.com`, domain `contoso.com`.
    Full,
}

impl UsernameMapping {
    pub(crate) fn from_stored(value: &str) -> Self {
        if value == "full" {
            Self::Full
        } else {
            Self::LocalPart
        }
    }
}

/// Why a user cannot be written to MaaS360 as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct IdentityError(pub(crate) String);

pub(crate) fn derive(
    user_name: &str,
    email: Option<&str>,
    display_name: Option<&str>,
    given_name: Option<&str>,
    family_name: Option<&str>,
    mapping: UsernameMapping,
) -> Result<Identity, IdentityError> {
    let user_name = user_name.trim();
    let (local, domain) = match user_name.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => (local, domain),
        _ => {
            // Without a UPN-style userName the work email supplies the domain.
            let domain = email
                .and_then(|email| email.rsplit_once('@').map(|(_, domain)| domain))
                .filter(|domain| !domain.is_empty())
                .ok_or_else(|| {
                    IdentityError(format!(
                        "userName {} has no domain and the user has no email to take one from; \
                         MaaS360 needs username and domain",
                        crate::error::quoted(user_name)
                    ))
                })?;
            (user_name, domain)
        }
    };
    if local.is_empty() {
        return Err(IdentityError("userName is empty".to_owned()));
    }
    let email = email
        .filter(|email| email.contains('@'))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{local}@{domain}"));
    let full_name = match display_name.filter(|name| !name.trim().is_empty()) {
        Some(name) => name.trim().to_owned(),
        None => {
            let parts: Vec<&str> = [given_name, family_name]
                .into_iter()
                .flatten()
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .collect();
            if parts.is_empty() {
                local.to_owned()
            } else {
                parts.join(" ")
            }
        }
    };
    let user_name = match mapping {
        UsernameMapping::LocalPart => local.to_owned(),
        UsernameMapping::Full => user_name.to_owned(),
    };
    Ok(Identity {
        user_name,
        domain: domain.to_owned(),
        email,
        full_name,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn upn_prefix_is_the_username_by_default() {
        let identity = derive(
            "ada@contoso.com",
            Some("ada.l@contoso.com"),
            Some("Ada L"),
            None,
            None,
            UsernameMapping::LocalPart,
        )
        .unwrap();
        assert_eq!(identity.user_name, "ada");
        assert_eq!(identity.domain, "contoso.com");
        assert_eq!(identity.email, "ada.l@contoso.com");
        assert_eq!(identity.full_name, "Ada L");
    }

    #[test]
    fn full_mapping_keeps_the_upn() {
        let identity = derive(
            "ada@contoso.com",
            None,
            None,
            Some("Ada"),
            Some("Lovelace"),
            UsernameMapping::Full,
        )
        .unwrap();
        assert_eq!(identity.user_name, "ada@contoso.com");
        assert_eq!(identity.email, "ada@contoso.com");
        assert_eq!(identity.full_name, "Ada Lovelace");
    }

    #[test]
    fn a_bare_username_takes_the_email_domain_or_fails() {
        let identity = derive(
            "ada",
            Some("ada@contoso.com"),
            None,
            None,
            None,
            UsernameMapping::LocalPart,
        )
        .unwrap();
        assert_eq!(
            (identity.user_name.as_str(), identity.domain.as_str()),
            ("ada", "contoso.com")
        );
        assert!(derive("ada", None, None, None, None, UsernameMapping::LocalPart).is_err());
        assert!(
            derive(
                "@contoso.com",
                None,
                None,
                None,
                None,
                UsernameMapping::LocalPart
            )
            .is_err()
        );
    }
}
