//! End-to-end cycles against a small in-memory SCIM server speaking raw
//! HTTP/1.1, so the simulator's HTTP path, ordering and cache are exercised
//! without depending on the real gateway crate.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dirsync_entra_simulator::{
    CycleReport, Directory, PatchShape, Progress, Simulator, SimulatorConfig, SimulatorError,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "s3cret-token";

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    /// Path and raw query.
    target: String,
    headers: HashMap<String, String>,
    body: Option<Value>,
}

#[derive(Debug, Clone, Default)]
struct FakeUser {
    user_name: String,
    external_id: Option<String>,
    display_name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    active: bool,
    manager: Option<String>,
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default)]
struct FakeGroup {
    display_name: String,
    external_id: Option<String>,
    members: BTreeSet<String>,
}

#[derive(Default)]
struct FakeState {
    requests: Vec<Recorded>,
    users: BTreeMap<String, FakeUser>,
    groups: BTreeMap<String, FakeGroup>,
    next_id: u64,
    /// userNames whose next POST fails with 500.
    fail_create: HashSet<String>,
    /// Answer every request with 401.
    reject: bool,
    /// Answer the next request with 429 and this Retry-After.
    throttle_once: Option<u64>,
}

struct Reply {
    status: u16,
    body: Option<Value>,
    headers: Vec<(String, String)>,
}

fn reply(status: u16, body: Option<Value>) -> Reply {
    Reply {
        status,
        body,
        headers: Vec::new(),
    }
}

fn scim_error(status: u16, detail: &str) -> Reply {
    reply(
        status,
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                    "status": status.to_string(), "detail": detail}),
        ),
    )
}

fn list(resources: Vec<Value>) -> Reply {
    reply(
        200,
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                    "totalResults": resources.len(), "Resources": resources,
                    "startIndex": 1, "itemsPerPage": 20}),
        ),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `attr eq "value"` → `(attr, value)`.
fn parse_eq_filter(filter: &str) -> Option<(String, String)> {
    let (attr, rest) = filter.split_once(" eq ")?;
    let value = rest.trim().strip_prefix('"')?.strip_suffix('"')?;
    Some((attr.trim().to_owned(), value.replace("\\\"", "\"")))
}

fn lenient_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.to_ascii_lowercase().parse().ok(),
        _ => None,
    }
}

fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(_) => v.get("value").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

impl FakeUser {
    fn resource(&self, id: &str) -> Value {
        let mut enterprise = serde_json::Map::new();
        for (k, v) in &self.other {
            if let Some(short) = k.rsplit(':').next() {
                enterprise.insert(short.to_owned(), v.clone());
            }
        }
        if let Some(m) = &self.manager {
            enterprise.insert("manager".into(), json!({"value": m}));
        }
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": id, "userName": self.user_name, "externalId": self.external_id,
            "displayName": self.display_name, "active": self.active,
            "name": {"givenName": self.given_name, "familyName": self.family_name},
            "emails": self.email.as_ref().map(|e| json!([{"type": "work", "value": e, "primary": true}])),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": enterprise,
        })
    }

    fn set(&mut self, path: &str, value: &Value) {
        let lower = path.to_ascii_lowercase();
        let text = string_of(value);
        match lower.as_str() {
            "username" => self.user_name = text.unwrap_or_default(),
            "externalid" => self.external_id = text,
            "displayname" => self.display_name = text,
            "name.givenname" => self.given_name = text,
            "name.familyname" => self.family_name = text,
            "emails[type eq \"work\"].value" => self.email = text,
            "active" => self.active = lenient_bool(value).unwrap_or(self.active),
            p if p.ends_with(":manager") || p == "manager" => self.manager = text,
            _ => {
                self.other.insert(path.to_owned(), value.clone());
            }
        }
    }
}

impl FakeState {
    fn mint(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }

