//! Who the client is: the tenant, the application (client) id, and its credential, a client
//! secret or a certificate with its private key (docs/graph.md §1.1, §1.2).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Secret;
use crate::aadsts::CredentialKind;
use crate::error::GraphError;

/// The app registration the client acts as (app-only, client-credentials flow).
#[derive(Clone, Debug)]
pub struct Credentials {
    /// Tenant GUID or a verified domain such as `contoso.onmicrosoft.com`.
    pub tenant_id: String,
    /// The application (client) id GUID.
    pub client_id: String,
    pub credential: ClientCredential,
}

/// How the application proves who it is.
#[derive(Clone, Debug)]
pub enum ClientCredential {
    /// A client secret (`client_secret`, docs/graph.md §1.1).
    Secret(Secret),
    /// A certificate registered on the application; the client signs a JWT assertion with
    /// its private key (`client_assertion`, docs/graph.md §1.2).
    Certificate(Certificate),
}

impl ClientCredential {
    pub(crate) fn kind(&self) -> CredentialKind {
        match self {
            ClientCredential::Secret(_) => CredentialKind::Secret,
            ClientCredential::Certificate(_) => CredentialKind::Certificate,
        }
    }
}

/// An X.509 certificate and its RSA private key. `Debug` shows only the thumbprint.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    key: Arc<RsaKeyPair>,
    sha1_thumbprint: String,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("x5t", &self.sha1_thumbprint)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// The first certificate in `cert_pem` and the RSA private key in `key_pem` (PKCS#8
    /// `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`). Refuses a key that is not the
    /// certificate's, which Entra would otherwise refuse later with a vaguer message.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, GraphError> {
        let cert = CertificateDer::from_pem_slice(cert_pem)
            .map_err(|e| GraphError::Config(format!("certificate PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| GraphError::Config(format!("private key PEM: {e:?}")))?;
        let key = match &key {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => {
                return Err(GraphError::Config(
                    "private key: only RSA keys can sign an RS256 client assertion".to_owned(),
                ));
            }
        }
        .map_err(|e| GraphError::Config(format!("private key: not a usable RSA key: {e}")))?;
        let der = cert.as_ref().to_vec();
        // The certificate's SubjectPublicKeyInfo holds the RSAPublicKey DER verbatim, so
        // finding the key's public half in the certificate is a sound match test.
        let public = key.public().as_ref();
        if public.is_empty() || !der.windows(public.len()).any(|w| w == public) {
            return Err(GraphError::Config(
                "the private key does not belong to the certificate".to_owned(),
            ));
        }
        let sha1_thumbprint =
            URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der));
        Ok(Self {
            der,
            key: Arc::new(key),
            sha1_thumbprint,
        })
    }

    /// [`Certificate::from_pem`] from two files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, GraphError> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|e| GraphError::Config(format!("reading {}: {e}", path.display())))
        };
        Self::from_pem(&read(cert)?, &read(key)?)
    }

    /// `x5t`: the base64url SHA-1 thumbprint of the DER certificate (docs/graph.md §1.2).
    pub fn thumbprint(&self) -> &str {
        &self.sha1_thumbprint
    }

    /// The DER certificate, e.g. to register it on an emulated application.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub(crate) fn key(&self) -> &RsaKeyPair {
        &self.key
    }
}
