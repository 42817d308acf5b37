//! Proof after an apply: every distribution each affected user received before it, looked for
//! again in what MaaS360 holds now. A distribution the user still receives from any group
//! (the copy, another group) is kept; one they no longer receive is a loss, accepted only when
//! the applied plan listed it (a pruned member). Pure.

use std::collections::{HashMap, HashSet};

use dirsync_proto::mapping::v1 as pb;

use crate::entity::record;
use crate::error::{MappingError, Result};
use crate::plan::{Received, distribution_pb, loss_key};
use crate::world::Kind;

/// What a user received, as a record stores it.
pub(crate) fn encode(received: &[Received]) -> Result<String> {
    serde_json::to_string(received)
        .map_err(|error| MappingError::internal(format!("recording distributions: {error}")))
}

fn decode(row: &record::Model) -> Result<Vec<Received>> {
    serde_json::from_str(&row.distributions).map_err(|error| {
        MappingError::internal(format!(
            "operation {}: the record of {} does not parse: {error}",
            row.operation_id, row.user_key
        ))
    })
}

pub(crate) fn verify(
    operation_id: &str,
    plan: &pb::MigrationPlan,
    records: &[record::Model],
    now: &HashMap<String, Vec<Received>>,
) -> Result<pb::VerifyMigrationResponse> {
    let accepted: HashSet<(String, i32, String)> = plan
        .losses
        .iter()
        .map(|loss| {
            let (user, _, kind, id) = loss_key(loss);
            (user, kind, id)
        })
        .collect();
    let mut response = pb::VerifyMigrationResponse {
        operation_id: operation_id.to_owned(),
        ..Default::default()
    };
    for row in records {
        response.users_checked += 1;
        let before = decode(row)?;
        let received_now: HashSet<(Kind, &str)> = now
            .get(&row.maas360_user_id)
            .into_iter()
            .flatten()
            .map(|r| r.distribution.identity())
            .collect();
        let mut seen = HashSet::new();
        for received in &before {
            let identity = received.distribution.identity();
            if !seen.insert(identity) {
                continue;
            }
            response.distributions_checked += 1;
            if received_now.contains(&identity) {
                continue;
            }
            let loss = pb::Loss {
                user: row.user_key.clone(),
                maas360_group: received.group_name.clone(),
                distribution: Some(distribution_pb(&received.distribution)),
            };
            let (user, _, kind, id) = loss_key(&loss);
            response.losses.push(pb::VerifiedLoss {
                accepted: accepted.contains(&(user, kind, id)),
                loss: Some(loss),
            });
        }
    }
    response.ok = response.losses.iter().all(|loss| loss.accepted);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Distribution;

    fn received(group: &str, kind: Kind, id: &str) -> Received {
        Received {
            group_id: format!("g-{group}"),
            group_name: group.to_owned(),
            distribution: Distribution {
                kind,
                id: id.to_owned(),
                name: id.to_owned(),
                platform: String::new(),
                app_type: String::new(),
            },
        }
    }

    fn record(user: &str, list: &[Received]) -> record::Model {
        record::Model {
            operation_id: "op".to_owned(),
            user_key: format!("{user}@contoso.example"),
            maas360_user_id: format!("m-{user}"),
            distributions: encode(list).unwrap_or_else(|e| panic!("{e}")),
        }
    }

    #[test]
    fn a_distribution_received_from_another_group_is_kept_and_an_accepted_loss_is_marked() {
        let records = [
            record(
                "ada",
                &[
                    received("Sales", Kind::App, "crm"),
                    received("Sales", Kind::Policy, "strict"),
                ],
            ),
            record("bob", &[received("Sales", Kind::App, "crm")]),
        ];
        let mut now = HashMap::new();
        // Ada receives both from the copy now; Bob was pruned and the plan said so.
        now.insert(
            "m-ada".to_owned(),
            vec![
                received("Sales Team", Kind::App, "crm"),
                received("Sales Team", Kind::Policy, "strict"),
            ],
        );
        let plan = pb::MigrationPlan {
            losses: vec![pb::Loss {
                user: "bob@contoso.example".to_owned(),
                maas360_group: "Sales".to_owned(),
                distribution: Some(distribution_pb(
                    &received("Sales", Kind::App, "crm").distribution,
                )),
            }],
            ..Default::default()
        };
        let verified = verify("op", &plan, &records, &now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(verified.users_checked, 2);
        assert_eq!(verified.distributions_checked, 3);
        assert_eq!(verified.losses.len(), 1);
        assert!(verified.losses[0].accepted);
        assert!(verified.ok);

        let unplanned = verify("op", &pb::MigrationPlan::default(), &records, &now)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!unplanned.ok);
        assert!(!unplanned.losses[0].accepted);
    }
}