    fn handle(&mut self, method: &str, path: &str, query: &str, body: Option<&Value>) -> Reply {
        if self.reject {
            return scim_error(401, "invalid token");
        }
        if let Some(secs) = self.throttle_once.take() {
            let mut r = scim_error(429, "slow down");
            r.headers.push(("Retry-After".into(), secs.to_string()));
            return r;
        }
        let segments: Vec<&str> = path.trim_start_matches("/scim/v2").split('/').collect();
        let params = query_pairs(query);
        match (method, segments.as_slice()) {
            ("GET", ["", "Users"]) => {
                let filter = params.iter().find(|(k, _)| k == "filter").map(|(_, v)| v);
                let Some((attr, value)) = filter.and_then(|f| parse_eq_filter(f)) else {
                    return scim_error(400, "bad filter");
                };
                assert_eq!(attr, "userName");
                let found = self
                    .users
                    .iter()
                    .filter(|(_, u)| u.user_name.eq_ignore_ascii_case(&value))
                    .map(|(id, u)| u.resource(id))
                    .collect();
                list(found)
            }
            ("POST", ["", "Users"]) => {
                let body = body.cloned().unwrap_or(Value::Null);
                let user_name = body["userName"].as_str().unwrap_or_default().to_owned();
                if self.fail_create.remove(&user_name) {
                    return scim_error(500, "backend unavailable");
                }
                if self
                    .users
                    .values()
                    .any(|u| u.user_name.eq_ignore_ascii_case(&user_name))
                {
                    return scim_error(409, "userName taken");
                }
                let mut user = FakeUser {
                    user_name,
                    active: lenient_bool(&body["active"]).unwrap_or(true),
                    ..FakeUser::default()
                };
                for key in ["externalId", "displayName", "title"] {
                    if let Some(v) = body.get(key) {
                        user.set(key, v);
                    }
                }
                user.given_name = body["name"]["givenName"].as_str().map(str::to_owned);
                user.family_name = body["name"]["familyName"].as_str().map(str::to_owned);
                user.email = body["emails"][0]["value"].as_str().map(str::to_owned);
                let id = self.mint("u");
                let resource = user.resource(&id);
                self.users.insert(id, user);
                reply(201, Some(resource))
            }
            ("PATCH", ["", "Users", id]) => {
                let id = percent_decode(id);
                let Some(user) = self.users.get_mut(&id) else {
                    return scim_error(404, "no such user");
                };
                let ops = body.and_then(|b| b["Operations"].as_array()).cloned();
                for op in ops.unwrap_or_default() {
                    let kind = op["op"].as_str().unwrap_or_default().to_ascii_lowercase();
                    let path = op.get("path").and_then(Value::as_str);
                    match (kind.as_str(), path) {
                        ("add" | "replace", Some(p)) => user.set(p, &op["value"]),
                        ("add" | "replace", None) => {
                            for (k, v) in op["value"].as_object().cloned().unwrap_or_default() {
                                user.set(&k, &v);
                            }
                        }
                        ("remove", Some(p)) if p.starts_with("manager") => user.manager = None,
                        _ => return scim_error(400, "unsupported op"),
                    }
                }
                reply(200, Some(user.resource(&id)))
            }
            ("DELETE", ["", "Users", id]) => {
                let id = percent_decode(id);
                if self.users.remove(&id).is_none() {
                    return scim_error(404, "no such user");
                }
                for g in self.groups.values_mut() {
                    g.members.remove(&id);
                }
                reply(204, None)
            }
            ("GET", ["", "Groups"]) => {
                assert_eq!(
                    params.first().map(|(k, v)| (k.as_str(), v.as_str())),
                    Some(("excludedAttributes", "members"))
                );
                let filter = params.iter().find(|(k, _)| k == "filter").map(|(_, v)| v);
                let Some((attr, value)) = filter.and_then(|f| parse_eq_filter(f)) else {
                    return scim_error(400, "bad filter");
                };
                assert_eq!(attr, "displayName");
                let found = self
                    .groups
                    .iter()
                    .filter(|(_, g)| g.display_name == value)
                    .map(|(id, g)| json!({"id": id, "displayName": g.display_name, "externalId": g.external_id}))
                    .collect();
                list(found)
            }
            ("POST", ["", "Groups"]) => {
                let body = body.cloned().unwrap_or(Value::Null);
                assert!(body.get("members").is_none(), "groups are created empty");
                let group = FakeGroup {
                    display_name: body["displayName"].as_str().unwrap_or_default().to_owned(),
                    external_id: body["externalId"].as_str().map(str::to_owned),
                    members: BTreeSet::new(),
                };
                let id = self.mint("g");
                let resource = json!({"id": id, "displayName": group.display_name, "externalId": group.external_id});
                self.groups.insert(id, group);
                reply(201, Some(resource))
            }
            ("PATCH", ["", "Groups", id]) => {
                let id = percent_decode(id);
                let Some(group) = self.groups.get_mut(&id) else {
                    return scim_error(404, "no such group");
                };
                let ops = body.and_then(|b| b["Operations"].as_array()).cloned();
                for op in ops.unwrap_or_default() {
                    let kind = op["op"].as_str().unwrap_or_default().to_ascii_lowercase();
                    let path = op.get("path").and_then(Value::as_str).unwrap_or("");
                    let values: Vec<String> = op["value"]
                        .as_array()
                        .map(|a| a.iter().filter_map(string_of).collect())
                        .unwrap_or_default();
                    match (kind.as_str(), path) {
                        ("add", "members") => group.members.extend(values),
                        ("remove", "members") => {
                            assert!(!values.is_empty(), "Entra never removes all members");
                            for v in values {
                                group.members.remove(&v);
                            }
                        }
                        ("remove", p) if p.starts_with("members[value eq ") => {
                            let Some((_, v)) = parse_eq_filter(
                                p.trim_start_matches("members[").trim_end_matches(']'),
                            ) else {
                                return scim_error(400, "bad member filter");
                            };
                            group.members.remove(&v);
                        }
                        ("replace", "displayName") => {
                            group.display_name = string_of(&op["value"]).unwrap_or_default();
                        }
                        ("replace", "") => {
                            if let Some(v) = op["value"]["displayName"].as_str() {
                                group.display_name = v.to_owned();
                            }
                        }
                        _ => return scim_error(400, "unsupported group op"),
                    }
                }
                reply(204, None)
            }
            ("DELETE", ["", "Groups", id]) => {
                let id = percent_decode(id);
                match self.groups.remove(&id) {
                    Some(_) => reply(204, None),
                    None => scim_error(404, "no such group"),
                }
            }
            _ => scim_error(404, "no route"),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn serve_connection(mut socket: TcpStream, state: Arc<Mutex<FakeState>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(pos) = find(&buf, b"\r\n\r\n") {
                break pos;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + 4 + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body_bytes: Vec<u8> = buf[head_end + 4..head_end + 4 + length].to_vec();
        buf.drain(..head_end + 4 + length);
        let body: Option<Value> = if body_bytes.is_empty() {
            None
        } else {
            Some(serde_json::from_slice(&body_bytes).expect("request body is JSON"))
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let reply = {
            let mut state = state.lock().expect("fake state lock");
            state.requests.push(Recorded {
                method: method.clone(),
                target: target.clone(),
                headers: headers.clone(),
                body: body.clone(),
            });
            state.handle(&method, path, query, body.as_ref())
        };
        let payload = reply
            .body
            .map(|b| serde_json::to_vec(&b).expect("encode"))
            .unwrap_or_default();
        let mut response = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n",
            reply.status,
            payload.len()
        );
        for (k, v) in reply.headers {
            response.push_str(&format!("{k}: {v}\r\n"));
        }
        response.push_str("\r\n");
        let mut bytes = response.into_bytes();
        bytes.extend_from_slice(&payload);
        if socket.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

async fn start_fake() -> (String, Arc<Mutex<FakeState>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = Arc::new(Mutex::new(FakeState::default()));
    let shared = Arc::clone(&state);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve_connection(socket, Arc::clone(&shared)));
        }
    });
    (format!("http://{addr}/scim/v2"), state)
}

fn config(base: &str, shape: PatchShape) -> SimulatorConfig {
    let mut c = SimulatorConfig::new(base, TOKEN);
    c.patch_shape = shape;
    c.concurrency = 4;
    c.members_per_patch = 3;
    c.request_timeout = Duration::from_secs(10);
    c
}

fn quiet(_: Progress) {}

/// Compares the fake's state with what the directory says a correct target
/// holds.
fn assert_converged(state: &FakeState, directory: &Directory) {
    let expected = directory.expected();
    let by_name: HashMap<&str, (&String, &FakeUser)> = state
        .users
        .iter()
        .map(|(id, u)| (u.user_name.as_str(), (id, u)))
        .collect();
    assert_eq!(state.users.len(), expected.user_count, "user count");
    for (upn, want) in &expected.users {
        let (_, got) = by_name
            .get(upn.as_str())
            .unwrap_or_else(|| panic!("{upn} missing"));
        assert_eq!(got.active, want.active, "{upn} active");
        assert_eq!(got.email.as_deref(), Some(want.mail.as_str()), "{upn} mail");
        assert_eq!(got.given_name.as_deref(), Some(want.given_name.as_str()));
        assert_eq!(got.family_name.as_deref(), Some(want.family_name.as_str()));
        assert_eq!(
            got.display_name.as_deref(),
            Some(want.display_name.as_str())
        );
        assert_eq!(got.external_id.as_deref(), Some(want.external_id.as_str()));
        let manager = got
            .manager
            .as_ref()
            .and_then(|m| state.users.get(m))
            .map(|m| m.user_name.clone());
        assert_eq!(manager, want.manager_user_name, "{upn} manager");
    }
    let active = state.users.values().filter(|u| u.active).count();
    assert_eq!(active, expected.active_user_count);
    assert_eq!(state.groups.len(), expected.group_count, "group count");
    let mut memberships = 0;
    for group in state.groups.values() {
        let want = expected
            .groups
            .get(&group.display_name)
            .unwrap_or_else(|| panic!("unexpected group {}", group.display_name));
        let got: BTreeSet<String> = group
            .members
            .iter()
            .map(|id| {
                state
                    .users
                    .get(id)
                    .map(|u| u.user_name.clone())
                    .expect("member exists")
            })
            .collect();
        assert_eq!(
            got, want.member_user_names,
            "members of {}",
            group.display_name
        );
        memberships += got.len();
    }
    assert_eq!(memberships, expected.membership_count);
}

fn take_requests(state: &Arc<Mutex<FakeState>>) -> Vec<Recorded> {
    std::mem::take(&mut state.lock().expect("lock").requests)
}

fn assert_no_failures(report: &CycleReport) {
    assert!(
        report.failures.is_empty(),
        "failures: {:#?}",
        report.failures
    );
}

fn ops_of(requests: &[Recorded]) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r.method == "PATCH")
        .filter_map(|r| r.body.as_ref()?.get("Operations")?.as_array().cloned())
        .flatten()
        .collect()
}

