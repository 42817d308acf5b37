//! The gateway against hostile input. A seeded generator sends at least 10,000 requests, 16 at
//! a time: malformed and deeply nested JSON, huge values, odd unicode and invalid UTF-8,
//! invalid filters and PATCH paths, wrong content types, huge and numerous headers, absurd
//! paging, unknown methods, every route with and without ids, hostile ids and concurrent
//! duplicate creates. No answer may be a 5xx, every refusal must be a SCIM error body with the
//! `scimType` RFC 7644 §3.12 gives the case, and the gateway must keep serving: a second tenant's
//! normal traffic succeeds throughout, and the gateway's one HTTP/2 connection to the
//! provisioner is never broken. Slow clients are disconnected or answered 408, and the paths
//! Entra spells oddly reach the same handlers.
//!
//! The seed is fixed so that CI is repeatable; `DIRSYNC_HOSTILE_SEED=<n>` replays another one
//! and `DIRSYNC_HOSTILE_SEED=random` explores. Every failure message names the seed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dirsync_tests::http::{RawRequest, Reply, ScimClient, encode_query_value};
use dirsync_tests::{Running, Stack, ephemeral_listener, spawn, start_grpc, test_config};
use hyper::Method;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Requests the storm sends at least.
const STORM_REQUESTS: usize = 10_000;
/// Requests in flight at once.
const CONCURRENCY: usize = 16;
/// Default seed; see the module documentation.
const DEFAULT_SEED: u64 = 0x5C1A_4057_11E5;
/// The `scimType`s RFC 7644 §3.12 (table 9) gives a 400.
const BAD_REQUEST_TYPES: &[&str] = &[
    "invalidFilter",
    "tooMany",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
];

fn seed() -> u64 {
    match std::env::var("DIRSYNC_HOSTILE_SEED") {
        Ok(text) if text.eq_ignore_ascii_case("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(DEFAULT_SEED, |d| d.as_nanos() as u64),
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("DIRSYNC_HOSTILE_SEED={text:?} is not a number")),
        Err(_) => DEFAULT_SEED,
    }
}

// ---------------------------------------------------------------------------------------------
// A stack whose gateway reaches the provisioner through a counting TCP proxy, so that a broken
// gateway→provisioner connection (which the gateway would silently re-open) is seen.

struct ProxiedStack {
    stack: Stack,
    /// Connections the gateway opened to the provisioner.
    upstream_connections: Arc<AtomicUsize>,
    proxy: tokio::task::JoinHandle<()>,
}

async fn counting_proxy(
    target: SocketAddr,
) -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = ephemeral_listener().await;
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, count, task)
}

impl ProxiedStack {
    async fn start(adjust: impl FnOnce(&mut dirsync_runtime::DirsyncConfig)) -> Self {
        let db = dirsync_store::testing::TestDatabase::new();
        let mut config = test_config(&db);
        adjust(&mut config);
        let grpc = start_grpc(&config).await;
        let (proxy_addr, upstream_connections, proxy) = counting_proxy(grpc.addr).await;
        config.scim.provisioner_url = format!("http://{proxy_addr}");
        let listener = ephemeral_listener().await;
        config.scim.listen = listener.local_addr().unwrap();
        let scim_config = config.scim.clone();
        let scim: Running = spawn(listener, move |listener, stopped| async move {
            dirsync_scim_gateway::serve(&scim_config, listener, async move {
                let _ = stopped.await;
            })
            .await
        });
        Self {
            stack: Stack {
                db,
                config,
                grpc,
                scim,
            },
            upstream_connections,
            proxy,
        }
    }

