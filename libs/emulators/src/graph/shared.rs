//! The state one Graph emulator shares between its connections and its handle.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use super::config::{DeltaExpiry, GraphEmulatorConfig};
use super::seed::{GraphSeed, SeedError};
use super::tenant::Tenant;
use super::tokens::Tokens;
use super::traffic::Traffic;

/// Cheap handle on the shared state, used as the axum router state.
#[derive(Clone)]
pub(crate) struct App(Arc<Shared>);

struct Shared {
    config: GraphEmulatorConfig,
    seed: GraphSeed,
    // A std mutex: every critical section is short and synchronous (see `with`), so it is
    // never held across an await.
    inner: Mutex<Inner>,
}

pub(crate) struct Inner {
    pub(crate) tenant: Tenant,
    pub(crate) tokens: Tokens,
    pub(crate) traffic: Traffic,
    /// Permissions granted to tokens issued from now on.
    pub(crate) roles: Arc<BTreeSet<String>>,
    /// Delta tokens carry the epoch they were issued in; expiring them bumps it.
    pub(crate) delta_epoch: u64,
    pub(crate) delta_expiry: DeltaExpiry,
    /// Change-log entries each deltaLink steps back (replays).
    pub(crate) delta_replay: u64,
}

impl Inner {
    fn fresh(config: &GraphEmulatorConfig, tenant: Tenant) -> Self {
        Self {
            tenant,
            tokens: Tokens::default(),
            traffic: Traffic::new(config.throttle.clone()),
            roles: Arc::new(config.app_roles.clone()),
            delta_epoch: 0,
            delta_expiry: config.delta_expiry,
            delta_replay: config.delta_replay,
        }
    }
}

impl App {
    pub(crate) fn new(config: GraphEmulatorConfig, seed: GraphSeed) -> Result<Self, SeedError> {
        let tenant = Tenant::from_seed(&seed)?;
        let inner = Inner::fresh(&config, tenant);
        Ok(Self(Arc::new(Shared {
            config,
            seed,
            inner: Mutex::new(inner),
        })))
    }

    pub(crate) fn config(&self) -> &GraphEmulatorConfig {
        &self.0.config
    }

    /// Runs `f` under the state lock. `f` is synchronous, so the lock cannot outlive an await.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.0.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut inner)
    }

    /// Back to the seed: directory, tokens, counts, violations, throttling, delta epoch. Delta
    /// tokens issued before stay refused: their epoch is gone.
    pub(crate) fn reset(&self) {
        // The seed was validated at start, so this cannot fail; an empty tenant is the safe
        // answer if it somehow did.
        let tenant = Tenant::from_seed(&self.0.seed).unwrap_or_default();
        let mut fresh = Inner::fresh(&self.0.config, tenant);
        self.with(|inner| {
            fresh.delta_epoch = inner.delta_epoch + 1;
            *inner = fresh;
        });
    }
}