#[tokio::test]
async fn default_shape_initial_and_incremental_converge() {
    let (base, state) = start_fake().await;
    let mut directory = Directory::generate(60, 8, 1234);
    let mut sim = Simulator::new(config(&base, PatchShape::Default)).expect("simulator");

    // Callers must be able to spawn a cycle.
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&sim.initial_cycle(&directory, &quiet));

    let phases = Mutex::new(Vec::new());
    let record = |p: Progress| phases.lock().expect("lock").push(p);
    let report = sim.initial_cycle(&directory, &record).await.expect("cycle");
    assert_no_failures(&report);
    assert_converged(&state.lock().expect("lock"), &directory);

    let enabled = directory.users.iter().filter(|u| u.account_enabled).count() as u64;
    assert_eq!(report.by_kind["query"], enabled + 8);
    assert_eq!(report.by_kind["create"], enabled + 8);
    assert_eq!(report.requests, report.by_kind.values().sum::<u64>());
    let phases = phases.into_inner().expect("lock");
    for phase in ["users", "managers", "groups"] {
        let last = phases
            .iter()
            .rev()
            .find(|p| p.phase == phase)
            .expect("phase reported");
        assert_eq!(last.done, last.total);
    }

    let requests = take_requests(&state);
    assert_eq!(requests.len() as u64, report.requests);
    for r in &requests {
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some("Bearer s3cret-token")
        );
        if r.body.is_some() {
            assert_eq!(
                r.headers.get("content-type").map(String::as_str),
                Some("application/scim+json")
            );
        }
    }
    // Users before managers before groups; every create follows a query.
    let first_group = requests
        .iter()
        .position(|r| r.target.contains("/Groups"))
        .expect("groups");
    assert!(
        requests[..first_group]
            .iter()
            .all(|r| r.target.contains("/Users"))
    );
    let first_manager = requests
        .iter()
        .position(|r| r.method == "PATCH" && r.target.contains("/Users/"))
        .expect("manager patch");
    assert!(
        requests[first_manager..]
            .iter()
            .all(|r| r.method != "POST" || r.target.contains("/Groups"))
    );
    assert!(
        requests
            .iter()
            .any(|r| r.target.contains("filter=userName+eq+%22"))
    );
    let member_adds: Vec<Value> = ops_of(&requests)
        .into_iter()
        .filter(|op| op["path"] == "members")
        .collect();
    assert!(member_adds.iter().all(|op| op["op"] == "Add"));
    assert!(member_adds.iter().all(|op| {
        op["value"]
            .as_array()
            .is_some_and(|v| (1..=3).contains(&v.len()))
    }));
    for u in &directory.users {
        assert_eq!(sim.target_id(&u.object_id).is_some(), u.account_enabled);
    }
    for g in &directory.groups {
        assert!(sim.target_id(&g.object_id).is_some());
    }

    // Nothing changed: nothing to send.
    let report = sim
        .incremental_cycle(&directory, &quiet)
        .await
        .expect("cycle");
    assert_no_failures(&report);
    assert_eq!(report.requests, 0, "{:?}", report.by_kind);

    let summary = directory.apply_changes(40, 99);
    let report = sim
        .incremental_cycle(&directory, &quiet)
        .await
        .expect("cycle");
    assert_no_failures(&report);
    assert_converged(&state.lock().expect("lock"), &directory);
    let requests = take_requests(&state);
    let counts = summary.counts();
    let provisioned_deletes = summary
        .changes
        .iter()
        .filter(|c| matches!(c, dirsync_entra_simulator::Change::UserDeleted { .. }))
        .count() as u64;
    assert!(report.by_kind.get("delete").copied().unwrap_or(0) <= provisioned_deletes);
    let ops = ops_of(&requests);
    assert!(ops.iter().all(|op| {
        op["op"]
            .as_str()
            .is_some_and(|o| o.starts_with(char::is_uppercase))
    }));
    if counts.contains_key("user_disabled") {
        assert!(
            ops.iter()
                .any(|op| op["path"] == "active" && op["value"] == "False"),
            "{ops:#?}"
        );
    }
    assert!(
        ops.iter()
            .all(|op| op["value"] != json!(false) && op["value"] != json!(true))
    );

    let report = sim
        .incremental_cycle(&directory, &quiet)
        .await
        .expect("cycle");
    assert_eq!(report.requests, 0, "converged: {:?}", report.by_kind);
}

