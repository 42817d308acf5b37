//! The one narrow interface the reconcile workers write through. Today it is
//! MaaS360's REST web services; a backend for MaaS360's own SCIM endpoint
//! (keeping REST for distributions) would implement the same trait without
//! touching the reconcile loop.

use std::time::{Duration, SystemTime};

use dirsync_maas360::{Maas360Client, Maas360Error, NewUser, UserChanges};

use super::identity::Identity;

/// A user as the backend holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteUser {
    pub(crate) id: String,
    pub(crate) identity: Identity,
    pub(crate) active: bool,
    /// MaaS360 queued the user's deletion for its daily job; it is gone as far as Entra goes.
    pub(crate) pending_deletion: bool,
}

/// A user group as the backend holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteGroup {
    pub(crate) id: String,
    pub(crate) name: String,
    /// App and policy distributions it carries: devices lose them if it is taken away.
    pub(crate) apps: usize,
    pub(crate) policies: usize,
}

impl RemoteGroup {
    pub(crate) fn carries_distributions(&self) -> bool {
        self.apps + self.policies > 0
    }
}

/// How a failed call should be treated. Only [`BackendError::Permanent`] (and an unexpected
/// "already exists" or "not found") parks a resource; everything else is retried for as long as
/// it takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BackendError {
    /// MaaS360 did not answer, or failed on its side (5xx, timeout, refused connection).
    #[error("{0}")]
    Unavailable(String),
    /// MaaS360 asked the tenant to slow down; every worker of the tenant pauses `retry_after`.
    #[error("{detail}")]
    Throttled {
        detail: String,
        retry_after: Option<Duration>,
    },
    /// The tenant's circuit breaker is open: no call was made.
    #[error("MaaS360 is unreachable for this tenant; no call until the next probe")]
    CircuitOpen { next_probe: SystemTime },
    #[error("{0}")]
    Permanent(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    NotFound(String),
    /// MaaS360 refuses to delete a user while it has an active device.
    #[error("{0}")]
    ActiveDevice(String),
}

impl BackendError {
    /// Whether a later attempt can succeed without anything changing but time.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::Throttled { .. } | Self::CircuitOpen { .. }
        )
    }

    /// The audit's name for how a call ended.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Self::Unavailable(_) | Self::Throttled { .. } | Self::CircuitOpen { .. } => "retryable",
            Self::Permanent(_) => "permanent",
            Self::ActiveDevice(_) => "refused_active_device",
            Self::AlreadyExists(_) => "already_exists",
            Self::NotFound(_) => "not_found",
        }
    }
}

impl From<Maas360Error> for BackendError {
    fn from(error: Maas360Error) -> Self {
        let retry_after = error.retry_after();
        match error {
            Maas360Error::AlreadyExists { detail, .. } => Self::AlreadyExists(detail),
            Maas360Error::NotFound { detail, .. } => Self::NotFound(detail),
            Maas360Error::ActiveDevice { detail, .. } => Self::ActiveDevice(detail),
            other if other.is_rate_limited() => Self::Throttled {
                detail: other.to_string(),
                retry_after,
            },
            other if other.is_retryable() => Self::Unavailable(other.to_string()),
            other => Self::Permanent(other.to_string()),
        }
    }
}

#[tonic::async_trait]
pub(crate) trait DirectoryBackend: Send + Sync + std::fmt::Debug {
    /// One cheap read, to learn whether MaaS360 answers again.
    async fn probe(&self) -> Result<(), BackendError>;
    async fn find_user(
        &self,
        user_name: &str,
        domain: &str,
    ) -> Result<Option<RemoteUser>, BackendError>;
    async fn add_user(&self, identity: &Identity) -> Result<String, BackendError>;
    async fn edit_user(&self, id: &str, from: &Identity, to: &Identity)
    -> Result<(), BackendError>;
    async fn deactivate_user(&self, id: &str) -> Result<(), BackendError>;
    async fn reactivate_user(&self, id: &str) -> Result<(), BackendError>;
    async fn delete_user(&self, id: &str) -> Result<(), BackendError>;
    /// Every MaaS360 user group (not device groups), with how much it distributes.
    async fn user_groups(&self) -> Result<Vec<RemoteGroup>, BackendError>;
    async fn create_group(&self, name: &str) -> Result<String, BackendError>;
    async fn delete_group(&self, id: &str) -> Result<(), BackendError>;
    async fn add_user_to_groups(
        &self,
        user_id: &str,
        group_ids: &[String],
    ) -> Result<(), BackendError>;
    async fn remove_user_from_groups(
        &self,
        user_id: &str,
        group_ids: &[String],
    ) -> Result<(), BackendError>;
}

