//! The opaque `$skiptoken` and `$deltatoken` values: what a nextLink or deltaLink carries so
//! that the next request can continue (docs/graph.md §2.1, §3.1). They are base64url JSON,
//! never meant to be read by a client, and self-contained: the emulator keeps no per-link
//! state, so any number of readers can page at once without a table to bound.
//!
//! Each cursor also determines the one link that carries it ([`ListCursor::link`],
//! [`DeltaCursor::link`]), which lets the server notice a client that rebuilt a link instead
//! of following it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Where a paged list (`/users`, `/groups`, member lists) continues.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ListCursor {
    /// The path under `/v1.0/` the link repeats, e.g. `groups/{id}/members`.
    #[serde(rename = "p")]
    pub(crate) path: String,
    /// The last id already returned; the next page starts after it.
    #[serde(rename = "a")]
    pub(crate) after: String,
    /// `$select` as the first request gave it (validated), repeated in the link.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub(crate) select: Option<String>,
    /// `$top` as the first request gave it, repeated in the link.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub(crate) top: Option<usize>,
}

impl ListCursor {
    /// `/v1.0/{path}?$select=…&$top=…&$skiptoken=…`: the original options, then the token.
    pub(crate) fn link(&self) -> String {
        let mut query = Vec::new();
        if let Some(select) = &self.select {
            query.push(format!("$select={select}"));
        }
        if let Some(top) = self.top {
            query.push(format!("$top={top}"));
        }
        query.push(format!("$skiptoken={}", encode(self)));
        format!("/v1.0/{}?{}", self.path, query.join("&"))
    }
}

/// Where a delta round stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeltaCursor {
    /// `users` or `groups`.
    #[serde(rename = "r")]
    pub(crate) resource: String,
    /// The tracked properties, fixed by the round's first request (docs/graph.md §3.2).
    #[serde(rename = "s")]
    pub(crate) select: Vec<String>,
    /// The emulator's delta epoch when the round began; expiring tokens bumps it.
    #[serde(rename = "e")]
    pub(crate) epoch: u64,
    /// Unix seconds when the round began, for the token lifetime.
    #[serde(rename = "i")]
    pub(crate) issued: u64,
    #[serde(rename = "ph")]
    pub(crate) phase: Phase,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Phase {
    /// The initial round: every object with an id above `after`; `resume` continues one
    /// large group's members after the given member id. `snapshot` is the change-log
    /// position when the round began, where the next round starts.
    #[serde(rename = "n")]
    Enumerate {
        #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
        resume: Option<(String, String)>,
        #[serde(rename = "p")]
        snapshot: u64,
    },
    /// A later round: change-log entries from `at` up to (not including) `end`.
    #[serde(rename = "c")]
    Changes {
        #[serde(rename = "a")]
        at: u64,
        #[serde(rename = "z")]
        end: u64,
    },
    /// A deltaLink: the next round starts at this change-log position.
    #[serde(rename = "d")]
    Done {
        #[serde(rename = "p")]
        position: u64,
    },
}

impl DeltaCursor {
    /// `/v1.0/{resource}/delta?$deltatoken=…` for a finished round, `…?$skiptoken=…` within one:
    /// options given on the first request are inside the token, not repeated (docs/graph.md §3.1).
    pub(crate) fn link(&self) -> String {
        let name = match self.phase {
            Phase::Done { .. } => "$deltatoken",
            _ => "$skiptoken",
        };
        format!("/v1.0/{}/delta?{name}={}", self.resource, encode(self))
    }
}

fn encode<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// `None` for anything this emulator did not issue.
pub(crate) fn decode<T: DeserializeOwned>(token: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_links_repeat_the_options() {
        let cursor = ListCursor {
            path: "users".to_owned(),
            after: "u1".to_owned(),
            select: Some("id,mail".to_owned()),
            top: Some(5),
        };
        let link = cursor.link();
        assert!(link.starts_with("/v1.0/users?$select=id,mail&$top=5&$skiptoken="));
        let token = link.rsplit('=').next().unwrap_or_default();
        assert_eq!(decode::<ListCursor>(token), Some(cursor));
        assert_eq!(decode::<ListCursor>("not a token"), None);

        let delta = DeltaCursor {
            resource: "groups".to_owned(),
            select: vec!["id".to_owned(), "members".to_owned()],
            epoch: 1,
            issued: 2,
            phase: Phase::Done { position: 9 },
        };
        let link = delta.link();
        assert!(link.starts_with("/v1.0/groups/delta?$deltatoken="));
        let token = link.rsplit('=').next().unwrap_or_default();
        assert_eq!(decode::<DeltaCursor>(token), Some(delta));
    }
}
