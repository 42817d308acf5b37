//! Reading the members of many groups through JSON `$batch` (docs/graph.md §5): up to 20
//! member reads per call, several calls in flight, each inner nextLink followed (batched
//! again), throttled or failed items re-batched after the longest wait asked for.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::classify::graph_error;
use crate::client::{GraphClient, Membership};
use crate::error::GraphError;
use crate::model::{MEMBER_FIELDS, Member};
use crate::paging::{LinkGuard, Page};
use crate::retry::is_retryable_status;
use crate::transport::{Payload, Reply, Request};

/// A batch holds at most 20 requests (docs/graph.md §5).
pub const MAX_BATCH_REQUESTS: usize = 20;

/// The members of many groups.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupMembers {
    /// Members per group id; a group without members maps to an empty list.
    pub members: BTreeMap<String, Vec<Member>>,
    /// Groups Graph answered 404 for (deleted since they were listed, usually).
    pub not_found: Vec<String>,
}

/// One member page to read.
#[derive(Clone, Debug)]
struct Item {
    group_id: String,
    /// Relative to the API root, as `$batch` wants it.
    url: String,
    /// Failed attempts so far.
    failures: u32,
}

/// The answer to one item of a batch.
struct ItemReply {
    status: u16,
    retry_after: Option<Duration>,
    body: Option<Value>,
}

impl GraphClient {
    /// The members of every group in `group_ids`, direct or transitive, in far fewer calls
    /// than one per group. A group Graph does not know lands in
    /// [`GroupMembers::not_found`]; any other refusal fails the whole read.
    pub async fn members_of_groups(
        &self,
        group_ids: &[String],
        membership: Membership,
        select: &[&str],
    ) -> Result<GroupMembers, GraphError> {
        let select = if select.is_empty() {
            MEMBER_FIELDS
        } else {
            select
        };
        let mut result = GroupMembers::default();
        let mut pending = VecDeque::new();
        for id in group_ids {
            if result.members.insert(id.clone(), Vec::new()).is_none() {
                let url = self.list_url(&["groups", id, membership.segment()], select, &[])?;
                pending.push_back(Item {
                    group_id: id.clone(),
                    url: self.inner.endpoints.relative(&url)?,
                    failures: 0,
                });
            }
        }
        let options = &self.inner.sender.options;
        let mut guards: HashMap<String, LinkGuard> = HashMap::new();
        let mut in_flight = JoinSet::new();
        loop {
            while in_flight.len() < options.max_concurrency && !pending.is_empty() {
                let take = pending.len().min(MAX_BATCH_REQUESTS);
                let chunk: Vec<Item> = pending.drain(..take).collect();
                let client = self.clone();
                in_flight.spawn(async move {
                    let replies = client.send_batch(&chunk).await;
                    (chunk, replies)
                });
            }
            let Some(joined) = in_flight.join_next().await else {
                break;
            };
            let (chunk, replies) =
                joined.map_err(|e| GraphError::InvalidResponse(format!("batch task: {e}")))?;
            let mut replies = replies?;
            for (index, mut item) in chunk.into_iter().enumerate() {
                let reply = replies.remove(&batch_id(index));
                let (status, retry_after) = match &reply {
                    Some(reply) => (reply.status, reply.retry_after),
                    // An answer missing from the batch is retried like a transient failure.
                    None => (503, None),
                };
                if status == 200 {
                    let page = Page::parse(reply.and_then(|r| r.body))?;
                    let members = page
                        .value
                        .into_iter()
                        .map(Member::from_value)
                        .collect::<Result<Vec<_>, _>>()?;
                    if let Some(list) = result.members.get_mut(&item.group_id) {
                        list.extend(members);
                    }
                    if let Some(link) = page.next_link {
                        guards
                            .entry(item.group_id.clone())
                            .or_default()
                            .next(&link)?;
                        let url = self.inner.endpoints.link(&link)?;
                        pending.push_back(Item {
                            group_id: item.group_id,
                            url: self.inner.endpoints.relative(&url)?,
                            failures: 0,
                        });
                    }
                } else if status == 404 {
                    result.members.remove(&item.group_id);
                    result.not_found.push(item.group_id);
                } else if is_retryable_status(http_status(status)) {
                    item.failures += 1;
                    let wait = self.inner.sender.wait(item.failures, retry_after);
                    match wait.filter(|_| item.failures <= options.max_retries) {
                        Some(wait) => {
                            // The hold delays every request of this client, this re-batch
                            // included: the longest Retry-After of the batch wins.
                            self.inner.sender.hold(wait);
                            pending.push_back(item);
                        }
                        None => {
                            return Err(item_error(&item, status, retry_after, reply));
                        }
                    }
                } else {
                    return Err(item_error(&item, status, retry_after, reply));
                }
            }
        }
        Ok(result)
    }

    /// `POST /$batch` with one GET per item, ids `"1"`…; the answers by id.
    async fn send_batch(&self, items: &[Item]) -> Result<HashMap<String, ItemReply>, GraphError> {
        let requests: Vec<Value> = items
            .iter()
            .enumerate()
            .map(|(index, item)| json!({"id": batch_id(index), "method": "GET", "url": item.url}))
            .collect();
        let reply = self
            .call(&Request {
                route: "batch",
                post: true,
                url: self.inner.endpoints.api(&["$batch"])?,
                payload: Payload::Json(json!({ "requests": requests })),
            })
            .await?;
        let responses = reply
            .body
            .as_ref()
            .and_then(|b| b.get("responses"))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                GraphError::InvalidResponse("a $batch reply without responses".to_owned())
            })?;
        // Answers may come in any order; they are matched by id (docs/graph.md §5).
        let mut by_id = HashMap::with_capacity(responses.len());
        for response in responses {
            let Some(id) = response.get("id").and_then(Value::as_str) else {
                continue;
            };
            let status = response
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(0);
            // Inside a batch, Retry-After can be fractional and sits in the item's own
            // headers, under any capitalisation (docs/graph.md §5).
            let retry_after = response
                .get("headers")
                .and_then(Value::as_object)
                .and_then(|headers| {
                    headers
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
                })
                .and_then(|(_, value)| match value {
                    Value::String(s) => dirsync_http::retry_after(s),
                    Value::Number(n) => dirsync_http::retry_after(&n.to_string()),
                    _ => None,
                });
            by_id.insert(
                id.to_owned(),
                ItemReply {
                    status,
                    retry_after,
                    body: response.get("body").cloned(),
                },
            );
        }
        Ok(by_id)
    }
}

fn batch_id(index: usize) -> String {
    (index + 1).to_string()
}

fn http_status(status: u16) -> reqwest::StatusCode {
    reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR)
}

/// The error for an item that failed for good, judged like a standalone reply.
fn item_error(
    item: &Item,
    status: u16,
    retry_after: Option<Duration>,
    reply: Option<ItemReply>,
) -> GraphError {
    let standalone = Reply {
        status: http_status(status),
        retry_after,
        location: None,
        body: reply.and_then(|r| r.body),
    };
    let error = graph_error("batch", &standalone);
    tracing::debug!(group = %item.group_id, %error, "batch item failed");
    error
}
