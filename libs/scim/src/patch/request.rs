//! The PatchOp message and its operations, parsed leniently: Entra capitalises `op`
//! (`docs/entra-scim.md §6 Q1`), and clients vary in casing, `schemas` and `null`s.

use serde_json::Value;

use super::{at_operation, bad_request};
use crate::error::{ScimError, ScimType};
use crate::filter::{AttrPath, parse_attr_path};
use crate::util::get_ci;

/// PATCH operation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    /// `add`
    Add,
    /// `remove`
    Remove,
    /// `replace`
    Replace,
}

impl PatchOpKind {
    /// Lower-case RFC spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Remove => "remove",
            PatchOpKind::Replace => "replace",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        [PatchOpKind::Add, PatchOpKind::Remove, PatchOpKind::Replace]
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(text))
    }
}

/// One PATCH operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// add, remove or replace
    pub op: PatchOpKind,
    /// Target path; `None` for path-less add/replace.
    pub path: Option<AttrPath>,
    /// Value; a JSON `null` is stored as `None`.
    pub value: Option<Value>,
}

/// A parsed PatchOp message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PatchRequest {
    /// Operations in request order.
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Parses a PatchOp body. Tolerant of `op` case, `Operations` key case, a
    /// missing or unknown `schemas`, and `value: null`.
    pub fn parse(body: &Value) -> Result<PatchRequest, ScimError> {
        let body = body.as_object().ok_or_else(|| {
            bad_request(
                ScimType::InvalidSyntax,
                "the PATCH body must be a JSON object",
            )
        })?;
        let listed = get_ci(body, "Operations").ok_or_else(|| {
            bad_request(
                ScimType::InvalidSyntax,
                "the PATCH body has no 'Operations' array",
            )
        })?;
        let items: Vec<&Value> = match listed {
            Value::Array(items) => items.iter().collect(),
            single @ Value::Object(_) => vec![single],
            _ => {
                return Err(bad_request(
                    ScimType::InvalidSyntax,
                    "'Operations' must be an array",
                ));
            }
        };
        let operations = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| parse_operation(item).map_err(|error| at_operation(index, error)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PatchRequest { operations })
    }
}

fn parse_operation(item: &Value) -> Result<PatchOperation, ScimError> {
    let fields = item.as_object().ok_or_else(|| {
        bad_request(
            ScimType::InvalidSyntax,
            "an operation must be a JSON object",
        )
    })?;
    let op = match get_ci(fields, "op") {
        Some(Value::String(text)) => PatchOpKind::parse(text).ok_or_else(|| {
            bad_request(
                ScimType::InvalidSyntax,
                format!("unknown op '{text}' (expected add, remove or replace)"),
            )
        })?,
        Some(_) => {
            return Err(bad_request(
                ScimType::InvalidSyntax,
                "'op' must be a string",
            ));
        }
        None => {
            return Err(bad_request(
                ScimType::InvalidSyntax,
                "the operation has no 'op'",
            ));
        }
    };
    let path = match get_ci(fields, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(Value::String(text)) => Some(parse_attr_path(text)?),
        Some(_) => {
            return Err(bad_request(
                ScimType::InvalidPath,
                "'path' must be a string",
            ));
        }
    };
    let value = get_ci(fields, "value")
        .filter(|value| !value.is_null())
        .cloned();
    Ok(PatchOperation { op, path, value })
}
