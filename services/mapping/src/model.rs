//! Mappings and operations as the store keeps them (modes and states as words) and as the
//! contract shows them.

use dirsync_proto::mapping::v1 as pb;
use dirsync_proto::time::from_unix_ms;

use crate::entity::{group_mapping, operation};
use crate::error::{MappingError, Result};

pub(crate) fn mode_word(mode: pb::MappingMode) -> &'static str {
    match mode {
        pb::MappingMode::Copy => "copy",
        pb::MappingMode::Adopt | pb::MappingMode::Unspecified => "adopt",
    }
}

pub(crate) fn mode_of(word: &str) -> pb::MappingMode {
    match word {
        "copy" => pb::MappingMode::Copy,
        _ => pb::MappingMode::Adopt,
    }
}

pub(crate) fn state_word(state: pb::MappingState) -> &'static str {
    match state {
        pb::MappingState::Proposed => "proposed",
        pb::MappingState::Confirmed | pb::MappingState::Unspecified => "confirmed",
        pb::MappingState::Applying => "applying",
        pb::MappingState::Applied => "applied",
        pb::MappingState::Verified => "verified",
        pb::MappingState::Failed => "failed",
    }
}

pub(crate) fn state_of(word: &str) -> pb::MappingState {
    match word {
        "proposed" => pb::MappingState::Proposed,
        "confirmed" => pb::MappingState::Confirmed,
        "applying" => pb::MappingState::Applying,
        "applied" => pb::MappingState::Applied,
        "verified" => pb::MappingState::Verified,
        "failed" => pb::MappingState::Failed,
        _ => pb::MappingState::Unspecified,
    }
}

/// A mode from a request: unspecified is a missing field.
pub(crate) fn requested_mode(value: i32, field: &str) -> Result<pb::MappingMode> {
    match pb::MappingMode::try_from(value) {
        Ok(pb::MappingMode::Adopt) => Ok(pb::MappingMode::Adopt),
        Ok(pb::MappingMode::Copy) => Ok(pb::MappingMode::Copy),
        _ => Err(MappingError::invalid(
            field,
            format!("{field} must be MAPPING_MODE_ADOPT or MAPPING_MODE_COPY"),
        )),
    }
}

/// A state an operator may set: proposed or confirmed.
pub(crate) fn requested_state(
    value: i32,
    field: &str,
    unspecified: pb::MappingState,
) -> Result<pb::MappingState> {
    match pb::MappingState::try_from(value) {
        Ok(pb::MappingState::Unspecified) => Ok(unspecified),
        Ok(state @ (pb::MappingState::Proposed | pb::MappingState::Confirmed)) => Ok(state),
        _ => Err(MappingError::invalid(
            field,
            format!(
                "{field} must be MAPPING_STATE_PROPOSED or MAPPING_STATE_CONFIRMED; the other \
                 states are reached by applying and verifying"
            ),
        )),
    }
}

/// Whether an apply has taken the mapping: it can no longer be changed or deleted.
pub(crate) fn is_taken(state: &str) -> bool {
    matches!(state, "applying" | "applied" | "verified")
}

/// Whether a plan carries the mapping out: confirmed, or interrupted, or failed before.
pub(crate) fn is_planned(state: &str) -> bool {
    matches!(state, "confirmed" | "applying" | "failed")
}

/// Whether the Entra group writes to its target.
pub(crate) fn is_bound(row: &group_mapping::Model) -> bool {
    matches!(row.state.as_str(), "applied" | "verified") && !row.target_group_id.is_empty()
}

pub(crate) fn mapping(row: &group_mapping::Model) -> pb::Mapping {
    pb::Mapping {
        mapping_id: row.mapping_id.clone(),
        tenant_id: row.tenant_id.clone(),
        entra_group_id: row.entra_group_id.clone(),
        entra_group_name: row.entra_group_name.clone(),
        maas360_group_id: row.maas360_group_id.clone().unwrap_or_default(),
        maas360_group_name: row.maas360_group_name.clone().unwrap_or_default(),
        mode: mode_of(&row.mode) as i32,
        state: state_of(&row.state) as i32,
        prune: row.prune,
        target_group_id: row.target_group_id.clone(),
        target_group_name: row.target_group_name.clone(),
        operation_id: row.operation_id.clone(),
        last_error: row.last_error.clone(),
        create_time: Some(from_unix_ms(row.created_at)),
        update_time: Some(from_unix_ms(row.updated_at)),
    }
}

pub(crate) fn operation_state_of(word: &str) -> pb::OperationState {
    match word {
        "running" => pb::OperationState::Running,
        "succeeded" => pb::OperationState::Succeeded,
        "failed" => pb::OperationState::Failed,
        _ => pb::OperationState::Unspecified,
    }
}

pub(crate) fn decode_plan(row: &operation::Model) -> Result<pb::MigrationPlan> {
    prost::Message::decode(row.plan.as_slice()).map_err(|error| {
        MappingError::internal(format!(
            "operation {}: stored plan does not decode: {error}",
            row.operation_id
        ))
    })
}

pub(crate) fn operation(
    row: &operation::Model,
    mappings: &[group_mapping::Model],
) -> Result<pb::MigrationOperation> {
    Ok(pb::MigrationOperation {
        operation_id: row.operation_id.clone(),
        tenant_id: row.tenant_id.clone(),
        plan_id: row.plan_id.clone(),
        state: operation_state_of(&row.state) as i32,
        steps_total: u32::try_from(row.steps_total).unwrap_or(0),
        steps_done: u32::try_from(row.steps_done).unwrap_or(0),
        users_recorded: u32::try_from(row.users_recorded).unwrap_or(0),
        last_error: row.last_error.clone(),
        mappings: mappings.iter().map(mapping).collect(),
        create_time: Some(from_unix_ms(row.created_at)),
        update_time: Some(from_unix_ms(row.updated_at)),
        plan: Some(decode_plan(row)?),
    })
}
