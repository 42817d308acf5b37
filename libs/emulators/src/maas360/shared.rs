//! The state one emulator instance shares between its connections and its handle.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use super::config::EmulatorConfig;
use super::routes::RouteMap;
use super::seed::Seed;
use super::state::Directory;
use super::tokens::Tokens;
use super::traffic::Traffic;

/// Cheap handle on the shared state, used as the axum router state.
#[derive(Clone)]
pub(crate) struct App(Arc<Shared>);

struct Shared {
    config: EmulatorConfig,
    seed: Option<Seed>,
    // A std mutex: every critical section is short and synchronous (see `with`), so it is
    // never held across an await.
    inner: Mutex<Inner>,
}

pub(crate) struct Inner {
    pub(crate) dir: Directory,
    pub(crate) tokens: Tokens,
    pub(crate) traffic: Traffic,
    /// Where each operation is served.
    pub(crate) routes: RouteMap,
    /// Successful authentications by grant ("password", "refresh_token").
    pub(crate) grants: BTreeMap<String, u64>,
    /// Accepted Authorization headers by quote style ("single", "double").
    pub(crate) quote_styles: BTreeMap<String, u64>,
}

impl Inner {
    fn fresh(config: &EmulatorConfig, dir: Directory, routes: RouteMap) -> Self {
        Self {
            dir,
            tokens: Tokens::default(),
            traffic: Traffic::new(config.faults.clone(), config.rate_limit.clone()),
            routes,
            grants: BTreeMap::new(),
            quote_styles: BTreeMap::new(),
        }
    }
}

impl App {
    pub(crate) fn new(config: EmulatorConfig, seed: Option<Seed>) -> io::Result<Self> {
        let dir = Directory::from_seed(seed.as_ref())?;
        let routes = RouteMap::with_moves(&config.routes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let inner = Inner::fresh(&config, dir, routes);
        Ok(Self(Arc::new(Shared {
            config,
            seed,
            inner: Mutex::new(inner),
        })))
    }

    pub(crate) fn config(&self) -> &EmulatorConfig {
        &self.0.config
    }

    /// Runs `f` under the state lock. `f` is synchronous, so the lock cannot outlive an await.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.0.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut inner)
    }

    /// Carries out the queued deletions that have waited `deletion_job_after`, if set.
    pub(crate) fn run_due_deletions(&self) {
        if let Some(after) = self.0.config.deletion_job_after {
            self.with(|i| i.dir.run_deletion_job(after));
        }
    }

    /// Back to the seeded directory, no tokens, no counts, the configured faults and routes.
    pub(crate) fn reset(&self) {
        // The seed was validated when the emulator started, so this cannot fail; an empty
        // directory is the safe answer if it somehow did.
        let dir = Directory::from_seed(self.0.seed.as_ref()).unwrap_or_default();
        // Validated at start too; the defaults are the safe answer if that somehow changed.
        let routes = RouteMap::with_moves(&self.0.config.routes).unwrap_or_default();
        let fresh = Inner::fresh(&self.0.config, dir, routes);
        self.with(|inner| *inner = fresh);
    }
}