#[tokio::test]
async fn flag_shape_converges_over_several_batches() {
    let (base, state) = start_fake().await;
    let mut directory = Directory::generate(50, 6, 77);
    let mut sim = Simulator::new(config(&base, PatchShape::AadOptscim062020)).expect("simulator");
    assert_no_failures(&sim.initial_cycle(&directory, &quiet).await.expect("cycle"));
    take_requests(&state);
    let mut all_ops = Vec::new();
    for seed in 0..4 {
        directory.apply_changes(25, seed);
        let report = sim
            .incremental_cycle(&directory, &quiet)
            .await
            .expect("cycle");
        assert_no_failures(&report);
        assert_converged(&state.lock().expect("lock"), &directory);
        all_ops.extend(ops_of(&take_requests(&state)));
    }
    assert!(all_ops.iter().all(|op| {
        op["op"]
            .as_str()
            .is_some_and(|o| o.starts_with(char::is_lowercase))
    }));
    assert!(
        all_ops
            .iter()
            .all(|op| op["value"] != "False" && op["value"] != "True")
    );
    assert!(all_ops.iter().any(|op| {
        op["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("members[value eq "))
    }));
    assert!(
        all_ops
            .iter()
            .any(|op| op.get("path").is_none() && op["value"].is_object())
    );
    assert!(
        !all_ops
            .iter()
            .any(|op| op["op"] == "remove" && op["path"] == "members")
    );
}

#[tokio::test]
async fn failed_object_is_recorded_and_retried_next_cycle() {
    let (base, state) = start_fake().await;
    let directory = Directory::generate(20, 3, 5);
    let victim = directory
        .users
        .iter()
        .find(|u| u.account_enabled)
        .expect("enabled user")
        .clone();
    state
        .lock()
        .expect("lock")
        .fail_create
        .insert(victim.user_principal_name.clone());
    let mut sim = Simulator::new(config(&base, PatchShape::Default)).expect("simulator");
    let report = sim.initial_cycle(&directory, &quiet).await.expect("cycle");
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    let failure = &report.failures[0];
    assert!(failure.contains(&victim.user_principal_name), "{failure}");
    assert!(failure.contains("POST /scim/v2/Users"), "{failure}");
    assert!(
        failure.contains("500") && failure.contains("backend unavailable"),
        "{failure}"
    );
    assert!(sim.target_id(&victim.object_id).is_none());

    let report = sim
        .incremental_cycle(&directory, &quiet)
        .await
        .expect("cycle");
    assert_no_failures(&report);
    assert_eq!(report.by_kind.get("create"), Some(&1));
    assert!(sim.target_id(&victim.object_id).is_some());
    assert_converged(&state.lock().expect("lock"), &directory);
}

#[tokio::test]
async fn existing_user_is_adopted_not_created() {
    let (base, state) = start_fake().await;
    let directory = Directory::generate(5, 1, 9);
    let user = directory.users[0].clone();
    state.lock().expect("lock").users.insert(
        "pre-existing".into(),
        FakeUser {
            user_name: user.user_principal_name.to_uppercase(),
            display_name: Some("Old Name".into()),
            active: false,
            ..FakeUser::default()
        },
    );
    let mut sim = Simulator::new(config(&base, PatchShape::Default)).expect("simulator");
    let report = sim.initial_cycle(&directory, &quiet).await.expect("cycle");
    assert_no_failures(&report);
    assert_eq!(sim.target_id(&user.object_id), Some("pre-existing"));
    let requests = take_requests(&state);
    let adopted: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.target == "/scim/v2/Users/pre-existing")
        .collect();
    let first = adopted.first().expect("adoption PATCH");
    let ops = first.body.as_ref().expect("body")["Operations"].clone();
    assert!(
        ops.as_array()
            .expect("ops")
            .contains(&json!({"op": "Replace", "path": "active", "value": "True"}))
    );
    assert!(
        ops.as_array()
            .expect("ops")
            .contains(&json!({"op": "Add", "path": "name.givenName", "value": user.given_name}))
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.method == "POST" && r.target.ends_with("/Users"))
            .count(),
        directory.users.iter().filter(|u| u.account_enabled).count() - 1
    );
}

