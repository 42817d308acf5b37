//! Checking a client assertion (docs/graph.md §1.2): a JWT naming a registered certificate by
//! thumbprint and signed with its key. RS256 with `x5t` (SHA-1) and PS256 with `x5t#S256`
//! (SHA-256) both circulate, so both are accepted; the signature is verified against the
//! certificate's public key.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::digest;
use rustls_pki_types::CertificateDer;
use serde_json::Value;
use webpki::EndEntityCert;

/// Clock skew tolerated on `nbf` and `exp`.
const SKEW_SECS: u64 = 300;

/// Why an assertion was refused; each maps to an Entra error in the token endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AssertionError {
    Malformed(String),
    /// No registered certificate has the thumbprint; the thumbprint as sent.
    UnknownCertificate(String),
    BadSignature,
    /// `iss` or `sub` is not the client id.
    WrongClient,
    WrongAudience(String),
    OutsideValidity,
}

/// A certificate's thumbprints as an assertion header names them.
fn thumbprints(der: &[u8]) -> (String, String) {
    (
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)),
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, der)),
    )
}

fn json_part(part: &str, what: &str) -> Result<Value, AssertionError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AssertionError::Malformed(format!("{what} is not base64url")))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| AssertionError::Malformed(format!("{what} is not JSON")))
}

/// Verifies `assertion` for `client_id` at token endpoint `audience`, `now` in Unix seconds.
pub(crate) fn verify(
    assertion: &str,
    certificates: &[Vec<u8>],
    client_id: &str,
    audience: &str,
    now: u64,
) -> Result<(), AssertionError> {
    let mut parts = assertion.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AssertionError::Malformed(
            "not three dot-separated parts".to_owned(),
        ));
    };
    let header_json = json_part(header, "the header")?;
    let algorithm = match header_json.get("alg").and_then(Value::as_str) {
        Some("RS256") => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        Some("PS256") => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        other => {
            return Err(AssertionError::Malformed(format!(
                "unsupported alg {other:?}"
            )));
        }
    };
    let sha1 = header_json.get("x5t").and_then(Value::as_str);
    let sha256 = header_json.get("x5t#S256").and_then(Value::as_str);
    if sha1.is_none() && sha256.is_none() {
        return Err(AssertionError::Malformed(
            "the header names no certificate (x5t or x5t#S256)".to_owned(),
        ));
    }
    let certificate = certificates
        .iter()
        .find(|der| {
            let (own_sha1, own_sha256) = thumbprints(der);
            sha1.is_some_and(|t| t == own_sha1) || sha256.is_some_and(|t| t == own_sha256)
        })
        .ok_or_else(|| {
            // Entra quotes the thumbprint in hex; the header carries base64url.
            let sent = sha1.or(sha256).unwrap_or_default();
            let hex = URL_SAFE_NO_PAD
                .decode(sent)
                .or_else(|_| STANDARD.decode(sent))
                .map(|bytes| bytes.iter().map(|b| format!("{b:02X}")).collect())
                .unwrap_or_else(|_| sent.to_owned());
            AssertionError::UnknownCertificate(hex)
        })?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| AssertionError::Malformed("the signature is not base64url".to_owned()))?;
    let der = CertificateDer::from(certificate.as_slice());
    let parsed = EndEntityCert::try_from(&der).map_err(|_| AssertionError::BadSignature)?;
    let signed = format!("{header}.{claims}");
    parsed
        .verify_signature(algorithm, signed.as_bytes(), &signature)
        .map_err(|_| AssertionError::BadSignature)?;

    let claims = json_part(claims, "the claims")?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err(AssertionError::WrongClient);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(AssertionError::WrongAudience(
            text("aud").unwrap_or_default().to_owned(),
        ));
    }
    let number = |name: &str| claims.get(name).and_then(Value::as_u64);
    let (Some(exp), nbf) = (number("exp"), number("nbf")) else {
        return Err(AssertionError::Malformed("no exp claim".to_owned()));
    };
    if exp + SKEW_SECS < now || nbf.is_some_and(|nbf| nbf > now + SKEW_SECS) {
        return Err(AssertionError::OutsideValidity);
    }
    Ok(())
}
