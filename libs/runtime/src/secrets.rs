//! Secrets given by reference: the name of an environment variable or the path of a file of the
//! serving process, never the secret itself. References are validated when set, stored as text
//! (`env:NAME`, `file:PATH`), and resolved only when a client is built, so a rotated file or
//! variable takes effect without touching the stored connection.

use dirsync_http::Secret;
use dirsync_proto::common::v1::{SecretReference, secret_reference::Source};

/// Why a reference cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("give it by reference: an environment variable (env) or a file (file)")]
    Missing,
    #[error("an environment variable name is letters, digits and _")]
    BadEnvName,
    #[error("the file path is empty")]
    EmptyPath,
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("cannot read secret file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("secret reference {0:?} is neither env:NAME nor file:PATH")]
    BadReference(String),
    #[error("the secret at {0} is empty")]
    Empty(String),
}

/// A reference as stored: `env:NAME` or `file:PATH`.
pub fn to_text(reference: Option<&SecretReference>) -> Result<String, SecretError> {
    match reference.and_then(|reference| reference.source.as_ref()) {
        Some(Source::Env(name)) => {
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                Ok(format!("env:{name}"))
            } else {
                Err(SecretError::BadEnvName)
            }
        }
        Some(Source::File(path)) if !path.trim().is_empty() => Ok(format!("file:{}", path.trim())),
        Some(Source::File(_)) => Err(SecretError::EmptyPath),
        None => Err(SecretError::Missing),
    }
}

/// A stored reference as the API shows it.
pub fn to_reference(text: &str) -> Option<SecretReference> {
    let source = if let Some(name) = text.strip_prefix("env:") {
        Source::Env(name.to_owned())
    } else {
        Source::File(text.strip_prefix("file:")?.to_owned())
    };
    Some(SecretReference {
        source: Some(source),
    })
}

/// The secret a stored reference names, read now.
pub fn resolve(text: &str) -> Result<Secret, SecretError> {
    let value = if let Some(name) = text.strip_prefix("env:") {
        std::env::var(name).map_err(|_| SecretError::MissingEnv(name.to_owned()))?
    } else if let Some(path) = text.strip_prefix("file:") {
        std::fs::read_to_string(path)
            .map_err(|error| SecretError::File {
                path: path.to_owned(),
                reason: error.to_string(),
            })?
            .trim_end_matches(['\r', '\n'])
            .to_owned()
    } else {
        return Err(SecretError::BadReference(text.to_owned()));
    };
    if value.is_empty() {
        return Err(SecretError::Empty(text.to_owned()));
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn references_round_trip_and_resolve() {
        let file = std::env::temp_dir().join(format!("dirsync-secret-{}", std::process::id()));
        std::fs::write(&file, "s3cret\n").unwrap();
        let reference = SecretReference {
            source: Some(Source::File(file.display().to_string())),
        };
        let text = to_text(Some(&reference)).unwrap();
        assert_eq!(to_reference(&text), Some(reference));
        assert_eq!(resolve(&text).unwrap().expose(), "s3cret");
        let _ = std::fs::remove_file(&file);
        assert_eq!(to_text(None), Err(SecretError::Missing));
        let bad = SecretReference {
            source: Some(Source::Env("A-B".to_owned())),
        };
        assert_eq!(to_text(Some(&bad)), Err(SecretError::BadEnvName));
        assert!(matches!(
            resolve("env:DIRSYNC_SURELY_UNSET_VARIABLE"),
            Err(SecretError::MissingEnv(_))
        ));
    }
}
