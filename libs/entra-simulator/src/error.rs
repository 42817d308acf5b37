//! Errors that stop the simulator. Failures of single objects never do: like
//! Entra, a cycle records them in [`crate::CycleReport::failures`] and moves on.

/// Why the simulator could not be built or a cycle had to stop.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("invalid SCIM base URL {url:?}: {reason}")]
    InvalidBaseUrl { url: String, reason: String },

    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),

    #[error("could not build the HTTP client")]
    Client(#[source] reqwest::Error),

    /// Entra quarantines a job on credential errors regardless of failure
    /// counts, so the cycle stops instead of failing every object.
    #[error("the SCIM server rejected the bearer token with HTTP {status}: {detail}")]
    CredentialsRejected { status: u16, detail: String },
}
