//! The PATCH engine (RFC 7644 §3.5.2) with Entra's quirks.
//!
//! [`apply_patch`] edits a stored User (or a Group without its members) as
//! JSON. Group membership is *not* edited as JSON: [`plan_group_patch`] turns
//! the member operations into explicit id sets, because the store applies
//! membership as set operations and a group may have far more members than
//! we want to load.
//!
//! Where the RFC and Entra disagree, Entra wins (`docs/entra-scim.md §6`):
//! - `op` is matched case-insensitively (`"Replace"` without `aadOptscim062020`).
//! - `add`/`replace` on `emails[type eq "work"].value` creates the element when
//!   nothing matches, instead of the RFC's 400 `noTarget`.
//! - path-less values may use dotted and URN-qualified keys as paths.
//! - `remove` + `members` + a value array removes only those members.
//! - `""` and `null` clear an attribute.
//!
//! Modules:
//! - `request`: the PatchOp message and its operations, parsed leniently.
//! - `resource`: applying operations to a stored resource: paths, schema URNs,
//!   extensions and `manager`.
//! - `attribute`: the edit of one attribute (simple, complex or multi-valued)
//!   or one of its sub-attributes.
//! - `filtered`: edits through a value filter, `attr[filter]` and
//!   `attr[filter].sub`, including creating the element the filter describes.
//! - `members`: group PATCHes as a [`GroupPatch`] plan of member-set changes.

mod attribute;
mod filtered;
mod members;
mod request;
mod resource;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};

pub use members::{GroupPatch, plan_group_patch};
pub use request::{PatchOpKind, PatchOperation, PatchRequest};
pub use resource::apply_patch;

/// A JSON object: a resource, an extension or a complex value.
type JsonObject = Map<String, Value>;

fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(scim_type, detail)
}

/// Names the failing operation in the error's detail.
fn at_operation(index: usize, error: ScimError) -> ScimError {
    ScimError {
        detail: format!("Operations[{index}]: {}", error.detail),
        ..error
    }
}
