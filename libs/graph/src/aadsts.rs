//! Reading Entra ID's token-endpoint error bodies (docs/graph.md §1.3): which part of the
//! app's setup an AADSTS code refuses.

use serde_json::Value;

use crate::error::AuthPart;

/// Which kind of client credential was presented, so a generic `invalid_client` can still
/// name the part that is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CredentialKind {
    Secret,
    Certificate,
}

/// An Entra ID token-endpoint error: `{"error", "error_description", "error_codes", ...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TokenError {
    pub(crate) error: String,
    /// The first line of `error_description`; the rest is trace and correlation ids.
    pub(crate) description: String,
    pub(crate) codes: Vec<u64>,
}

impl TokenError {
    /// `None` when the body is not Entra's error shape.
    pub(crate) fn parse(body: &Value) -> Option<Self> {
        let error = body.get("error")?.as_str()?.to_owned();
        let description = body
            .get("error_description")
            .and_then(Value::as_str)
            .and_then(|d| d.lines().next())
            .unwrap_or_default()
            .trim()
            .to_owned();
        let mut codes: Vec<u64> = body
            .get("error_codes")
            .and_then(Value::as_array)
            .map(|codes| codes.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if codes.is_empty()
            && let Some(code) = code_in_description(&description)
        {
            codes.push(code);
        }
        Some(Self {
            error,
            description,
            codes,
        })
    }

    /// `AADSTS7000215`, or the OAuth error name when no code came back.
    pub(crate) fn code(&self) -> String {
        self.codes
            .first()
            .map_or_else(|| self.error.clone(), |code| format!("AADSTS{code}"))
    }

    pub(crate) fn refused_part(&self, kind: CredentialKind) -> AuthPart {
        self.codes
            .iter()
            .find_map(|code| part_of_code(*code, kind))
            .unwrap_or_else(|| part_of_error(&self.error, kind))
    }
}

/// `AADSTS90002: Tenant '...' not found.` → 90002.
fn code_in_description(description: &str) -> Option<u64> {
    let rest = description.strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The codes docs/graph.md §1.3 and §1.1 name, plus a few (marked) that Entra is commonly
/// seen to return for the same parts and that the reference does not list.
fn part_of_code(code: u64, kind: CredentialKind) -> Option<AuthPart> {
    Some(match code {
        // docs/graph.md §1.3: tenant not found. 900023 (not in the reference): the tenant id is
        // neither a GUID nor a domain name.
        90002 | 900023 => AuthPart::Tenant,
        // docs/graph.md §1.3: application not found in the tenant. 7000112 (not in the reference):
        // the application is disabled.
        700016 | 7000112 => AuthPart::Application,
        // docs/graph.md §1.3: invalid client secret. 7000222 (not in the reference): the secret
        // expired.
        7000215 | 7000222 => AuthPart::ClientSecret,
        // Not in the reference: the certificate is not registered / the signature does not
        // verify (700027); the assertion is outside its validity window (700024).
        700027 | 700024 => AuthPart::Certificate,
        // Not in the reference: neither client_secret nor client_assertion sent (7000218);
        // the assertion names another client (700021) or is malformed or has wrong claims
        // (50027).
        7000218 | 700021 | 50027 => credential_part(kind),
        // docs/graph.md §1.3 (invalid scope) and docs/graph.md §1.1 (client credentials need a
        // `/.default` scope).
        70011 | 1002012 => AuthPart::Scope,
        // Not in the reference: admin consent missing.
        65001 => AuthPart::Permission,
        _ => return None,
    })
}

fn part_of_error(error: &str, kind: CredentialKind) -> AuthPart {
    match error {
        "invalid_client" => credential_part(kind),
        "unauthorized_client" => AuthPart::Application,
        "invalid_scope" => AuthPart::Scope,
        "invalid_tenant" => AuthPart::Tenant,
        "consent_required" => AuthPart::Permission,
        _ => AuthPart::Other,
    }
}

fn credential_part(kind: CredentialKind) -> AuthPart {
    match kind {
        CredentialKind::Secret => AuthPart::ClientSecret,
        CredentialKind::Certificate => AuthPart::Certificate,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(error: &str, code: u64) -> Value {
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: something.\r\nTrace ID: 1\r\nCorrelation ID: 2"),
            "error_codes": [code],
        })
    }

    #[test]
    fn codes_name_the_refused_part() {
        let cases = [
            ("invalid_request", 90002, AuthPart::Tenant),
            ("unauthorized_client", 700016, AuthPart::Application),
            ("invalid_client", 7000215, AuthPart::ClientSecret),
            ("invalid_client", 700027, AuthPart::Certificate),
            ("invalid_scope", 70011, AuthPart::Scope),
            ("invalid_scope", 1002012, AuthPart::Scope),
        ];
        for (error, code, part) in cases {
            let parsed = TokenError::parse(&body(error, code));
            assert_eq!(
                parsed.map(|e| e.refused_part(CredentialKind::Secret)),
                Some(part),
                "{code}"
            );
        }
    }

    #[test]
    fn description_keeps_only_the_first_line_and_code_falls_back_to_it() {
        let parsed = TokenError::parse(&json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x",
        }));
        let Some(parsed) = parsed else {
            panic!("not parsed");
        };
        assert_eq!(
            parsed.description,
            "AADSTS7000215: Invalid client secret provided."
        );
        assert_eq!(parsed.codes, vec![7000215]);
        assert_eq!(parsed.code(), "AADSTS7000215");
    }

    #[test]
    fn unknown_codes_fall_back_to_the_error_name_and_credential_kind() {
        let parsed = TokenError::parse(&body("invalid_client", 1));
        assert_eq!(
            parsed.map(|e| e.refused_part(CredentialKind::Certificate)),
            Some(AuthPart::Certificate)
        );
        let parsed = TokenError::parse(&body("server_error", 1));
        assert_eq!(
            parsed.map(|e| e.refused_part(CredentialKind::Secret)),
            Some(AuthPart::Other)
        );
        assert!(TokenError::parse(&json!({"value": []})).is_none());
    }
}
