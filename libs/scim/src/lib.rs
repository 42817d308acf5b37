//! SCIM 2.0 (RFC 7643 / RFC 7644) for the gateway that Microsoft Entra ID's
//! provisioning service calls.
//!
//! This crate is pure: no I/O, no async, no clock (callers pass times in), no randomness. It turns
//! request bodies and query parameters into validated values, edits stored
//! resources as JSON, and builds response bodies. The HTTP layer and the
//! store live elsewhere.
//!
//! It follows the RFCs where Entra does, and Entra where it does not (see
//! `docs/entra-scim.md §6`): capitalised PATCH ops, string booleans,
//! filter-in-path `add` that creates the element, path-less values with
//! dotted and URN keys, every `manager` shape, `Remove members` with a value
//! array meaning "remove these", unknown URNs, `null`s and case-insensitive
//! names.
//!
//! Modules:
//! - [`error`]: [`ScimError`] with the status and `scimType` to answer with.
//! - [`schema`]: schema URNs.
//! - [`filter`]: filter and attribute-path parsing and evaluation.
//! - [`patch`]: the PATCH engine and the group membership planner.
//! - [`resource`]: User/Group body normalisation and summaries.
//! - [`meta`]: `meta` with RFC 3339 dates and weak ETag versions.
//! - [`limits`]: bounds on attribute lengths and counts, checked before anything is stored.
//! - [`projection`]: `attributes` / `excludedAttributes`.
//! - [`list`]: ListResponse and paging.
//! - [`discovery`]: ServiceProviderConfig, Schemas, ResourceTypes.
//! - `values`: shaping incoming attribute values, shared by PATCH and POST/PUT.
//! - `util`: case-insensitive JSON helpers.
//!
//! Nothing panics on input: all recursion over untrusted input is bounded
//! (filters by [`filter::MAX_FILTER_DEPTH`] and friends, JSON by serde_json's
//! own nesting limit when the caller parses the body).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod discovery;
pub mod error;
pub mod filter;
pub mod limits;
pub mod list;
pub mod meta;
pub mod patch;
pub mod projection;
pub mod resource;
pub mod schema;
mod util;
mod values;

pub use discovery::{
    resource_type_by_id, resource_types, schema_by_id, schemas, service_provider_config,
};
pub use error::{ScimError, ScimType};
pub use filter::{AttrPath, CompValue, CompareOp, Filter, parse_attr_path, parse_filter};
pub use list::{list_response, paging};
pub use patch::{
    GroupPatch, PatchOpKind, PatchOperation, PatchRequest, apply_patch, plan_group_patch,
};
pub use projection::{parse_attribute_list, project};
pub use resource::{GroupInput, UserSummary, normalize_user, parse_group};
pub use schema::{
    SCHEMA_ADSCIM_GROUP, SCHEMA_BULK_REQUEST, SCHEMA_ENTERPRISE_USER, SCHEMA_ERROR, SCHEMA_GROUP,
    SCHEMA_LIST_RESPONSE, SCHEMA_PATCH_OP, SCHEMA_RESOURCE_TYPE, SCHEMA_SCHEMA,
    SCHEMA_SEARCH_REQUEST, SCHEMA_SERVICE_PROVIDER_CONFIG, SCHEMA_USER,
};
