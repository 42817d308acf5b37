//! The client assertion a certificate credential sends instead of a secret: a JWT signed
//! RS256 with the certificate's private key (docs/graph.md §1.2).

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::RSA_PKCS1_SHA256;
use serde_json::json;

use crate::Secret;
use crate::credentials::Certificate;
use crate::error::GraphError;

/// `client_assertion_type` for a JWT bearer assertion (RFC 7523; docs/graph.md §1.2).
pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: docs/graph.md §1.2 says about 5–10 minutes after `nbf`.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// A signed assertion for one token request: `aud` is the token endpoint, `iss` = `sub` =
/// the client id, a fresh `jti`, `nbf` = `iat` = now, `exp` ten minutes on. The header
/// names the certificate by `x5t`, its SHA-1 thumbprint.
pub(crate) fn client_assertion(
    certificate: &Certificate,
    client_id: &str,
    audience: &str,
    now: SystemTime,
) -> Result<Secret, GraphError> {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| GraphError::Config("the system clock is before 1970".to_owned()))?
        .as_secs();
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": certificate.thumbprint()});
    let claims = json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME.as_secs(),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = certificate.key();
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| GraphError::Config("signing the client assertion failed".to_owned()))?;
    Ok(Secret::new(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}

#[cfg(test)]
mod tests {
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use serde_json::Value;

    use super::*;

    const CERT: &[u8] = include_bytes!("../tests/fixtures/registered-cert.pem");
    const KEY: &[u8] = include_bytes!("../tests/fixtures/registered-key.pem");
    const KEY_PKCS1: &[u8] = include_bytes!("../tests/fixtures/registered-key-pkcs1.pem");
    const OTHER_KEY: &[u8] = include_bytes!("../tests/fixtures/unregistered-key.pem");

    fn decode(part: &str) -> Value {
        let bytes = URL_SAFE_NO_PAD.decode(part).unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    #[test]
    fn signs_an_rs256_assertion_the_certificate_verifies() {
        let Ok(cert) = Certificate::from_pem(CERT, KEY) else {
            panic!("fixture certificate");
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let Ok(jwt) = client_assertion(&cert, "client-1", "https://login/t/oauth2/v2.0/token", at)
        else {
            panic!("signing");
        };
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode(parts[0]);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["x5t"], cert.thumbprint());
        let claims = decode(parts[1]);
        assert_eq!(claims["aud"], "https://login/t/oauth2/v2.0/token");
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["nbf"], 1_700_000_000u64);
        assert_eq!(claims["exp"], 1_700_000_600u64);
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
        let public = UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            cert.key().public().as_ref().to_vec(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        assert!(public.verify(signed.as_bytes(), &signature).is_ok());
    }

    #[test]
    fn thumbprint_is_the_base64url_sha1_of_the_der() {
        // `openssl x509 -fingerprint -sha1` of the fixture:
        // 9B:EC:B8:00:F3:77:E6:5F:96:32:B4:13:37:A7:65:DF:FA:42:C1:4E
        let Ok(cert) = Certificate::from_pem(CERT, KEY) else {
            panic!("fixture certificate");
        };
        let expected = URL_SAFE_NO_PAD.encode([
            0x9B, 0xEC, 0xB8, 0x00, 0xF3, 0x77, 0xE6, 0x5F, 0x96, 0x32, 0xB4, 0x13, 0x37, 0xA7,
            0x65, 0xDF, 0xFA, 0x42, 0xC1, 0x4E,
        ]);
        assert_eq!(cert.thumbprint(), expected);
        assert!(!format!("{cert:?}").contains("PRIVATE"));
    }

    #[test]
    fn accepts_pkcs1_and_refuses_a_key_of_another_certificate() {
        assert!(Certificate::from_pem(CERT, KEY_PKCS1).is_ok());
        assert!(matches!(
            Certificate::from_pem(CERT, OTHER_KEY),
            Err(GraphError::Config(_))
        ));
        assert!(matches!(
            Certificate::from_pem(b"not pem", KEY),
            Err(GraphError::Config(_))
        ));
    }
}
