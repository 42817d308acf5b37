//! The `--seed FILE` JSON format: users and groups (with distributions and members) that an
//! emulator starts with and returns to on reset.

use serde::{Deserialize, Serialize};

use super::state::{Device, Distribution};

/// Initial directory contents.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Seed {
    pub users: Vec<SeedUser>,
    pub groups: Vec<SeedGroup>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedUser {
    /// Generated when absent.
    #[serde(default)]
    pub user_identifier: Option<String>,
    pub user_name: String,
    pub domain: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub full_name: String,
    /// "Active" when absent.
    #[serde(default)]
    pub status: Option<String>,
    /// Enrolled devices. Users without devices only show up in searches with
    /// `includeAllUsers=1` or `2`; an active device blocks deleting the user.
    #[serde(default)]
    pub devices: Vec<Device>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedGroup {
    /// Generated when absent.
    #[serde(default)]
    pub group_identifier: Option<String>,
    pub name: String,
    /// MaaS360's numeric `groupType`: 3 (a user group, the default) or 0–2 (device groups);
    /// see [`super::USER_GROUP_TYPE`].
    #[serde(default)]
    pub group_type: Option<u8>,
    /// "Public" when absent.
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub apps: Vec<Distribution>,
    #[serde(default)]
    pub policies: Vec<Distribution>,
    /// Members by `userName`, or `userName@domain` where a user name is not unique.
    #[serde(default)]
    pub members: Vec<String>,
}

/// Why a seed cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("seed is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("seed: {0}")]
    Invalid(String),
}

impl Seed {
    pub fn from_json(text: &str) -> Result<Self, SeedError> {
        Ok(serde_json::from_str(text)?)
    }
}

impl From<SeedError> for std::io::Error {
    fn from(error: SeedError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, error)
    }
}