    async fn stop(self) {
        self.stack.stop().await;
        self.proxy.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// What a reply must look like.

/// What one generated request must get, beyond the rules every reply obeys (no 5xx; a 4xx is a
/// SCIM error body with the `scimType` RFC 7644 §3.12 gives its status).
#[derive(Debug, Clone)]
enum Expect {
    /// Nothing more.
    Survives,
    /// This status; for a 400 this `scimType`; the detail naming `names` when given.
    Status(u16, Option<&'static str>, Option<&'static str>),
    /// One of these statuses.
    OneOf(&'static [u16]),
    /// 200 with a ListResponse of at most `count` resources (when given).
    List(Option<u64>),
    /// This status from the HTTP layer, before any SCIM handler: no SCIM body.
    BareStatus(u16),
}

/// Which client sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    /// The storm tenant's token, under `/scim/v2`.
    Tenant,
    /// No token.
    Anonymous,
    /// A token nobody issued.
    WrongToken,
    /// The storm tenant's token, paths from the server root.
    Root,
    /// A tenant of its own for resources nested as deep as the parser goes: a list holding one
    /// is deeper than any JSON parser (the test's included) reads.
    Deep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Category {
    MalformedJson,
    DeepJson,
    HugeValues,
    OddUnicode,
    InvalidFilter,
    InvalidPatchPath,
    ContentType,
    Headers,
    Paging,
    UnknownMethod,
    Routes,
    HostileIds,
    Duplicates,
}

const CATEGORIES: [Category; 13] = [
    Category::MalformedJson,
    Category::DeepJson,
    Category::HugeValues,
    Category::OddUnicode,
    Category::InvalidFilter,
    Category::InvalidPatchPath,
    Category::ContentType,
    Category::Headers,
    Category::Paging,
    Category::UnknownMethod,
    Category::Routes,
    Category::HostileIds,
    Category::Duplicates,
];

/// Every variant the generator draws, by category: the test asserts each was drawn.
const VARIANTS: &[(Category, &[&str])] = &[
    (
        Category::MalformedJson,
        &[
            "curated",
            "not_an_object",
            "empty",
            "truncated",
            "mutated",
            "random_bytes",
        ],
    ),
    (
        Category::DeepJson,
        &[
            "arrays_over_limit",
            "objects_over_limit",
            "arrays_400k_deep",
            "attribute_over_limit",
            "create_at_limit",
            "patch_at_limit",
            "group_at_limit",
        ],
    ),
    (
        Category::HugeValues,
        &[
            "username_30k",
            "username_300k",
            "display_name",
            "group_display_name",
            "emails_3000",
            "patch_username_30k",
            "patch_group_name_30k",
            "unknown_attribute_50k",
            "body_over_limit",
            "filter_20k",
            "attributes_list_20k",
            "id_8k",
        ],
    ),
    (
        Category::OddUnicode,
        &[
            "odd_user_name",
            "nul_in_user_name",
            "nul_in_display_name",
            "nul_in_external_id",
            "nul_in_group_name",
            "lone_surrogate_escape",
            "invalid_utf8_body",
            "invalid_utf8_filter",
            "invalid_utf8_query",
            "odd_patch_values",
            "emoji_at_length_limit",
            "nul_in_filter",
            "nul_in_patch",
        ],
    ),
    (
        Category::InvalidFilter,
        &["curated", "nested_too_deep", "too_many_terms", "truncated"],
    ),
    (
        Category::InvalidPatchPath,
        &["user_path", "after_valid_ops", "pathless_key", "group_path"],
    ),
    (
        Category::ContentType,
        &["wrong", "json_spellings", "odd_parameters"],
    ),
    (
        Category::Headers,
        &[
            "one_header_under_limit",
            "one_header_over_limit",
            "headers_64k_total",
            "many_small_headers",
            "many_headers_over_limit",
            "too_many_headers",
            "cookie_24k",
            "non_ascii_value",
            "odd_if_match",
        ],
    ),
    (Category::Paging, &["repeated", "numeric", "not_numeric"]),
    (Category::UnknownMethod, &["known_not_allowed", "unknown"]),
    (
        Category::Routes,
        &["anonymous", "wrong_token", "outside_scim_prefix", "tenant"],
    ),
    (Category::HostileIds, &["raw_path", "encoded_id"]),
    (
        Category::Duplicates,
        &[
            "same_user_name",
            "user_name_case_variants",
            "same_group_name",
            "same_30k_user_name",
        ],
    ),
];

#[derive(Debug, Clone)]
struct Case {
    category: Category,
    variant: &'static str,
    sender: Sender,
    request: RawRequest,
    expect: Expect,
    /// Cases with the same key are concurrent creates of one name: exactly one may succeed.
    duplicate_of: Option<usize>,
}

fn short(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// The rules every reply obeys: never a 5xx; a 4xx is a SCIM error body whose `status` is the
/// HTTP status as a string and whose `scimType` is one RFC 7644 §3.12 defines for that status.
fn check_reply(method: &Method, reply: &Reply) -> Result<(), String> {
    let status = reply.status.as_u16();
    if status >= 500 {
        return Err(format!("answered {status}"));
    }
    if !(400..500).contains(&status) || *method == Method::HEAD {
        return Ok(());
    }
    let body = &reply.body;
    if !body.is_object() {
        return Err(format!("{status} refusal is not a JSON object"));
    }
    if reply.header("content-type") != Some("application/scim+json") {
        return Err(format!(
            "{status} refusal has content type {:?}",
            reply.header("content-type")
        ));
    }
    let schemas_ok = body["schemas"]
        .as_array()
        .is_some_and(|schemas| schemas.iter().any(|s| s == ERROR_URN));
    if !schemas_ok {
        return Err(format!("{status} refusal lacks the Error schema"));
    }
    if body["status"] != Value::String(status.to_string()) {
        return Err(format!(
            "{status} refusal carries status {} (must be the string {status:?})",
            body["status"]
        ));
    }
    if body.get("detail").is_some_and(|detail| !detail.is_string()) {
        return Err("detail is not a string".to_owned());
    }
    let scim_type = body.get("scimType");
    match (status, scim_type) {
        (400, Some(Value::String(t))) if BAD_REQUEST_TYPES.contains(&t.as_str()) => Ok(()),
        (400, other) => Err(format!(
            "400 refusal has scimType {other:?}; RFC 7644 §3.12 gives every 400 case one of {BAD_REQUEST_TYPES:?}"
        )),
        (409, None) => Ok(()),
        (409, Some(t)) if t == "uniqueness" => Ok(()),
        (403, Some(t)) if t == "sensitive" => Ok(()),
        (_, None) => Ok(()),
        (_, Some(t)) => Err(format!(
            "{status} refusal has scimType {t}, which RFC 7644 §3.12 does not give that status"
        )),
    }
}

fn check_expectation(expect: &Expect, reply: &Reply) -> Result<(), String> {
    let status = reply.status.as_u16();
    match expect {
        Expect::Survives => Ok(()),
        Expect::BareStatus(want) if status == *want => Ok(()),
        Expect::BareStatus(want) => Err(format!("expected a bare {want}, got {status}")),
        Expect::OneOf(statuses) if statuses.contains(&status) => Ok(()),
        Expect::OneOf(statuses) => Err(format!("expected one of {statuses:?}, got {status}")),
        Expect::Status(want, scim_type, names) => {
            if status != *want {
                return Err(format!("expected {want} {scim_type:?}, got {status}"));
            }
            if let Some(scim_type) = scim_type
                && reply.body["scimType"] != *scim_type
            {
                return Err(format!(
                    "expected scimType {scim_type}, got {}",
                    reply.body["scimType"]
                ));
            }
            if let Some(name) = names
                && !reply.body["detail"]
                    .as_str()
                    .is_some_and(|detail| detail.contains(name))
            {
                return Err(format!("the detail does not name {name}"));
            }
            Ok(())
        }
        Expect::List(count) => {
            if status != 200 {
                return Err(format!("expected a 200 ListResponse, got {status}"));
            }
            let body = &reply.body;
            let is_list = body["schemas"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s == LIST_URN));
            let resources = body["Resources"].as_array().map_or(usize::MAX, Vec::len);
            if !is_list || resources == usize::MAX {
                return Err("not a ListResponse".to_owned());
            }
            if body["itemsPerPage"].as_u64() != Some(resources as u64) {
                return Err("itemsPerPage differs from the resources returned".to_owned());
            }
            if body["startIndex"].as_u64().is_none_or(|start| start < 1) {
                return Err(format!("startIndex {} is not ≥ 1", body["startIndex"]));
            }
            if let Some(count) = count
                && resources as u64 > *count
            {
                return Err(format!("{resources} resources for count={count}"));
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The generator.

/// Ids the generator aims at. Stable ones are never deleted or renamed (only refused requests
/// target them); victims are fair game for whatever the route sweep does.
#[derive(Debug, Clone)]
struct Targets {
    users: Vec<String>,
    groups: Vec<String>,
    victim_users: Vec<String>,
    victim_groups: Vec<String>,
    /// A user of the deep tenant.
    deep_user: String,
}

struct Generator {
    rng: StdRng,
    targets: Targets,
    serial: usize,
    duplicates: usize,
    /// The deepest JSON serde_json (and so the gateway) parses.
    max_depth: usize,
}

fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn nested_objects(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

/// The deepest nesting serde_json accepts.
fn max_json_depth() -> usize {
    (1..1000)
        .take_while(|depth| serde_json::from_str::<Value>(&nested_arrays(*depth)).is_ok())
        .last()
        .unwrap()
}

fn patch(ops: Value) -> Vec<u8> {
    json!({"schemas": [PATCH_URN], "Operations": ops})
        .to_string()
        .into_bytes()
}

fn filter_query(filter: &str) -> String {
    format!("filter={}", encode_query_value(filter))
}

/// Bodies that are not JSON at all (checked when the generator runs).
const MALFORMED: &[&str] = &[
    "{",
    "}",
    "{\"userName\":}",
    "{\"userName\" \"x\"}",
    "{'userName': 'x'}",
    "{userName: \"x\"}",
    "{\"userName\": \"x\",}",
    "{\"userName\": \"x\"} trailing",
    "{\"userName\": \"x\"}{\"userName\": \"y\"}",
    "{\"a\": NaN}",
    "{\"a\": Infinity}",
    "{\"a\": 1e400}",
    "{\"a\": 01}",
    "{\"a\": tru}",
    "{\"a\": \"\\x41\"}",
    "{\"a\": \"\\u12\"}",
    "{\"a\": \"tab\there\"}",
    "{\"userName\": \"x\" // comment\n}",
    "/* comment */ {\"userName\": \"x\"}",
    "[1, 2",
    "\"unterminated",
    "nul",
    "<xml/>",
    "userName=x&active=true",
    "\u{feff}{\"userName\": \"bom\"}",
];

/// Bodies that are JSON but not an object: refused as a syntax error.
const NOT_OBJECTS: &[&str] = &["[]", "[{}]", "\"x\"", "42", "null", "true", " "];

/// Filters no parser may accept.
const INVALID_FILTERS: &[&str] = &[
    "userName eq",
    "userName",
    "eq \"x\"",
    "userName xx \"x\"",
    "userName eq \"unterminated",
    "(userName eq \"x\"",
    "userName eq \"x\")",
    "userName eq \"x\" and",
    "and userName eq \"x\"",
    "userName eq \"x\" or or userName eq \"y\"",
    "emails[type eq \"work\"",
    "emails[type eq \"work\"]]",
    "emails[]",
    "not userName eq \"x\"",
    "userName eq \"x\" userName eq \"y\"",
    "()",
    "[",
    "\"x\" eq userName",
    "userName pr \"x\"",
    "userName gt",
];

/// PATCH paths no parser may accept.
const INVALID_PATHS: &[&str] = &[
    "emails[type eq \"work\"",
    "emails[type eq \"work\"]]",
    "emails[type eq]",
    "emails[].value",
    "]",
    "[",
    "name.givenName.extra",
    "emails[type eq \"work\"].value.extra",
    "emails[type eq \"work\"].value[type eq \"x\"]",
    "userName eq \"x\"",
    "a b",
    "\"quoted\"",
    "(name)",
    "members[value eq ",
];

const ODD_NAMES: &[(&str, &str)] = &[
    ("rtl_mark", "\u{200f}rtl\u{200f}"),
    ("rtl_override", "\u{202e}evil\u{202c}"),
    ("combining", "e\u{301}\u{302}\u{303}\u{304}\u{305}"),
    (
        "zalgo",
        "z\u{336}\u{337}\u{338}a\u{334}\u{335}l\u{33a}g\u{33b}o",
    ),
    ("emoji", "\u{1f469}\u{200d}\u{1f4bb}\u{1f600}"),
    ("zero_width", "a\u{200b}b\u{200c}c\u{200d}d\u{2060}"),
    ("bom_inside", "a\u{feff}b"),
    ("cjk", "\u{7528}\u{6237}\u{540d}"),
    ("turkish_i", "\u{130}\u{130}\u{130}"),
    ("sharp_s", "stra\u{df}e"),
    ("private_use", "\u{e000}\u{f8ff}"),
    ("noncharacter", "\u{fffe}\u{ffff}"),
    ("astral", "\u{10ffff}\u{1d54f}"),
    ("control", "\u{1}\u{7}\u{1b}[31m"),
    ("newlines", "line\nbreak\r\n"),
];

/// Ids that look like paths, SQL or worse, percent-encoded as a client would send them.
const HOSTILE_IDS: &[&str] = &[
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "..",
    ".",
    "%00",
    "abc%00def",
    "'%20or%201=1--",
    "1;DROP%20TABLE%20users",
    "%22%20or%20%22%22=%22",
    "%FF%FE",
    "%C0%AF",
    "%ED%A0%80",
    "%25",
    "*",
    "%20",
    "%E2%80%AE",
    "null",
    "-1",
    "%24%7Bjndi:ldap:%2F%2Fx%7D",
    "%3Cscript%3E",
    "%5C..%5C",
    "%0D%0AX-Injected:%201",
];

const RAW_PATH_TRICKS: &[&str] = &[
    "/Users/../Groups",
    "/Users/./x",
    "/Users/a/b",
    "/Users/%2F",
    "/Groups/../../etc/passwd",
    "/./Users",
    "/Users;x=1",
];

const UNKNOWN_METHODS: &[&str] = &[
    "FOO", "PROPFIND", "PURGE", "LINK", "OPTIONS", "TRACE", "get", "Patch", "MKCOL",
];

/// Every route, with and without ids, and paths beside them.
const ROUTES: &[&str] = &[
    "/Users",
    "/Users/{victim_user}",
    "/Users/{missing}",
    "/Groups",
    "/Groups/{victim_group}",
    "/Groups/{missing}",
    "/Schemas",
    "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    "/Schemas/{missing}",
    "/ResourceTypes",
    "/ResourceTypes/User",
    "/ResourceTypes/{missing}",
    "/ServiceProviderConfig",
    "/ServiceProviderConfig/{missing}",
    "/Bulk",
    "/Me",
    "/.search",
    "/Users/.search",
    "/Users/{user}/extra",
    "",
];

const ROOT_PATHS: &[&str] = &[
    "/",
    "/scim",
    "/scim/v1/Users",
    "/scim/v2x/Users",
    "/healthz",
    "/healthz/x",
    "/favicon.ico",
    "/SCIM/V2/Users",
];

impl Generator {
    fn new(seed: u64, targets: Targets) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            targets,
            serial: 0,
            duplicates: 0,
            max_depth: max_json_depth(),
        }
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())].clone()
    }

    fn unique(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!(
            "{prefix}-{}-{}@hostile.example",
            self.serial,
            self.rng.random_range(0..1_000_000u32)
        )
    }

    fn user(&mut self) -> String {
        let users = self.targets.users.clone();
        self.pick(&users)
    }

    fn group(&mut self) -> String {
        let groups = self.targets.groups.clone();
        self.pick(&groups)
    }

    fn user_body(&mut self) -> Value {
        let name = self.unique("u");
        json!({"schemas": [USER_URN], "userName": name, "displayName": "Hostile",
               "emails": [{"value": name, "type": "work", "primary": true}], "active": true})
    }

    fn case(
        category: Category,
        variant: &'static str,
        request: RawRequest,
        expect: Expect,
    ) -> Case {
        Case {
            category,
            variant,
            sender: Sender::Tenant,
            request,
            expect,
            duplicate_of: None,
        }
    }

    /// The cases of one draw: one request, or a burst of concurrent duplicates.
    fn draw(&mut self, category: Category) -> Vec<Case> {
        match category {
            Category::MalformedJson => vec![self.malformed_json()],
            Category::DeepJson => vec![self.deep_json()],
            Category::HugeValues => vec![self.huge_values()],
            Category::OddUnicode => vec![self.odd_unicode()],
            Category::InvalidFilter => vec![self.invalid_filter()],
            Category::InvalidPatchPath => vec![self.invalid_patch_path()],
            Category::ContentType => vec![self.content_type()],
            Category::Headers => vec![self.headers()],
            Category::Paging => vec![self.paging()],
            Category::UnknownMethod => vec![self.unknown_method()],
            Category::Routes => vec![self.routes()],
            Category::HostileIds => vec![self.hostile_id()],
            Category::Duplicates => self.duplicates(),
        }
    }

    /// A write endpoint that reads a JSON body, with a body shaped for it.
    fn body_target(&mut self) -> (Method, String) {
        match self.rng.random_range(0..6) {
            0 => (Method::POST, "/Users".to_owned()),
            1 => (Method::PUT, format!("/Users/{}", self.user())),
            2 => (Method::PATCH, format!("/Users/{}", self.user())),
            3 => (Method::POST, "/Groups".to_owned()),
            4 => (Method::PUT, format!("/Groups/{}", self.group())),
            _ => (Method::PATCH, format!("/Groups/{}", self.group())),
        }
    }

    fn malformed_json(&mut self) -> Case {
        let (method, path) = self.body_target();
        let syntax = Expect::Status(400, Some("invalidSyntax"), None);
        let (variant, body): (&'static str, Vec<u8>) = match self.rng.random_range(0..6) {
            0 => ("curated", self.pick(MALFORMED).as_bytes().to_vec()),
            1 => ("not_an_object", self.pick(NOT_OBJECTS).as_bytes().to_vec()),
            2 => ("empty", Vec::new()),
            3 => {
                let whole = self.user_body().to_string();
                let cut = self.rng.random_range(1..whole.len());
                ("truncated", whole.as_bytes()[..cut].to_vec())
            }
            4 => {
                // A valid body with random bytes flipped; kept only if it no longer parses.
                let mut bytes = self.user_body().to_string().into_bytes();
                for _ in 0..self.rng.random_range(1..4) {
                    let at = self.rng.random_range(0..bytes.len());
                    bytes[at] = self.pick(b"{}[]\",:\\ x\x00\x7f");
                }
                if serde_json::from_slice::<Value>(&bytes).is_ok() {
                    ("mutated", b"{\"userName\": ".to_vec())
                } else {
                    ("mutated", bytes)
                }
            }
            _ => {
                let len = self.rng.random_range(1..512);
                let bytes: Vec<u8> = (0..len).map(|_| self.rng.random_range(0..=255u8)).collect();
                if serde_json::from_slice::<Value>(&bytes).is_ok() {
                    ("random_bytes", b"\xff".to_vec())
                } else {
                    ("random_bytes", bytes)
                }
            }
        };
        Self::case(
            Category::MalformedJson,
            variant,
            RawRequest::new(method, path).scim_body(body),
            syntax,
        )
    }

    fn deep_json(&mut self) -> Case {
        let mut case = self.deep_json_case();
        case.sender = Sender::Deep;
        case
    }

    fn deep_json_case(&mut self) -> Case {
        let max = self.max_depth;
        let syntax = Expect::Status(400, Some("invalidSyntax"), None);
        match self.rng.random_range(0..7) {
            0 => {
                let depth = self.rng.random_range(max + 1..max + 2000);
                let (method, _) = self.body_target();
                let path = match method {
                    Method::POST => "/Groups".to_owned(),
                    _ => format!("/Users/{}", self.targets.deep_user),
                };
                Self::case(
                    Category::DeepJson,
                    "arrays_over_limit",
                    RawRequest::new(method, path).scim_body(nested_arrays(depth)),
                    syntax,
                )
            }
            1 => {
                let depth = self.rng.random_range(max + 1..max + 2000);
                let (method, _) = self.body_target();
                let path = match method {
                    Method::POST => "/Users".to_owned(),
                    _ => format!("/Users/{}", self.targets.deep_user),
                };
                Self::case(
                    Category::DeepJson,
                    "objects_over_limit",
                    RawRequest::new(method, path).scim_body(nested_objects(depth)),
                    syntax,
                )
            }
            2 => {
                // Far deeper than any limit, still under the body size limit.
                let method = self.pick(&[Method::POST, Method::PUT, Method::PATCH]);
                let path = match method {
                    Method::POST => "/Users".to_owned(),
                    _ => format!("/Users/{}", self.targets.deep_user),
                };
                Self::case(
                    Category::DeepJson,
                    "arrays_400k_deep",
                    RawRequest::new(method, path).scim_body(nested_arrays(400_000)),
                    syntax,
                )
            }
            3 => {
                let name = self.unique("deep-over");
                let body = format!(
                    "{{\"userName\": \"{name}\", \"x\": {}}}",
                    nested_arrays(max)
                );
                Self::case(
                    Category::DeepJson,
                    "attribute_over_limit",
                    RawRequest::new(Method::POST, "/Users").scim_body(body),
                    syntax,
                )
            }
            4 => {
                // The whole body exactly as deep as the parser goes: an unknown attribute,
                // stored as sent.
                let name = self.unique("deep-under");
                let body = format!(
                    "{{\"userName\": \"{name}\", \"x\": {}}}",
                    nested_arrays(max - 1)
                );
                Self::case(
                    Category::DeepJson,
                    "create_at_limit",
                    RawRequest::new(Method::POST, "/Users").scim_body(body),
                    Expect::Status(201, None, None),
                )
            }
            5 => {
                let user = self.targets.deep_user.clone();
                let path = self.pick(&["x", "urn:example:params:scim:2.0:User:deep", "name.deep"]);
                let body = format!(
                    "{{\"Operations\": [{{\"op\": \"add\", \"path\": \"{path}\", \"value\": {}}}]}}",
                    nested_arrays(max - 3)
                );
                Self::case(
                    Category::DeepJson,
                    "patch_at_limit",
                    RawRequest::new(Method::PATCH, format!("/Users/{user}")).scim_body(body),
                    Expect::Survives,
                )
            }
            _ => {
                let name = self.unique("deep-group");
                let body = format!(
                    "{{\"displayName\": \"{name}\", \"x\": {}}}",
                    nested_objects(max - 1)
                );
                Self::case(
                    Category::DeepJson,
                    "group_at_limit",
                    RawRequest::new(Method::POST, "/Groups").scim_body(body),
                    Expect::Survives,
                )
            }
        }
    }

    fn huge_values(&mut self) -> Case {
        let too_long = |name| Expect::Status(400, Some("invalidValue"), Some(name));
        let (variant, request, expect) = match self.rng.random_range(0..12) {
            0 => (
                "username_30k",
                RawRequest::new(Method::POST, "/Users")
                    .scim_body(json!({"userName": "a".repeat(30 * 1024)}).to_string()),
                too_long("userName"),
            ),
            1 => (
                "username_300k",
                RawRequest::new(Method::POST, "/Users")
                    .scim_body(json!({"userName": "b".repeat(300 * 1024)}).to_string()),
                too_long("userName"),
            ),
            2 => {
                let name = self.unique("long-display");
                let len = self.rng.random_range(257..100_000);
                (
                    "display_name",
                    RawRequest::new(Method::POST, "/Users").scim_body(
                        json!({"userName": name, "displayName": "d".repeat(len)}).to_string(),
                    ),
                    too_long("displayName"),
                )
            }
            3 => {
                let len = self.rng.random_range(257..100_000);
                (
                    "group_display_name",
                    RawRequest::new(Method::POST, "/Groups")
                        .scim_body(json!({"displayName": "g".repeat(len)}).to_string()),
                    too_long("displayName"),
                )
            }
            4 => {
                let name = self.unique("emails");
                let emails: Vec<Value> = (0..3000)
                    .map(|_| json!({"value": "same@hostile.example", "type": "work"}))
                    .collect();
                (
                    "emails_3000",
                    RawRequest::new(Method::POST, "/Users")
                        .scim_body(json!({"userName": name, "emails": emails}).to_string()),
                    too_long("emails"),
                )
            }
            5 => {
                let user = self.user();
                (
                    "patch_username_30k",
                    RawRequest::new(Method::PATCH, format!("/Users/{user}")).scim_body(patch(
                        json!([{"op": "replace", "path": "userName", "value": "c".repeat(30 * 1024)}]),
                    )),
                    too_long("userName"),
                )
            }
            6 => {
                let group = self.group();
                (
                    "patch_group_name_30k",
                    RawRequest::new(Method::PATCH, format!("/Groups/{group}")).scim_body(patch(
                        json!([{"op": "replace", "path": "displayName", "value": "g".repeat(30 * 1024)}]),
                    )),
                    too_long("displayName"),
                )
            }
            7 => {
                let name = self.unique("unknown-attr");
                (
                    "unknown_attribute_50k",
                    RawRequest::new(Method::POST, "/Users").scim_body(
                        json!({"userName": name, "hostileNote": "n".repeat(50 * 1024)}).to_string(),
                    ),
                    too_long("hostileNote"),
                )
            }
            8 => (
                "body_over_limit",
                // One byte over the 1 MiB body limit.
                RawRequest::new(Method::POST, "/Users").scim_body(format!(
                    "{{\"userName\": \"{}\"}}",
                    "z".repeat(1024 * 1024 + 1 - 16)
                )),
                Expect::Status(413, None, None),
            ),
            9 => (
                "filter_20k",
                RawRequest::new(
                    Method::GET,
                    format!(
                        "/Users?{}",
                        filter_query(&format!("userName eq \"{}\"", "f".repeat(20_000)))
                    ),
                ),
                Expect::Status(400, Some("invalidFilter"), None),
            ),
            10 => (
                "attributes_list_20k",
                RawRequest::new(
                    Method::GET,
                    format!("/Users?count=2&attributes={}", "userName,".repeat(2_000)),
                ),
                Expect::List(Some(2)),
            ),
            _ => (
                "id_8k",
                RawRequest::new(Method::GET, format!("/Users/{}", "i".repeat(8 * 1024))),
                Expect::Status(404, None, None),
            ),
        };
        Self::case(Category::HugeValues, variant, request, expect)
    }

    fn odd_unicode(&mut self) -> Case {
        let (variant, request, expect) = match self.rng.random_range(0..11) {
            0 => {
                let (_, odd) = self.pick(ODD_NAMES);
                let name = format!("{odd}{}", self.unique("odd"));
                (
                    "odd_user_name",
                    RawRequest::new(Method::POST, "/Users").scim_body(
                        json!({"userName": name, "displayName": odd, "name": {"givenName": odd}})
                            .to_string(),
                    ),
                    Expect::Status(201, None, None),
                )
            }
            1 => {
                // A JSON-escaped NUL inside values: no store keeps one (PostgreSQL's text
                // cannot), so every backend refuses it the same way, naming the attribute.
                let name = format!("nul\u{0}{}", self.unique("nul"));
                (
                    "nul_in_user_name",
                    RawRequest::new(Method::POST, "/Users")
                        .scim_body(json!({"userName": name}).to_string()),
                    Expect::Status(400, Some("invalidValue"), Some("userName")),
                )
            }
            2 => {
                let name = self.unique("nul-display");
                let (variant, body, attribute) = match self.rng.random_range(0..3) {
                    0 => (
                        "nul_in_display_name",
                        json!({"userName": name, "displayName": "a\u{0}b"}),
                        "displayName",
                    ),
                    1 => (
                        "nul_in_external_id",
                        json!({"userName": name, "externalId": "\u{0}"}),
                        "externalId",
                    ),
                    _ => (
                        "nul_in_group_name",
                        json!({"displayName": format!("{name}\u{0}")}),
                        "displayName",
                    ),
                };
                let path = if variant == "nul_in_group_name" {
                    "/Groups"
                } else {
                    "/Users"
                };
                (
                    variant,
                    RawRequest::new(Method::POST, path).scim_body(body.to_string()),
                    Expect::Status(400, Some("invalidValue"), Some(attribute)),
                )
            }
            9 => {
                let filter = self.pick(&[
                    "userName%20eq%20%22%5Cu0000%22",
                    "userName%20eq%20a%00b",
                    "externalId%20eq%20%22x%5Cu0000%22",
                    "emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22%5Cu0000%22",
                ]);
                (
                    "nul_in_filter",
                    RawRequest::new(Method::GET, format!("/Users?filter={filter}")),
                    Expect::Status(400, Some("invalidFilter"), None),
                )
            }
            10 => {
                let (path, ops, scim_type, attribute) = match self.rng.random_range(0..4) {
                    0 => (
                        format!("/Users/{}", self.user()),
                        json!([{"op": "replace", "path": "displayName", "value": "\u{0}"}]),
                        "invalidValue",
                        Some("displayName"),
                    ),
                    1 => (
                        format!("/Groups/{}", self.group()),
                        json!([{"op": "replace", "path": "externalId", "value": "e\u{0}"}]),
                        "invalidValue",
                        Some("externalId"),
                    ),
                    2 => (
                        format!("/Groups/{}", self.group()),
                        json!([{"op": "add", "path": "members", "value": [{"value": "\u{0}"}]}]),
                        "invalidValue",
                        Some("member id"),
                    ),
                    _ => (
                        format!("/Groups/{}", self.group()),
                        json!([{"op": "remove", "path": "members[value eq \"\\u0000\"]"}]),
                        "invalidPath",
                        None,
                    ),
                };
                (
                    "nul_in_patch",
                    RawRequest::new(Method::PATCH, path).scim_body(patch(ops)),
                    Expect::Status(400, Some(scim_type), attribute),
                )
            }
            3 => {
                let escape = self.pick(&[
                    "\\ud800",
                    "\\udc00",
                    "\\ud800\\u0041",
                    "\\udbff\\udbff",
                    "\\ud800\\",
                ]);
                let name = self.unique("surrogate");
                (
                    "lone_surrogate_escape",
                    RawRequest::new(Method::POST, "/Users")
                        .scim_body(format!("{{\"userName\": \"{name}{escape}\"}}")),
                    Expect::Status(400, Some("invalidSyntax"), None),
                )
            }
            4 => {
                let bad: &[u8] = self.pick(&[
                    &b"\xff\xfe"[..],
                    b"\xc0\xaf",
                    b"\xe2\x82",
                    b"\xed\xa0\x80",
                    b"\xf8\x88\x80\x80\x80",
                    b"\x80",
                ]);
                let name = self.unique("utf8");
                let mut body = format!("{{\"userName\": \"{name}").into_bytes();
                body.extend_from_slice(bad);
                body.extend_from_slice(b"\"}");
                let (method, path) = if self.rng.random_range(0..2) == 0 {
                    (Method::POST, "/Users".to_owned())
                } else {
                    (Method::PATCH, format!("/Users/{}", self.user()))
                };
                (
                    "invalid_utf8_body",
                    RawRequest::new(method, path).scim_body(body),
                    Expect::Status(400, Some("invalidSyntax"), None),
                )
            }
            5 => {
                let bad = self.pick(&[
                    "%FF%FE",
                    "%C0%AF",
                    "%ED%A0%80",
                    "%E2%82",
                    "%00",
                    "%F8%88%80%80%80",
                ]);
                let resource = self.pick(&["Users", "Groups"]);
                let attribute = if resource == "Users" {
                    "userName"
                } else {
                    "displayName"
                };
                (
                    "invalid_utf8_filter",
                    RawRequest::new(
                        Method::GET,
                        format!("/{resource}?filter={attribute}%20eq%20%22{bad}%22"),
                    ),
                    Expect::Survives,
                )
            }
            6 => {
                let bad = self.pick(&["%FF", "%C0%AF", "%00", "%ED%A0%80"]);
                let parameter = self.pick(&[
                    "attributes",
                    "excludedAttributes",
                    "count",
                    "startIndex",
                    "%FF",
                ]);
                (
                    "invalid_utf8_query",
                    RawRequest::new(Method::GET, format!("/Users?{parameter}={bad}")),
                    Expect::Survives,
                )
            }
            7 => {
                let user = self.user();
                let odd = self.pick(ODD_NAMES).1;
                (
                    "odd_patch_values",
                    RawRequest::new(Method::PATCH, format!("/Users/{user}")).scim_body(patch(json!([
                        {"op": "replace", "path": "displayName", "value": odd},
                        {"op": "add", "path": "nickName", "value": odd},
                        {"op": "add", "path": format!("urn:example:{odd}:2.0:User:x"), "value": odd}
                    ]))),
                    Expect::Survives,
                )
            }
            _ => {
                // 256 characters is the limit, whatever their size in bytes.
                let emoji = self.rng.random_range(250..262);
                let name = format!(
                    "{}{}",
                    "\u{1f600}".repeat(emoji - 8),
                    &self.unique("e")[..8]
                );
                let expect = if name.chars().count() > 256 {
                    Expect::Status(400, Some("invalidValue"), Some("userName"))
                } else {
                    Expect::Status(201, None, None)
                };
                (
                    "emoji_at_length_limit",
                    RawRequest::new(Method::POST, "/Users")
                        .scim_body(json!({"userName": name}).to_string()),
                    expect,
                )
            }
        };
        Self::case(Category::OddUnicode, variant, request, expect)
    }

    fn invalid_filter(&mut self) -> Case {
        let resource = self.pick(&["Users", "Groups"]);
        let (variant, filter) = match self.rng.random_range(0..4) {
            0 => ("curated", self.pick(INVALID_FILTERS).to_owned()),
            1 => {
                let depth = self.rng.random_range(65..400);
                (
                    "nested_too_deep",
                    format!(
                        "{}userName eq \"x\"{}",
                        "(".repeat(depth),
                        ")".repeat(depth)
                    ),
                )
            }
            2 => {
                let terms = self.rng.random_range(257..600);
                (
                    "too_many_terms",
                    vec!["userName eq \"x\""; terms].join(" or "),
                )
            }
            _ => {
                // A valid filter cut short.
                let whole = "userName eq \"a\" and (emails[type eq \"work\"].value co \"b\" or active eq true)";
                let cut = self.rng.random_range(1..whole.len() - 1);
                let cut = if whole.is_char_boundary(cut) { cut } else { 1 };
                let prefix = &whole[..cut];
                // Prefixes that happen to be complete filters are not invalid.
                if dirsync_scim::parse_filter(prefix).is_ok() {
                    ("truncated", "userName eq".to_owned())
                } else {
                    ("truncated", prefix.to_owned())
                }
            }
        };
        let extra = if resource == "Groups" && self.rng.random_range(0..2) == 0 {
            "&excludedAttributes=members"
        } else {
            ""
        };
        Self::case(
            Category::InvalidFilter,
            variant,
            RawRequest::new(
                Method::GET,
                format!("/{resource}?{}{extra}", filter_query(&filter)),
            ),
            Expect::Status(400, Some("invalidFilter"), None),
        )
    }

    fn invalid_patch_path(&mut self) -> Case {
        let bad = self.pick(INVALID_PATHS);
        let (variant, path, ops) = match self.rng.random_range(0..4) {
            0 => (
                "user_path",
                format!("/Users/{}", self.user()),
                json!([{"op": self.pick(&["add", "replace", "remove", "Add", "Replace", "Remove"]), "path": bad, "value": "v"}]),
            ),
            1 => (
                "after_valid_ops",
                format!("/Users/{}", self.user()),
                json!([{"op": "replace", "path": "displayName", "value": "ok"},
                       {"op": "add", "path": bad, "value": "v"}]),
            ),
            2 => (
                "pathless_key",
                format!("/Users/{}", self.user()),
                json!([{"op": "replace", "value": {bad: "v"}}]),
            ),
            _ => (
                "group_path",
                format!("/Groups/{}", self.group()),
                json!([{"op": self.pick(&["add", "replace", "remove"]), "path": bad, "value": [{"value": "x"}]}]),
            ),
        };
        Self::case(
            Category::InvalidPatchPath,
            variant,
            RawRequest::new(Method::PATCH, path).scim_body(patch(ops)),
            Expect::Status(400, Some("invalidPath"), None),
        )
    }

    fn content_type(&mut self) -> Case {
        let body = self.user_body().to_string();
        let (variant, content_type, expect) = match self.rng.random_range(0..3) {
            0 => (
                "wrong",
                self.pick(&[
                    "text/plain",
                    "application/xml",
                    "application/scim+xml",
                    "multipart/form-data; boundary=x",
                    "application/x-www-form-urlencoded",
                    "application/scim+json-evil",
                    "application/octet-stream",
                    "text/json",
                    "*/*",
                    "application",
                ]),
                Expect::Status(415, None, None),
            ),
            1 => (
                "json_spellings",
                self.pick(&[
                    "application/json",
                    "application/scim+json; charset=utf-8",
                    "APPLICATION/SCIM+JSON",
                    "application/json;charset=UTF-8",
                    " application/json ",
                ]),
                Expect::Status(201, None, None),
            ),
            _ => (
                "odd_parameters",
                self.pick(&[
                    "application/json; charset=utf-16",
                    "application/json; charset=\"\"",
                    "application/json;;;",
                    ";",
                    "application/json; q=\u{e9}",
                ]),
                Expect::Survives,
            ),
        };
        Self::case(
            Category::ContentType,
            variant,
            RawRequest::new(Method::POST, "/Users").body(body, content_type),
            expect,
        )
    }

    fn headers(&mut self) -> Case {
        let path = "/Users?count=1";
        let (variant, request, expect) = match self.rng.random_range(0..9) {
            0 => {
                let size = self.rng.random_range(1024..24 * 1024);
                (
                    "one_header_under_limit",
                    RawRequest::new(Method::GET, path).header("x-filler", "f".repeat(size)),
                    Expect::List(Some(1)),
                )
            }
            1 => {
                let size = self.rng.random_range(36 * 1024..60 * 1024);
                (
                    "one_header_over_limit",
                    RawRequest::new(Method::GET, path).header("x-filler", "f".repeat(size)),
                    Expect::Status(431, None, None),
                )
            }
            2 => {
                let mut request = RawRequest::new(Method::GET, path);
                for i in 0..8 {
                    request = request.header(format!("x-filler-{i}"), "f".repeat(8 * 1024 - 64));
                }
                (
                    "headers_64k_total",
                    request,
                    Expect::Status(431, None, None),
                )
            }
            3 => {
                // More headers than hyper's default (100) allows, under the byte limit.
                let count = self.rng.random_range(101..=500);
                let mut request = RawRequest::new(Method::GET, path);
                for i in 0..count {
                    request = request.header(format!("x-many-{i}"), "v");
                }
                ("many_small_headers", request, Expect::List(Some(1)))
            }
            7 => {
                // Thousands of small headers, the head under 64 KB: more than the gateway's
                // HTTP layer parses (512), refused there with a bare 431.
                let count = self.rng.random_range(513..3500);
                let mut request = RawRequest::new(Method::GET, path);
                for i in 0..count {
                    request = request.header(format!("x-m-{i:04}"), "v");
                }
                ("too_many_headers", request, Expect::BareStatus(431))
            }
            8 => {
                // Few enough headers for the HTTP layer (with the client's own few), too many bytes
                // for the gateway.
                let count = self.rng.random_range(300..=500);
                let mut request = RawRequest::new(Method::GET, path);
                for i in 0..count {
                    request = request.header(format!("x-m-{i:04}"), "v".repeat(120));
                }
                (
                    "many_headers_over_limit",
                    request,
                    Expect::Status(431, None, None),
                )
            }
            4 => (
                "cookie_24k",
                RawRequest::new(Method::GET, path)
                    .header("cookie", format!("session={}", "c".repeat(24 * 1024))),
                Expect::List(Some(1)),
            ),
            5 => {
                let value: &[u8] = self.pick(&[
                    &b"\xff\xfe"[..],
                    b"caf\xc3\xa9",
                    b"\x80\x81",
                    b"tab\tinside",
                ]);
                let name = self.pick(&[
                    "x-odd",
                    "if-match",
                    "content-type",
                    "accept",
                    "x-request-id",
                ]);
                (
                    "non_ascii_value",
                    RawRequest::new(Method::GET, path).header(name, value.to_vec()),
                    Expect::Survives,
                )
            }
            _ => {
                let value = self.pick(&["W/\"abc\"", "garbage", "\"1\", \"2\"", "W/", "*, *"]);
                let user = self.user();
                (
                    "odd_if_match",
                    RawRequest::new(Method::PATCH, format!("/Users/{user}"))
                        .header("if-match", value)
                        .scim_body(patch(
                            json!([{"op": "add", "path": "userName", "value": ""}]),
                        )),
                    Expect::Survives,
                )
            }
        };
        Self::case(Category::Headers, variant, request, expect)
    }

    fn paging(&mut self) -> Case {
        const VALUES: &[&str] = &[
            "-1",
            "0",
            "1",
            "-99999999999",
            "1000000000000",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999999",
            "abc",
            "1e3",
            "",
            "1.5",
            "%207%20",
            "0x10",
            "%2B5",
            "%EF%BC%92",
            "NaN",
        ];
        let resource = self.pick(&["Users", "Groups"]);
        let parameter = self.pick(&["count", "startIndex", "COUNT", "StartIndex"]);
        let value = self.pick(VALUES);
        let decoded = value.replace("%20", " ").replace("%2B", "+");
        let numeric = decoded.trim().parse::<i64>().ok();
        if self.rng.random_range(0..4) == 0 {
            let other = self.pick(VALUES);
            return Self::case(
                Category::Paging,
                "repeated",
                RawRequest::new(
                    Method::GET,
                    format!("/{resource}?{parameter}={value}&{parameter}={other}"),
                ),
                Expect::Survives,
            );
        }
        let expect = match numeric {
            Some(n) if parameter.eq_ignore_ascii_case("count") => {
                Expect::List(Some(u64::try_from(n.max(0)).unwrap_or(0)))
            }
            Some(_) => Expect::List(None),
            // RFC 7644 §3.4.2.4 defines both as integers.
            None => Expect::Status(400, Some("invalidValue"), None),
        };
        Self::case(
            Category::Paging,
            if numeric.is_some() {
                "numeric"
            } else {
                "not_numeric"
            },
            RawRequest::new(Method::GET, format!("/{resource}?{parameter}={value}")),
            expect,
        )
    }

    fn resolve(&mut self, route: &str) -> String {
        let missing = format!("missing-{}", self.rng.random_range(0..1_000_000u32));
        let user = self.user();
        let group = self.group();
        let victims = self.targets.victim_users.clone();
        let victim_user = self.pick(&victims);
        let victims = self.targets.victim_groups.clone();
        let victim_group = self.pick(&victims);
        route
            .replace("{user}", &user)
            .replace("{group}", &group)
            .replace("{victim_user}", &victim_user)
            .replace("{victim_group}", &victim_group)
            .replace("{missing}", &missing)
    }

    fn unknown_method(&mut self) -> Case {
        let route = self.pick(&[
            "/Users",
            "/Users/{user}",
            "/Groups",
            "/Groups/{group}",
            "/Schemas",
            "/ResourceTypes/User",
            "/ServiceProviderConfig",
        ]);
        let path = self.resolve(route);
        let (variant, method) = if self.rng.random_range(0..3) == 0 {
            // Known methods on routes without them.
            let method = match route {
                "/Users" | "/Groups" => self.pick(&[Method::PUT, Method::PATCH, Method::DELETE]),
                "/Users/{user}" | "/Groups/{group}" => Method::POST,
                _ => self.pick(&[Method::POST, Method::PUT, Method::PATCH, Method::DELETE]),
            };
            ("known_not_allowed", method)
        } else {
            let name = self.pick(UNKNOWN_METHODS);
            ("unknown", Method::from_bytes(name.as_bytes()).unwrap())
        };
        let mut request = RawRequest::new(method, path);
        if self.rng.random_range(0..2) == 0 {
            request = request.scim_body(patch(json!([])));
        }
        Self::case(
            Category::UnknownMethod,
            variant,
            request,
            Expect::Status(405, None, None),
        )
    }

    fn routes(&mut self) -> Case {
        let method = self.pick(&[
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
        ]);
        let (sender, variant) = match self.rng.random_range(0..8) {
            0 => (Sender::Anonymous, "anonymous"),
            1 => (Sender::WrongToken, "wrong_token"),
            2 => (Sender::Root, "outside_scim_prefix"),
            _ => (Sender::Tenant, "tenant"),
        };
        let path = if sender == Sender::Root {
            self.pick(ROOT_PATHS).to_owned()
        } else {
            let route = self.pick(ROUTES);
            self.resolve(route)
        };
        let mut request = RawRequest::new(method.clone(), path.clone());
        if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            let body = if method == Method::PATCH {
                patch(
                    json!([{"op": "replace", "path": "displayName", "value": self.unique("renamed")}]),
                )
            } else if path.starts_with("/Groups") {
                json!({"displayName": self.unique("route-group")})
                    .to_string()
                    .into_bytes()
            } else {
                self.user_body().to_string().into_bytes()
            };
            request = request.scim_body(body);
        }
        let authenticated_route = path.starts_with("/Users") || path.starts_with("/Groups");
        let expect = match sender {
            Sender::Anonymous | Sender::WrongToken
                if authenticated_route && method != Method::HEAD =>
            {
                Expect::OneOf(&[401, 404, 405])
            }
            _ => Expect::Survives,
        };
        Case {
            category: Category::Routes,
            variant,
            sender,
            request,
            expect,
            duplicate_of: None,
        }
    }

    fn hostile_id(&mut self) -> Case {
        let resource = self.pick(&["Users", "Groups"]);
        let method = self.pick(&[Method::GET, Method::PUT, Method::PATCH, Method::DELETE]);
        let (variant, path) = if self.rng.random_range(0..4) == 0 {
            (
                "raw_path",
                self.pick(RAW_PATH_TRICKS).replace("Users", resource),
            )
        } else {
            (
                "encoded_id",
                format!("/{resource}/{}", self.pick(HOSTILE_IDS)),
            )
        };
        let mut request = RawRequest::new(method.clone(), path);
        let body = match (&method, resource) {
            (&Method::PUT, "Users") => Some(self.user_body().to_string().into_bytes()),
            (&Method::PUT, _) => Some(
                json!({"displayName": self.unique("g")})
                    .to_string()
                    .into_bytes(),
            ),
            (&Method::PATCH, _) => Some(patch(
                json!([{"op": "replace", "path": "displayName", "value": "x"}]),
            )),
            _ => None,
        };
        if let Some(body) = body {
            request = request.scim_body(body);
        }
        // No resource has such an id; a path that names no route is not found either.
        let expect = if variant == "raw_path" {
            Expect::OneOf(&[404, 405])
        } else {
            Expect::Status(404, None, None)
        };
        Self::case(Category::HostileIds, variant, request, expect)
    }

    fn duplicates(&mut self) -> Vec<Case> {
        self.duplicates += 1;
        let key = self.duplicates;
        let base = self.unique("dup");
        let burst = CONCURRENCY;
        if self.rng.random_range(0..4) == 0 {
            // The same 30 KB userName, 16 times at once: each a 400 naming the attribute's
            // limit, never a uniqueness race, never a 500 (the provisioner's message once
            // quoted it whole and broke the shared HTTP/2 connection).
            let body = json!({"userName": format!("{}{base}", "l".repeat(30 * 1024))}).to_string();
            return (0..burst)
                .map(|_| Case {
                    category: Category::Duplicates,
                    variant: "same_30k_user_name",
                    sender: Sender::Tenant,
                    request: RawRequest::new(Method::POST, "/Users").scim_body(body.clone()),
                    expect: Expect::Status(400, Some("invalidValue"), Some("userName")),
                    duplicate_of: None,
                })
                .collect();
        }
        let (variant, path, bodies): (&'static str, &str, Vec<Value>) =
            match self.rng.random_range(0..3) {
                0 => (
                    "same_user_name",
                    "/Users",
                    (0..burst).map(|_| json!({"userName": base})).collect(),
                ),
                1 => (
                    "user_name_case_variants",
                    "/Users",
                    (0..burst)
                        .map(|i| {
                            let name = if i % 2 == 0 {
                                base.to_uppercase()
                            } else {
                                base.clone()
                            };
                            json!({"userName": name, "externalId": format!("e{i}")})
                        })
                        .collect(),
                ),
                _ => (
                    "same_group_name",
                    "/Groups",
                    (0..burst).map(|_| json!({"displayName": base})).collect(),
                ),
            };
        bodies
            .into_iter()
            .map(|body| Case {
                category: Category::Duplicates,
                variant,
                sender: Sender::Tenant,
                request: RawRequest::new(Method::POST, path).scim_body(body.to_string()),
                expect: Expect::OneOf(&[201, 409]),
                duplicate_of: Some(key),
            })
            .collect()
    }

    /// At least `total` requests, categories drawn at random and each drawn often.
    fn storm(&mut self, total: usize) -> Vec<Case> {
        let mut cases = Vec::with_capacity(total + CONCURRENCY);
        while cases.len() < total {
            let category = self.pick(&CATEGORIES);
            // A duplicate burst is 16 requests: draw it as often as a single request
            // category draws 16.
            if category == Category::Duplicates && self.rng.random_range(0..CONCURRENCY) != 0 {
                continue;
            }
            cases.extend(self.draw(category));
        }
        cases
    }
}

// ---------------------------------------------------------------------------------------------
// Running the storm.

struct Clients {
    tenant: ScimClient,
    anonymous: ScimClient,
    wrong_token: ScimClient,
    root: ScimClient,
    deep: ScimClient,
}

impl Clients {
    fn of(&self, sender: Sender) -> &ScimClient {
        match sender {
            Sender::Tenant => &self.tenant,
            Sender::Anonymous => &self.anonymous,
            Sender::WrongToken => &self.wrong_token,
            Sender::Root => &self.root,
            Sender::Deep => &self.deep,
        }
    }
}

#[derive(Debug, Default)]
struct StormReport {
    failures: Vec<String>,
    /// Failures counted by category, variant and status (0: no answer).
    summary: BTreeMap<(Category, &'static str, u16), usize>,
    /// Status and `scimType` of each case's answer, by index (0 for no answer).
    statuses: Vec<(u16, String)>,
    by_status: BTreeMap<u16, usize>,
}

fn describe(seed: u64, index: usize, case: &Case) -> String {
    format!(
        "seed {seed}: request #{index} [{:?}/{}] {} {}",
        case.category,
        case.variant,
        case.request.method,
        short(&case.request.path, 120)
    )
}

async fn run_storm(seed: u64, cases: Arc<Vec<Case>>, clients: Arc<Clients>) -> StormReport {
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(vec![(0u16, String::new()); cases.len()]));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (next, cases, clients) = (next.clone(), cases.clone(), clients.clone());
        let (results, failures) = (results.clone(), failures.clone());
        workers.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(index) else {
                    return;
                };
                let reply = clients.of(case.sender).try_send(case.request.clone()).await;
                let verdict = reply.as_ref().map_err(Clone::clone).and_then(|reply| {
                    if !matches!(case.expect, Expect::BareStatus(_)) {
                        check_reply(&case.request.method, reply)?;
                    }
                    check_expectation(&case.expect, reply)
                });
                if let Ok(reply) = &reply {
                    let scim_type = reply.body["scimType"].as_str().unwrap_or_default();
                    results.lock().unwrap()[index] = (reply.status.as_u16(), scim_type.to_owned());
                }
                if let Err(problem) = verdict {
                    let status = reply.as_ref().map_or(0, |r| r.status.as_u16());
                    let body = reply.map_or_else(|_| String::new(), |r| short(&r.raw, 300));
                    failures.lock().unwrap().push((
                        (case.category, case.variant, status),
                        format!("{}: {problem}; answer: {body}", describe(seed, index, case)),
                    ));
                }
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.unwrap();
    }
    let statuses = std::mem::take(&mut *results.lock().unwrap());
    let mut summary = BTreeMap::new();
    let mut failures: Vec<String> = std::mem::take(&mut *failures.lock().unwrap())
        .into_iter()
        .map(|(key, message)| {
            *summary.entry(key).or_insert(0) += 1;
            message
        })
        .collect();
    // Concurrent creates of one name: exactly one wins.
    let mut bursts: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (index, case) in cases.iter().enumerate() {
        if let Some(key) = case.duplicate_of {
            bursts.entry(key).or_default().push(index);
        }
    }
    for indices in bursts.values() {
        let created = indices.iter().filter(|i| statuses[**i].0 == 201).count();
        let refused_rightly = indices
            .iter()
            .filter(|i| statuses[**i] == (409, "uniqueness".to_owned()))
            .count();
        if created != 1 || created + refused_rightly != indices.len() {
            let first = indices[0];
            *summary
                .entry((Category::Duplicates, cases[first].variant, 201))
                .or_insert(0) += 1;
            failures.push(format!(
                "{}: {created} of {} concurrent duplicate creates succeeded (exactly one must, the others 409 uniqueness); answers {:?}",
                describe(seed, first, &cases[first]),
                indices.len(),
                indices.iter().map(|i| statuses[*i].clone()).collect::<Vec<_>>()
            ));
        }
    }
    let mut by_status = BTreeMap::new();
    for (status, _) in &statuses {
        *by_status.entry(*status).or_insert(0) += 1;
    }
    StormReport {
        failures,
        summary,
        statuses,
        by_status,
    }
}

#[derive(Default)]
struct Tally {
    operations: usize,
    failures: Vec<String>,
}

impl Tally {
    /// Counts one operation; records a failure unless it got `status`.
    fn expect(&mut self, what: String, reply: &Reply, status: u16) -> bool {
        self.operations += 1;
        if reply.status == status {
            return true;
        }
        self.failures.push(format!(
            "{what}: {} {}",
            reply.status,
            short(&reply.raw, 300)
        ));
        false
    }
}

/// A steady stream of what Entra normally does, on its own tenant, until `stop`: every request
/// must succeed.
async fn bystander(scim: ScimClient, stop: Arc<AtomicBool>) -> Tally {
    let mut tally = Tally::default();
    let mut cycle = 0;
    let mut group: Option<String> = None;
    while !stop.load(Ordering::SeqCst) || cycle < 3 {
        cycle += 1;
        let name = format!("steady-{cycle}@bystander.example");
        let created = scim
            .post(
                "/Users",
                &json!({"schemas": [USER_URN, ENTERPRISE_URN], "userName": name, "active": true,
                        "emails": [{"value": name, "type": "work", "primary": true}],
                        ENTERPRISE_URN: {"department": "Steady"}}),
            )
            .await;
        if !tally.expect(format!("create {name}"), &created, 201) {
            continue;
        }
        let id = created.body["id"].as_str().unwrap_or_default().to_owned();
        let got = scim.get(&format!("/Users/{id}")).await;
        tally.expect(format!("get {id}"), &got, 200);
        let patched = scim
            .patch(
                &format!("/Users/{id}"),
                &json!({"schemas": [PATCH_URN], "Operations": [
                    {"op": "Replace", "path": "displayName", "value": format!("Steady {cycle}")},
                    {"op": "Replace", "path": "active", "value": "False"}]}),
            )
            .await;
        if tally.expect(format!("patch {id}"), &patched, 200)
            && (patched.body["displayName"] != format!("Steady {cycle}")
                || patched.body["active"] != false)
        {
            tally
                .failures
                .push(format!("patch {id} did not apply: {}", patched.raw));
        }
        let found = scim
            .get(&format!(
                "/Users?{}",
                filter_query(&format!("userName eq \"{name}\""))
            ))
            .await;
        if tally.expect(format!("query {name}"), &found, 200) && found.body["totalResults"] != 1 {
            tally
                .failures
                .push(format!("query {name} found {}", found.body["totalResults"]));
        }
        let group_id = match &group {
            Some(id) => id.clone(),
            None => {
                let made = scim
                    .post("/Groups", &json!({"displayName": "steady-group"}))
                    .await;
                if !tally.expect("create steady-group".to_owned(), &made, 201) {
                    continue;
                }
                let id = made.body["id"].as_str().unwrap_or_default().to_owned();
                group = Some(id.clone());
                id
            }
        };
        let added = scim
            .patch(
                &format!("/Groups/{group_id}"),
                &json!({"schemas": [PATCH_URN], "Operations": [
                    {"op": "Add", "path": "members", "value": [{"value": id}]}]}),
            )
            .await;
        tally.expect(format!("add {id} to the group"), &added, 204);
    }
    tally
}

async fn setup_targets(scim: &ScimClient, deep: &ScimClient) -> Targets {
    let reply = deep
        .post(
            "/Users",
            &json!({"userName": "deep-target@hostile.example"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    let mut targets = Targets {
        users: Vec::new(),
        groups: Vec::new(),
        victim_users: Vec::new(),
        victim_groups: Vec::new(),
        deep_user: reply.body["id"].as_str().unwrap().to_owned(),
    };
    for i in 0..8 {
        let name = format!("target-{i}@hostile.example");
        let reply = scim
            .post(
                "/Users",
                &json!({"userName": name, "displayName": format!("Target {i}"),
                        "emails": [{"value": name, "type": "work", "primary": true}]}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.raw);
        let id = reply.body["id"].as_str().unwrap().to_owned();
        if i < 4 {
            targets.users.push(id);
        } else {
            targets.victim_users.push(id);
        }
    }
    for i in 0..4 {
        let reply = scim
            .post(
                "/Groups",
                &json!({"displayName": format!("target group {i}")}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.raw);
        let id = reply.body["id"].as_str().unwrap().to_owned();
        if i < 2 {
            targets.groups.push(id);
        } else {
            targets.victim_groups.push(id);
        }
    }
    targets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_hostile_requests_hurts_nobody() {
    if std::env::var_os("RUST_LOG").is_some() {
        dirsync_runtime::telemetry::init_tracing(&dirsync_runtime::config::LogConfig::default());
    }
    let seed = seed();
    let started = Instant::now();
    let proxied = ProxiedStack::start(|_| {}).await;
    let stack = &proxied.stack;
    let (_, scim) = stack.tenant("storm").await;
    let (_, steady) = stack.tenant("bystander").await;
    let (_, deep) = stack.tenant("deep").await;
    let clients = Arc::new(Clients {
        anonymous: scim.with_token(None),
        wrong_token: scim.with_token(Some("not-a-token-anyone-issued".to_owned())),
        // The same tenant's token, for paths outside /scim/v2.
        root: scim.with_base(format!("http://{}", stack.scim.addr)),
        tenant: scim.clone(),
        deep: deep.clone(),
    });
    let targets = setup_targets(&scim, &deep).await;
    let mut generator = Generator::new(seed, targets.clone());
    let cases = generator.storm(STORM_REQUESTS);

    // The generator really produced what this test claims.
    let mut per_category: BTreeMap<Category, usize> = BTreeMap::new();
    let mut per_variant: BTreeMap<(Category, &'static str), usize> = BTreeMap::new();
    for case in &cases {
        *per_category.entry(case.category).or_default() += 1;
        *per_variant
            .entry((case.category, case.variant))
            .or_default() += 1;
    }
    assert!(
        cases.len() >= STORM_REQUESTS,
        "seed {seed}: only {} requests",
        cases.len()
    );
    for category in CATEGORIES {
        let count = per_category.get(&category).copied().unwrap_or(0);
        assert!(
            count >= 300,
            "seed {seed}: only {count} {category:?} requests: {per_category:?}"
        );
    }
    for (category, variants) in VARIANTS {
        for variant in *variants {
            assert!(
                per_variant.contains_key(&(*category, *variant)),
                "seed {seed}: {category:?}/{variant} never drawn: {per_variant:#?}"
            );
        }
    }
    let unlisted: Vec<_> = per_variant
        .keys()
        .filter(|(category, variant)| {
            !VARIANTS
                .iter()
                .any(|(c, variants)| c == category && variants.contains(variant))
        })
        .collect();
    assert!(
        unlisted.is_empty(),
        "seed {seed}: variants drawn but not listed: {unlisted:?}"
    );

    // The storm, with a bystander tenant doing normal work all along.
    let stop = Arc::new(AtomicBool::new(false));
    let bystander_task = tokio::spawn(bystander(steady.clone(), stop.clone()));
    let cases = Arc::new(cases);
    let storm_started = Instant::now();
    let report = run_storm(seed, cases.clone(), clients).await;
    let storm_took = storm_started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let Tally {
        operations: bystander_operations,
        failures: bystander_failures,
    } = bystander_task.await.unwrap();
    eprintln!(
        "seed {seed}: {} requests in {storm_took:?}; statuses {:?}; {bystander_operations} bystander operations",
        cases.len(),
        report.by_status
    );
    eprintln!("per category: {per_category:?}");

    // The gateway still answers, and never had to re-open its provisioner connection.
    let alive = scim.get("/Users?count=1").await;
    assert_eq!(
        alive.status, 200,
        "seed {seed}: gateway after the storm: {}",
        alive.raw
    );
    let created = scim
        .post(
            "/Users",
            &json!({"userName": "after-the-storm@hostile.example"}),
        )
        .await;
    assert_eq!(created.status, 201, "seed {seed}: {}", created.raw);
    let connections = proxied.upstream_connections.load(Ordering::SeqCst);

    assert!(
        report.failures.is_empty(),
        "seed {seed}: {} of {} hostile requests were answered wrongly (replay with DIRSYNC_HOSTILE_SEED={seed}).\nBy category, variant and status: {:#?}\nThe first of them:\n{}",
        report.failures.len(),
        cases.len(),
        report.summary,
        report
            .failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(report.statuses.len(), cases.len());
    assert!(
        bystander_failures.is_empty(),
        "seed {seed}: the bystander tenant's normal requests failed during the storm:\n{}",
        bystander_failures.join("\n")
    );
    assert!(
        bystander_operations >= 50,
        "seed {seed}: only {bystander_operations} bystander operations ran during the storm"
    );
    assert_eq!(
        connections, 1,
        "seed {seed}: the gateway opened {connections} connections to the provisioner: one broke"
    );
    proxied.stop().await;
    eprintln!("storm test took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Slow clients.

/// What a raw connection got before the server closed it (or `within` passed).
struct RawOutcome {
    /// Bytes the server sent.
    received: Vec<u8>,
    /// Whether the server closed (or reset) the connection within the bound.
    closed: bool,
    took: Duration,
}

/// Connects, sends `sent`, then stalls: reads whatever comes until the server closes.
async fn stall_after(addr: SocketAddr, sent: &[u8], within: Duration) -> RawOutcome {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(sent).await.unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    RawOutcome {
        received,
        closed,
        took: started.elapsed(),
    }
}

/// Status and JSON body of a raw HTTP/1.1 response.
fn parse_response(raw: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(body.len());
    let body = body.get(..length).unwrap_or(body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    let stack = Stack::start_with(|config| {
        config.scim.header_read_timeout = Duration::from_secs(1);
        config.scim.body_read_timeout = Duration::from_secs(1);
    })
    .await;
    let (_, scim) = stack.tenant("slow").await;
    let token = scim.token().unwrap().to_owned();
    let addr = stack.scim.addr;
    let bound = Duration::from_secs(10);

    // Half a request line, then half the headers: disconnected, with nothing to answer.
    let partial_heads = [
        "GET /scim/v2/Us".to_owned(),
        format!(
            "GET /scim/v2/Users HTTP/1.1\r\nHost: slow\r\nAuthorization: Bearer {token}\r\nAcc"
        ),
        format!("POST /scim/v2/Users HTTP/1.1\r\nHost: slow\r\nAuthorization: Bearer {token}\r\n"),
    ];
    for sent in &partial_heads {
        let outcome = stall_after(addr, sent.as_bytes(), bound).await;
        assert!(
            outcome.closed,
            "a client stalling after {sent:?} was still connected after {bound:?}"
        );
        assert!(
            outcome.took >= Duration::from_millis(500),
            "cut off after {:?}, before the 1 s header timeout could have passed: {sent:?}",
            outcome.took
        );
        if !outcome.received.is_empty() {
            // Whatever hyper says on the way out must not be a success.
            let (status, _) = parse_response(&outcome.received);
            assert!(
                status == 0 || status >= 400,
                "{sent:?} got {status}: {}",
                String::from_utf8_lossy(&outcome.received)
            );
        }
    }

    // Complete headers announcing a body that never comes: a 408 SCIM error, then the end.
    let body_stalls = [
        (
            "content-length",
            format!(
                "POST /scim/v2/Users HTTP/1.1\r\nHost: slow\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/scim+json\r\nContent-Length: 200\r\n\r\n{{\"userName\": \"slo"
            ),
        ),
        (
            "chunked",
            format!(
                "PATCH /scim/v2/Users/some-id HTTP/1.1\r\nHost: slow\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"Ope\r\n"
            ),
        ),
    ];
    for (shape, sent) in &body_stalls {
        let outcome = stall_after(addr, sent.as_bytes(), bound).await;
        let (status, body) = parse_response(&outcome.received);
        assert_eq!(
            status,
            408,
            "{shape}: a stalled body must get 408; got {:?} after {:?}",
            String::from_utf8_lossy(&outcome.received),
            outcome.took
        );
        assert!(
            body["schemas"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s == ERROR_URN))
                && body["status"] == "408",
            "{shape}: the 408 is not a SCIM error body: {body}"
        );
        assert!(
            outcome.took >= Duration::from_millis(500) && outcome.took < bound,
            "{shape}: answered after {:?}",
            outcome.took
        );
    }

    // The gateway still serves everyone else.
    let alive = scim.get("/Users?count=1").await;
    assert_eq!(alive.status, 200, "{}", alive.raw);
    let created = scim
        .post("/Users", &json!({"userName": "fast@slow.example"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.raw);
    stack.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Paths as Entra sends them.

#[tokio::test]
async fn paths_as_entra_sends_them_reach_the_same_handlers() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("paths").await;
    let user = scim
        .post("/Users", &json!({"userName": "x@paths.example"}))
        .await;
    assert_eq!(user.status, 201, "{}", user.raw);
    let user_id = user.body["id"].as_str().unwrap().to_owned();
    let group = scim
        .post("/Groups", &json!({"displayName": "paths group"}))
        .await;
    assert_eq!(group.status, 201, "{}", group.raw);
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let by_name = filter_query("userName eq \"x@paths.example\"");
    let by_group_name = format!(
        "excludedAttributes=members&{}",
        filter_query("displayName eq \"paths group\"")
    );

    // (as Entra spells it, the canonical path)
    let pairs = [
        ("/Users/".to_owned(), "/Users".to_owned()),
        (format!("/Users/?{by_name}"), format!("/Users?{by_name}")),
        ("/Groups/".to_owned(), "/Groups".to_owned()),
        (
            format!("/Groups/?{by_group_name}"),
            format!("/Groups?{by_group_name}"),
        ),
        ("//Users".to_owned(), "/Users".to_owned()),
        (format!("//Users?{by_name}"), format!("/Users?{by_name}")),
        ("//Groups".to_owned(), "/Groups".to_owned()),
        (format!("//Users/{user_id}"), format!("/Users/{user_id}")),
        (format!("/Users/{user_id}/"), format!("/Users/{user_id}")),
        (
            format!("//Groups/{group_id}/?excludedAttributes=members"),
            format!("/Groups/{group_id}?excludedAttributes=members"),
        ),
    ];
    for (spelled, canonical) in &pairs {
        let expected = scim.get(canonical).await;
        assert_eq!(expected.status, 200, "{canonical}: {}", expected.raw);
        let got = scim.get(spelled).await;
        assert_eq!(
            (got.status, &got.body),
            (expected.status, &expected.body),
            "{spelled} must answer as {canonical}"
        );
    }
    let found = scim.get(&format!("/Users/?{by_name}")).await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.raw);
    assert_eq!(found.body["Resources"][0]["id"], user_id.as_str());

    // Writes through the same spellings.
    let created = scim
        .post("//Users", &json!({"userName": "y@paths.example"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.raw);
    let created = scim
        .post("/Groups/", &json!({"displayName": "second paths group"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.raw);
    let patched = scim
        .patch(
            &format!("//Users/{user_id}/"),
            &json!({"Operations": [{"op": "Replace", "path": "displayName", "value": "X"}]}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.raw);
    assert_eq!(patched.body["displayName"], "X");
    stack.stop().await;
}