#[tokio::test]
async fn rejected_token_stops_the_cycle() {
    let (base, state) = start_fake().await;
    state.lock().expect("lock").reject = true;
    let directory = Directory::generate(100, 5, 1);
    let mut sim = Simulator::new(config(&base, PatchShape::Default)).expect("simulator");
    match sim.initial_cycle(&directory, &quiet).await {
        Err(SimulatorError::CredentialsRejected { status, detail }) => {
            assert_eq!(status, 401);
            assert!(detail.contains("invalid token"));
        }
        other => panic!("expected a credentials error, got {other:?}"),
    }
    let sent = take_requests(&state).len();
    assert!(sent <= 4, "stopped early, sent {sent}");
}

#[tokio::test]
async fn pacing_and_retry_after_slow_requests_down() {
    let (base, state) = start_fake().await;
    let directory = Directory::generate(6, 0, 3);
    let mut cfg = config(&base, PatchShape::Default);
    cfg.requests_per_second = Some(20.0);
    let mut sim = Simulator::new(cfg).expect("simulator");
    let started = Instant::now();
    let report = sim.initial_cycle(&directory, &quiet).await.expect("cycle");
    assert_no_failures(&report);
    let floor = Duration::from_secs_f64((report.requests - 1) as f64 / 20.0);
    assert!(
        started.elapsed() >= floor,
        "{:?} < {floor:?}",
        started.elapsed()
    );

    let (base, state2) = start_fake().await;
    drop(state);
    state2.lock().expect("lock").throttle_once = Some(1);
    let mut sim = Simulator::new(config(&base, PatchShape::Default)).expect("simulator");
    let started = Instant::now();
    let report = sim.initial_cycle(&directory, &quiet).await.expect("cycle");
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    assert!(report.failures[0].contains("429"));
    assert!(started.elapsed() >= Duration::from_millis(900));
    // The throttled user is picked up by the next cycle.
    let report = sim
        .incremental_cycle(&directory, &quiet)
        .await
        .expect("cycle");
    assert_no_failures(&report);
    assert_converged(&state2.lock().expect("lock"), &directory);
}