/// A username no tenant holds: the probe is a search that finds nothing.
const PROBE_USER: &str = "dirsync-reachability-probe";

#[tonic::async_trait]
impl DirectoryBackend for Maas360Client {
    async fn probe(&self) -> Result<(), BackendError> {
        Maas360Client::find_user(self, PROBE_USER, "dirsync.invalid").await?;
        Ok(())
    }

    async fn find_user(
        &self,
        user_name: &str,
        domain: &str,
    ) -> Result<Option<RemoteUser>, BackendError> {
        let found = Maas360Client::find_user(self, user_name, domain).await?;
        Ok(found.map(|user| RemoteUser {
            active: !user.status.eq_ignore_ascii_case("inactive")
                && !user.status.eq_ignore_ascii_case("deactivated"),
            pending_deletion: user.is_pending_deletion(),
            id: user.user_identifier,
            identity: Identity {
                user_name: user.user_name,
                domain: user.domain,
                email: user.email,
                full_name: user.full_name,
            },
        }))
    }

    async fn add_user(&self, identity: &Identity) -> Result<String, BackendError> {
        Ok(Maas360Client::add_user(
            self,
            &NewUser {
                user_name: identity.user_name.clone(),
                domain: identity.domain.clone(),
                email: identity.email.clone(),
                full_name: identity.full_name.clone(),
            },
        )
        .await?)
    }

    async fn edit_user(
        &self,
        id: &str,
        from: &Identity,
        to: &Identity,
    ) -> Result<(), BackendError> {
        let changes = UserChanges {
            email: (from.email != to.email).then(|| to.email.clone()),
            full_name: (from.full_name != to.full_name).then(|| to.full_name.clone()),
            user_name: (from.user_name != to.user_name).then(|| to.user_name.clone()),
            domain: (from.domain != to.domain).then(|| to.domain.clone()),
        };
        Ok(Maas360Client::edit_user(self, id, &changes).await?)
    }

    async fn deactivate_user(&self, id: &str) -> Result<(), BackendError> {
        Ok(Maas360Client::deactivate_user(self, id).await?)
    }

    async fn reactivate_user(&self, id: &str) -> Result<(), BackendError> {
        Ok(Maas360Client::reactivate_user(self, id).await?)
    }

    async fn delete_user(&self, id: &str) -> Result<(), BackendError> {
        // Deleted or queued for MaaS360's daily job: either way done, never repeated.
        Maas360Client::delete_user(self, id).await?;
        Ok(())
    }

    async fn user_groups(&self) -> Result<Vec<RemoteGroup>, BackendError> {
        Ok(Maas360Client::user_groups(self)
            .await?
            .into_iter()
            .map(|group| RemoteGroup {
                id: group.group_identifier,
                name: group.name,
                apps: group.app_distributions.len(),
                policies: group.policy_distributions.len(),
            })
            .collect())
    }

    async fn create_group(&self, name: &str) -> Result<String, BackendError> {
        Ok(Maas360Client::create_user_group(self, name).await?)
    }

    async fn delete_group(&self, id: &str) -> Result<(), BackendError> {
        Ok(Maas360Client::delete_user_group(self, id).await?)
    }

    async fn add_user_to_groups(
        &self,
        user_id: &str,
        group_ids: &[String],
    ) -> Result<(), BackendError> {
        Ok(Maas360Client::add_user_to_groups(self, user_id, group_ids).await?)
    }

    async fn remove_user_from_groups(
        &self,
        user_id: &str,
        group_ids: &[String],
    ) -> Result<(), BackendError> {
        Ok(Maas360Client::remove_user_from_groups(self, user_id, group_ids).await?)
    }
}
