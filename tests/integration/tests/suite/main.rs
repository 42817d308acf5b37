//! dirsync's integration suite: one binary (every extra test binary costs a
//! link on a cold build), one module per concern. Every test starts what it
//! needs in-process on ephemeral ports with a database of its own: SQLite by
//! default, a fresh PostgreSQL schema when DIRSYNC_TEST_DATABASE_URL is set.

#![allow(clippy::unwrap_used, unreachable_pub)]

mod e2e;
mod group_safety;
mod health;
mod maas360_fidelity;
mod maas360_sync;
mod migrations;
mod observability;
mod option1;
mod pull_reads;
mod pull_sync;
mod reflection;
mod scim_auth;
mod scim_entra_sequence;
mod scim_groups;
mod scim_hostile;
mod scim_quirks;
mod scim_schema_conformance;
mod scim_users;
mod tenant_modes;
mod tenants;
mod user_views;