#[tokio::test]
async fn unreachable_server_records_failures_without_aborting() {
    // Bind then drop to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let directory = Directory::generate(4, 1, 1);
    let mut cfg = config(
        &format!("http://127.0.0.1:{port}/scim/v2"),
        PatchShape::Default,
    );
    cfg.request_timeout = Duration::from_secs(2);
    let mut sim = Simulator::new(cfg).expect("simulator");
    let report = sim.initial_cycle(&directory, &quiet).await.expect("cycle");
    let enabled = directory.users.iter().filter(|u| u.account_enabled).count();
    assert_eq!(report.failures.len(), enabled + 1, "{:#?}", report.failures);
    assert!(
        report
            .failures
            .iter()
            .all(|f| f.contains("transport error"))
    );
}

#[test]
fn configuration_is_validated() {
    let ok = SimulatorConfig::new("http://127.0.0.1:1/scim/v2/?aadOptscim062020", "t");
    assert!(Simulator::new(ok.clone()).is_ok());
    assert!(!format!("{ok:?}").contains("\"t\""), "token redacted");
    let mut bad = Vec::new();
    let mut c = ok.clone();
    c.base_url = "not a url".into();
    bad.push(c);
    let mut c = ok.clone();
    c.base_url = "ftp://x/scim".into();
    bad.push(c);
    let mut c = ok.clone();
    c.concurrency = 0;
    bad.push(c);
    let mut c = ok.clone();
    c.members_per_patch = 0;
    bad.push(c);
    let mut c = ok.clone();
    c.requests_per_second = Some(f64::NAN);
    bad.push(c);
    let mut c = ok.clone();
    c.requests_per_second = Some(-1.0);
    bad.push(c);
    let mut c = ok.clone();
    c.request_timeout = Duration::ZERO;
    bad.push(c);
    let mut c = ok.clone();
    c.token = "a\nb".into();
    bad.push(c);
    let mut c = ok;
    c.token = String::new();
    bad.push(c);
    for c in bad {
        assert!(
            Simulator::new(c.clone()).is_err(),
            "{c:?} should be rejected"
        );
    }
}
