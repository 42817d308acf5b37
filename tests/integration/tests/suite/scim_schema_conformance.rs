//! Every response the gateway gives, checked against the `/Schemas` the gateway itself
//! publishes (fetched over HTTP): each attribute's type and multi-valuedness, `returned`
//! (never: never present, in any response; always: always present; request: only when asked;
//! default: unless excluded, or only when asked for with `attributes`), `mutability` (readOnly
//! attributes cannot be set by a client), and no attribute the schema does not declare unless it
//! sits under an extension URN the resource lists in `schemas`. The common attributes `id`,
//! `externalId` and `meta`, which RFC 7643 §3.1 defines outside every schema, are checked as
//! that section defines them.
//!
//! The responses are those of Entra's request sequence (built by the Entra simulator's request
//! builders, in both PATCH dialects) and of the RFC operations: create, get, list with
//! `attributes` and `excludedAttributes`, PUT, and PATCH add, replace and remove of every
//! attribute and sub-attribute of the User schema and its enterprise extension, with values
//! generated from the published types.

use std::collections::BTreeMap;

use dirsync_entra_simulator::requests::{self as entra, PatchShape, UserImage};
use dirsync_tests::Stack;
use dirsync_tests::http::{Reply, ScimClient, encode_query_value};
use hyper::Method;
use serde_json::{Map, Value, json};

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

// ---------------------------------------------------------------------------------------------
// The published schemas.

/// One attribute as `/Schemas` publishes it.
#[derive(Debug, Clone)]
struct Attribute {
    name: String,
    ty: String,
    multi: bool,
    required: bool,
    mutability: String,
    returned: String,
    canonical: Vec<String>,
    sub: Vec<Attribute>,
}

impl Attribute {
    fn parse(value: &Value, at: &str) -> Self {
        let text = |key: &str| {
            value[key]
                .as_str()
                .unwrap_or_else(|| panic!("/Schemas: {at} has no string {key:?}: {value}"))
                .to_owned()
        };
        let flag = |key: &str| {
            value[key]
                .as_bool()
                .unwrap_or_else(|| panic!("/Schemas: {at} has no boolean {key:?}: {value}"))
        };
        let name = text("name");
        let here = format!("{at}.{name}");
        Self {
            ty: text("type"),
            multi: flag("multiValued"),
            required: flag("required"),
            mutability: text("mutability"),
            returned: text("returned"),
            canonical: value["canonicalValues"]
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            sub: value["subAttributes"]
                .as_array()
                .map(|subs| subs.iter().map(|s| Attribute::parse(s, &here)).collect())
                .unwrap_or_default(),
            name,
        }
    }

    fn simple(name: &str, ty: &str, mutability: &str, returned: &str) -> Self {
        Self {
            name: name.to_owned(),
            ty: ty.to_owned(),
            multi: false,
            required: false,
            mutability: mutability.to_owned(),
            returned: returned.to_owned(),
            canonical: Vec::new(),
            sub: Vec::new(),
        }
    }

    fn sub_attribute(&self, name: &str) -> Option<&Attribute> {
        self.sub.iter().find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Whether a client may write it (RFC 7643 §2.2: readOnly and immutable may not be
    /// changed once set).
    fn writable(&self) -> bool {
        !matches!(self.mutability.as_str(), "readOnly" | "immutable")
    }
}

/// RFC 7643 §3.1: the attributes every resource has, defined outside every schema.
fn common_attributes() -> Vec<Attribute> {
    let mut meta = Attribute::simple("meta", "complex", "readOnly", "default");
    meta.sub = vec![
        Attribute::simple("resourceType", "string", "readOnly", "default"),
        Attribute::simple("created", "dateTime", "readOnly", "default"),
        Attribute::simple("lastModified", "dateTime", "readOnly", "default"),
        Attribute::simple("location", "reference", "readOnly", "default"),
        Attribute::simple("version", "string", "readOnly", "default"),
    ];
    vec![
        Attribute::simple("id", "string", "readOnly", "always"),
        Attribute::simple("externalId", "string", "readWrite", "default"),
        meta,
    ]
}

/// The schemas a server publishes, by URN.
#[derive(Debug)]
struct Schemas {
    by_urn: BTreeMap<String, Vec<Attribute>>,
}

impl Schemas {
    /// `GET /Schemas`, over HTTP, from the server under test.
    async fn fetch(scim: &ScimClient) -> Self {
        let reply = scim.get("/Schemas").await;
        assert_eq!(reply.status, 200, "GET /Schemas: {}", reply.raw);
        let mut by_urn = BTreeMap::new();
        for schema in reply.body["Resources"].as_array().expect("Resources") {
            let id = schema["id"].as_str().expect("a schema id").to_owned();
            let attributes = schema["attributes"]
                .as_array()
                .unwrap_or_else(|| panic!("/Schemas: {id} has no attributes"))
                .iter()
                .map(|a| Attribute::parse(a, &id))
                .collect();
            by_urn.insert(id.to_ascii_lowercase(), attributes);
        }
        for urn in [USER_URN, GROUP_URN, ENTERPRISE_URN] {
            assert!(
                by_urn.contains_key(&urn.to_ascii_lowercase()),
                "/Schemas does not publish {urn}"
            );
        }
        Self { by_urn }
    }

    fn attributes(&self, urn: &str) -> Option<&[Attribute]> {
        self.by_urn
            .get(&urn.to_ascii_lowercase())
            .map(Vec::as_slice)
    }

    fn user(&self) -> &[Attribute] {
        self.attributes(USER_URN).unwrap_or_default()
    }

    fn enterprise(&self) -> &[Attribute] {
        self.attributes(ENTERPRISE_URN).unwrap_or_default()
    }
}

fn find<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

// ---------------------------------------------------------------------------------------------
// What the client asked for: `attributes` and `excludedAttributes`.

/// One name from `attributes` or `excludedAttributes`, lower-cased.
#[derive(Debug, Clone)]
struct Named {
    urn: Option<String>,
    name: String,
    sub: Option<String>,
}

fn parse_named(list: &str) -> Vec<Named> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let entry = entry
                .split('[')
                .next()
                .unwrap_or(entry)
                .to_ascii_lowercase();
            let (urn, path) = match entry.strip_prefix("urn:") {
                // `urn:…:User:name.givenName`: the path is after the last colon.
                Some(_) => match entry.rsplit_once(':') {
                    Some((urn, path)) => (Some(urn.to_owned()), path.to_owned()),
                    None => (None, entry.clone()),
                },
                None => (None, entry.clone()),
            };
            let (name, sub) = match path.split_once('.') {
                Some((name, sub)) => (name.to_owned(), Some(sub.to_owned())),
                None => (path, None),
            };
            Named { urn, name, sub }
        })
        .collect()
}

#[derive(Debug, Clone, Default)]
struct Asked {
    attributes: Vec<Named>,
    excluded: Vec<Named>,
}

impl Asked {
    fn from_query(path: &str) -> Self {
        let mut asked = Self::default();
        let Some((_, query)) = path.split_once('?') else {
            return asked;
        };
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match key.to_ascii_lowercase().as_str() {
                "attributes" => asked.attributes = parse_named(&value),
                "excludedattributes" => asked.excluded = parse_named(&value),
                _ => {}
            }
        }
        asked
    }

    /// The entries naming attribute `name` of schema `urn` (`None` = core).
    fn naming<'a>(list: &'a [Named], urn: Option<&str>, name: &str) -> Vec<&'a Named> {
        let name = name.to_ascii_lowercase();
        list.iter()
            .filter(|n| n.name == name)
            .filter(|n| match (&n.urn, urn) {
                (None, _) => true,
                (Some(asked), Some(urn)) => asked.eq_ignore_ascii_case(urn),
                (Some(asked), None) => {
                    asked.eq_ignore_ascii_case(USER_URN) || asked.eq_ignore_ascii_case(GROUP_URN)
                }
            })
            .collect()
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The validator.

/// Checks responses against the published schemas, and collects what it finds.
struct Conformance<'a> {
    schemas: &'a Schemas,
    failures: Vec<String>,
    /// Responses checked.
    responses: usize,
    /// Resources checked (a list counts each of its resources).
    resources: usize,
}

/// What a response should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    User,
    Group,
    UserList,
    GroupList,
    /// 204 No Content.
    Empty,
    Error,
}

impl<'a> Conformance<'a> {
    fn new(schemas: &'a Schemas) -> Self {
        Self {
            schemas,
            failures: Vec::new(),
            responses: 0,
            resources: 0,
        }
    }

    fn fail(&mut self, response: &str, attribute: &str, problem: impl std::fmt::Display) {
        self.failures
            .push(format!("{response}: {attribute}: {problem}"));
    }

    /// Checks one response: `method path` names it in every failure.
    fn check(&mut self, method: &Method, path: &str, reply: &Reply, shape: Shape) {
        self.responses += 1;
        let response = format!("{method} {path} → {}", reply.status);
        let asked = Asked::from_query(path);
        match shape {
            Shape::Empty => {
                if !reply.raw.is_empty() {
                    self.fail(
                        &response,
                        "(body)",
                        format!("expected no body: {}", reply.raw),
                    );
                }
            }
            Shape::Error => self.check_error(&response, reply),
            Shape::User | Shape::Group => {
                self.check_content_type(&response, reply);
                let core = if shape == Shape::User {
                    USER_URN
                } else {
                    GROUP_URN
                };
                self.check_resource(&response, core, &reply.body, &asked);
            }
            Shape::UserList | Shape::GroupList => {
                self.check_content_type(&response, reply);
                let core = if shape == Shape::UserList {
                    USER_URN
                } else {
                    GROUP_URN
                };
                self.check_list(&response, core, &reply.body, &asked);
            }
        }
    }

    fn check_content_type(&mut self, response: &str, reply: &Reply) {
        if reply.header("content-type") != Some("application/scim+json") {
            self.fail(
                response,
                "(Content-Type)",
                format!("is {:?}", reply.header("content-type")),
            );
        }
    }

    fn check_error(&mut self, response: &str, reply: &Reply) {
        self.check_content_type(response, reply);
        let body = &reply.body;
        if !has_urn(&body["schemas"], ERROR_URN) {
            self.fail(response, "schemas", "lacks the Error URN");
        }
        if body["status"] != Value::String(reply.status.as_str().to_owned()) {
            self.fail(
                response,
                "status",
                format!("is {}, not the HTTP status as a string", body["status"]),
            );
        }
        if let Some(scim_type) = body.get("scimType") {
            let allowed: &[&str] = match reply.status.as_u16() {
                400 => &[
                    "invalidFilter",
                    "tooMany",
                    "mutability",
                    "invalidSyntax",
                    "invalidPath",
                    "noTarget",
                    "invalidValue",
                    "invalidVers",
                ],
                409 => &["uniqueness"],
                403 => &["sensitive"],
                _ => &[],
            };
            if !scim_type.as_str().is_some_and(|t| allowed.contains(&t)) {
                self.fail(response, "scimType", format!("{scim_type} for this status"));
            }
        }
    }

    fn check_list(&mut self, response: &str, core: &str, body: &Value, asked: &Asked) {
        if !has_urn(&body["schemas"], LIST_URN) {
            self.fail(response, "schemas", "lacks the ListResponse URN");
        }
        for key in ["totalResults", "itemsPerPage", "startIndex"] {
            if !body[key].is_u64() {
                self.fail(response, key, "is not a non-negative integer");
            }
        }
        let resources = match &body["Resources"] {
            Value::Array(resources) => resources.as_slice(),
            Value::Null if body["totalResults"] == 0 => &[],
            other => {
                self.fail(response, "Resources", format!("is not an array: {other}"));
                &[]
            }
        };
        if body["itemsPerPage"].as_u64() != Some(resources.len() as u64) {
            self.fail(
                response,
                "itemsPerPage",
                "differs from the resources returned",
            );
        }
        for (i, resource) in resources.iter().enumerate() {
            self.check_resource(&format!("{response} Resources[{i}]"), core, resource, asked);
        }
    }

    /// One User or Group resource.
    fn check_resource(&mut self, response: &str, core: &str, resource: &Value, asked: &Asked) {
        self.resources += 1;
        let Some(object) = resource.as_object() else {
            self.fail(
                response,
                "(resource)",
                format!("is not an object: {resource}"),
            );
            return;
        };
        let listed: Vec<String> = match object.get("schemas") {
            Some(Value::Array(urns)) if urns.iter().all(Value::is_string) => urns
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect(),
            other => {
                self.fail(
                    response,
                    "schemas",
                    format!("is not an array of URNs: {other:?}"),
                );
                Vec::new()
            }
        };
        if !listed.contains(&core.to_ascii_lowercase()) {
            self.fail(response, "schemas", format!("does not list {core}"));
        }
        let core_attributes: Vec<Attribute> = self
            .schemas
            .attributes(core)
            .unwrap_or_default()
            .iter()
            .cloned()
            .chain(common_attributes().into_iter().filter(|common| {
                // The published definition wins where a schema lists a common attribute.
                find(
                    self.schemas.attributes(core).unwrap_or_default(),
                    &common.name,
                )
                .is_none()
            }))
            .collect();
        for (key, value) in object {
            if key == "schemas" {
                continue;
            }
            if key.to_ascii_lowercase().starts_with("urn:") {
                if !listed.contains(&key.to_ascii_lowercase()) {
                    self.fail(
                        response,
                        key,
                        "an extension the resource does not list in schemas",
                    );
                }
                // An extension this server publishes no schema for is allowed once listed.
                if let Some(attributes) = self.schemas.attributes(key) {
                    let attributes = attributes.to_vec();
                    let Some(extension) = value.as_object() else {
                        self.fail(response, key, "an extension that is not an object");
                        continue;
                    };
                    self.check_object(response, key, Some(key), &attributes, extension, asked);
                }
                continue;
            }
            match find(&core_attributes, key) {
                Some(attribute) => {
                    let attribute = attribute.clone();
                    self.check_selected(response, key, None, &attribute, asked);
                    self.check_value(response, key, &attribute, value, asked, None);
                }
                None => self.fail(
                    response,
                    key,
                    format!("not declared by {core} (nor a common attribute)"),
                ),
            }
        }
        // Returned "always": present in every resource, whatever was asked.
        for attribute in &core_attributes {
            if attribute.returned == "always"
                && !object
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case(&attribute.name))
            {
                self.fail(response, &attribute.name, "returned \"always\" but absent");
            }
        }
    }

    fn check_object(
        &mut self,
        response: &str,
        at: &str,
        urn: Option<&str>,
        attributes: &[Attribute],
        object: &Map<String, Value>,
        asked: &Asked,
    ) {
        for (key, value) in object {
            let here = format!("{at}:{key}");
            match find(attributes, key) {
                Some(attribute) => {
                    let attribute = attribute.clone();
                    self.check_selected(response, &here, urn, &attribute, asked);
                    self.check_value(response, &here, &attribute, value, asked, urn);
                }
                None => self.fail(response, &here, "not declared by the extension's schema"),
            }
        }
        for attribute in attributes {
            if attribute.returned == "always"
                && !object
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case(&attribute.name))
            {
                self.fail(
                    response,
                    &format!("{at}:{}", attribute.name),
                    "returned \"always\" but absent",
                );
            }
        }
    }

    /// `returned` of a top-level attribute, against what was asked.
    fn check_selected(
        &mut self,
        response: &str,
        at: &str,
        urn: Option<&str>,
        attribute: &Attribute,
        asked: &Asked,
    ) {
        let requested = !Asked::naming(&asked.attributes, urn, &attribute.name).is_empty();
        let excluded = Asked::naming(&asked.excluded, urn, &attribute.name)
            .iter()
            .any(|n| n.sub.is_none());
        match attribute.returned.as_str() {
            "never" => self.fail(response, at, "returned \"never\" but present"),
            "always" => {}
            "request" if !requested => {
                self.fail(response, at, "returned \"request\" but present unasked")
            }
            _ if !asked.attributes.is_empty() && !requested => self.fail(
                response,
                at,
                "present, but not among the attributes asked for",
            ),
            _ if excluded => self.fail(response, at, "present, but excluded"),
            _ => {}
        }
    }

    /// Type, multi-valuedness and sub-attributes of one value.
    fn check_value(
        &mut self,
        response: &str,
        at: &str,
        attribute: &Attribute,
        value: &Value,
        asked: &Asked,
        urn: Option<&str>,
    ) {
        if attribute.multi {
            let Some(items) = value.as_array() else {
                self.fail(
                    response,
                    at,
                    format!("multi-valued, but not an array: {value}"),
                );
                return;
            };
            for (i, item) in items.iter().enumerate() {
                self.check_single(response, &format!("{at}[{i}]"), attribute, item, asked, urn);
            }
        } else {
            if value.is_array() {
                self.fail(
                    response,
                    at,
                    format!("single-valued, but an array: {value}"),
                );
                return;
            }
            self.check_single(response, at, attribute, value, asked, urn);
        }
    }

    fn check_single(
        &mut self,
        response: &str,
        at: &str,
        attribute: &Attribute,
        value: &Value,
        asked: &Asked,
        urn: Option<&str>,
    ) {
        let problem = match attribute.ty.as_str() {
            "string" if !value.is_string() => Some("not a string"),
            "boolean" if !value.is_boolean() => Some("not a boolean"),
            "integer" if !(value.is_i64() || value.is_u64()) => Some("not an integer"),
            "decimal" if !value.is_number() => Some("not a decimal number"),
            "dateTime" if !value.as_str().is_some_and(is_date_time) => {
                Some("not an xsd:dateTime string")
            }
            "reference" if value.as_str().is_none_or(str::is_empty) => {
                Some("not a reference (a non-empty URI string)")
            }
            "binary" if !value.as_str().is_some_and(is_base64) => Some("not base64 binary"),
            "complex" if !value.is_object() => Some("not a complex (object) value"),
            _ => None,
        };
        if let Some(problem) = problem {
            self.fail(
                response,
                at,
                format!("{problem} ({} expected): {value}", attribute.ty),
            );
            return;
        }
        let Some(object) = value.as_object() else {
            return;
        };
        // Sub-attributes: declared, typed, and selected as asked.
        let chosen: Vec<String> = Asked::naming(&asked.attributes, urn, &attribute.name)
            .iter()
            .map(|n| n.sub.clone())
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        let excluded: Vec<String> = Asked::naming(&asked.excluded, urn, &attribute.name)
            .iter()
            .filter_map(|n| n.sub.clone())
            .collect();
        for (key, sub_value) in object {
            let here = format!("{at}.{key}");
            let Some(sub) = attribute.sub_attribute(key) else {
                self.fail(
                    response,
                    &here,
                    format!("not a sub-attribute of {}", attribute.name),
                );
                continue;
            };
            let lower = key.to_ascii_lowercase();
            match sub.returned.as_str() {
                "never" => self.fail(response, &here, "returned \"never\" but present"),
                "always" => {}
                _ if !chosen.is_empty() && !chosen.contains(&lower) => self.fail(
                    response,
                    &here,
                    "present, but not among the attributes asked for",
                ),
                _ if excluded.contains(&lower) => {
                    self.fail(response, &here, "present, but excluded")
                }
                _ => {}
            }
            let sub = sub.clone();
            self.check_single(response, &here, &sub, sub_value, &Asked::default(), None);
        }
    }
}

fn has_urn(schemas: &Value, urn: &str) -> bool {
    schemas.as_array().is_some_and(|urns| {
        urns.iter()
            .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn)))
    })
}

/// xsd:dateTime as RFC 7643 §2.3.5 uses it: `2024-01-02T03:04:05(.fff)(Z|±hh:mm)`.
fn is_date_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|part| part.iter().all(u8::is_ascii_digit))
    };
    let fixed = digits(0..4)
        && bytes.get(4) == Some(&b'-')
        && digits(5..7)
        && bytes.get(7) == Some(&b'-')
        && digits(8..10)
        && bytes.get(10) == Some(&b'T')
        && digits(11..13)
        && bytes.get(13) == Some(&b':')
        && digits(14..16)
        && bytes.get(16) == Some(&b':')
        && digits(17..19);
    if !fixed {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return false;
        }
        rest = &fraction[end..];
    }
    rest == "Z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':'
            && rest[1..3].bytes().all(|b| b.is_ascii_digit())
            && rest[4..6].bytes().all(|b| b.is_ascii_digit()))
}

fn is_base64(text: &str) -> bool {
    !text.is_empty()
        && text.len().is_multiple_of(4)
        && text
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        && text.len() - text.trim_end_matches('=').len() <= 2
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Driving the gateway with every response checked.

/// A client whose every response goes through the validator.
struct Session<'a> {
    scim: &'a ScimClient,
    conformance: Conformance<'a>,
}

impl<'a> Session<'a> {
    fn new(scim: &'a ScimClient, schemas: &'a Schemas) -> Self {
        Self {
            scim,
            conformance: Conformance::new(schemas),
        }
    }

    /// Sends, checks the response against the schemas (as `shape`, or as an error when it is a
    /// 4xx/5xx), and records a failure unless it has status `expected`.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expected: u16,
        shape: Shape,
    ) -> Reply {
        let reply = self.scim.send(method.clone(), path, body).await;
        let actual = if reply.status.as_u16() >= 400 {
            Shape::Error
        } else {
            shape
        };
        self.conformance.check(&method, path, &reply, actual);
        if reply.status != expected {
            self.conformance.fail(
                &format!("{method} {path} → {}", reply.status),
                "(status)",
                format!("expected {expected}: {}", short(&reply.raw)),
            );
        }
        reply
    }

    fn fail(&mut self, response: &str, attribute: &str, problem: impl std::fmt::Display) {
        self.conformance.fail(response, attribute, problem);
    }

    /// Asserts that nothing failed and that enough was checked to mean something.
    fn finish(self, at_least: usize) {
        let Conformance {
            failures,
            responses,
            resources,
            ..
        } = self.conformance;
        assert!(
            failures.is_empty(),
            "{} conformance failures in {responses} responses:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(
            responses >= at_least,
            "only {responses} responses checked (expected at least {at_least})"
        );
        assert!(
            resources >= at_least / 2,
            "only {resources} resources checked"
        );
        eprintln!("{responses} responses and {resources} resources conform");
    }
}

fn short(text: &str) -> String {
    let mut out: String = text.chars().take(400).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

fn id_of(reply: &Reply) -> String {
    reply.body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {}", reply.raw))
        .to_owned()
}

fn filter(expression: &str) -> String {
    format!("filter={}", encode_query_value(expression))
}

fn patch(operations: Value) -> Value {
    json!({"schemas": [PATCH_URN], "Operations": operations})
}

/// Path and query of a simulator-built URL, relative to the SCIM base.
fn relative(base: &reqwest::Url, url: &reqwest::Url) -> String {
    let path = url
        .path()
        .strip_prefix(base.path().trim_end_matches('/'))
        .unwrap_or(url.path());
    match url.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// (1) Entra's request sequence, in both PATCH dialects.

async fn entra_cycle(session: &mut Session<'_>, base: &reqwest::Url, shape: PatchShape) {
    let tag = match shape {
        PatchShape::Default => "default",
        PatchShape::AadOptscim062020 => "aad",
    };
    let get = Method::GET;
    // Test Connection: a random GUID as the matching value.
    let probe = entra::user_query_url(base, "8d7a1b43-0f3e-4c6a-9b8e-2f0e6c1d9a77").unwrap();
    let reply = session
        .send(
            get.clone(),
            &relative(base, &probe),
            None,
            200,
            Shape::UserList,
        )
        .await;
    assert_eq!(reply.body["totalResults"], 0);

    let image = |who: &str| UserImage {
        user_name: Some(format!("{who}.{tag}@contoso.example")),
        external_id: Some(format!("{who}-{tag}")),
        display_name: Some(format!("{who} {tag}")),
        given_name: Some(who.to_owned()),
        family_name: Some(tag.to_owned()),
        title: None,
        work_email: Some(format!("{who}.{tag}@mail.contoso.example")),
        department: Some("Engines".to_owned()),
        employee_number: None,
        active: Some(true),
    };
    let mut ids = Vec::new();
    for who in ["manager", "report"] {
        let desired = image(who);
        // The matching query before every create.
        let query = entra::user_query_url(base, desired.user_name.as_deref().unwrap()).unwrap();
        let found = session
            .send(
                get.clone(),
                &relative(base, &query),
                None,
                200,
                Shape::UserList,
            )
            .await;
        assert_eq!(found.body["totalResults"], 0, "{}", found.raw);
        let created = session
            .send(
                Method::POST,
                "/Users",
                Some(&entra::user_create_body(&desired)),
                201,
                Shape::User,
            )
            .await;
        let id = id_of(&created);
        session
            .send(get.clone(), &format!("/Users/{id}"), None, 200, Shape::User)
            .await;
        let found = session
            .send(
                get.clone(),
                &relative(base, &query),
                None,
                200,
                Shape::UserList,
            )
            .await;
        assert_eq!(found.body["totalResults"], 1, "{}", found.raw);
        ids.push(id);
    }
    let (manager, report) = (ids[0].clone(), ids[1].clone());

    // Attribute changes: some set for the first time (Add), some changed (Replace).
    let current = session
        .send(
            get.clone(),
            &format!("/Users/{report}"),
            None,
            200,
            Shape::User,
        )
        .await;
    let current = UserImage::from_resource(&current.body);
    let desired = UserImage {
        user_name: Some(format!("renamed.{tag}@contoso.example")),
        external_id: Some(format!("renamed-{tag}")),
        display_name: Some(format!("Renamed {tag}")),
        given_name: Some("Ada".to_owned()),
        family_name: Some("Lovelace".to_owned()),
        title: Some("Engineer".to_owned()),
        work_email: Some(format!("ada.{tag}@mail.contoso.example")),
        department: Some("Analytical".to_owned()),
        employee_number: Some("1815".to_owned()),
        active: Some(true),
    };
    let changes = entra::diff_user(&current, &desired);
    assert!(changes.len() >= 9, "{changes:?}");
    let body = entra::user_patch_body(shape, &changes).unwrap();
    let patched = session
        .send(
            Method::PATCH,
            &format!("/Users/{report}"),
            Some(&body),
            200,
            Shape::User,
        )
        .await;
    assert_eq!(
        UserImage::from_resource(&patched.body),
        desired,
        "{}",
        patched.raw
    );

    // A custom extension attribute, as Entra maps one (entra-scim.md Q7): kept under its URN,
    // which the resource then lists in `schemas`.
    let custom = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    let op = match shape {
        PatchShape::Default => "Add",
        PatchShape::AadOptscim062020 => "add",
    };
    let body = patch(json!([{"op": op, "path": format!("{custom}:tag"), "value": "blue"}]));
    let tagged = session
        .send(
            Method::PATCH,
            &format!("/Users/{report}"),
            Some(&body),
            200,
            Shape::User,
        )
        .await;
    assert_eq!(tagged.body[custom]["tag"], "blue", "{}", tagged.raw);

    // The manager, in the second round; then cleared.
    let body = entra::manager_patch_body(shape, None, Some(&manager)).unwrap();
    let with_manager = session
        .send(
            Method::PATCH,
            &format!("/Users/{report}"),
            Some(&body),
            200,
            Shape::User,
        )
        .await;
    assert_eq!(
        entra::manager_from_resource(&with_manager.body).as_deref(),
        Some(manager.as_str())
    );
    let body = entra::manager_patch_body(shape, Some(&manager), None).unwrap();
    let without = session
        .send(
            Method::PATCH,
            &format!("/Users/{report}"),
            Some(&body),
            200,
            Shape::User,
        )
        .await;
    assert_eq!(entra::manager_from_resource(&without.body), None);

    // Disable: a PATCH of active; the user still answers the matching query.
    let disabled = UserImage {
        active: Some(false),
        ..desired.clone()
    };
    let body = entra::user_patch_body(shape, &entra::diff_user(&desired, &disabled)).unwrap();
    let reply = session
        .send(
            Method::PATCH,
            &format!("/Users/{report}"),
            Some(&body),
            200,
            Shape::User,
        )
        .await;
    assert_eq!(reply.body["active"], false);
    let query = entra::user_query_url(base, desired.user_name.as_deref().unwrap()).unwrap();
    let found = session
        .send(
            get.clone(),
            &relative(base, &query),
            None,
            200,
            Shape::UserList,
        )
        .await;
    assert_eq!(found.body["Resources"][0]["active"], false);

    // Groups: the query, created empty, read without members, renamed, filled, emptied.
    let name = format!("Engineers {tag}");
    let query = entra::group_query_url(base, &name).unwrap();
    session
        .send(
            get.clone(),
            &relative(base, &query),
            None,
            200,
            Shape::GroupList,
        )
        .await;
    let created = session
        .send(
            Method::POST,
            "/Groups",
            Some(&entra::group_create_body(&name, &format!("group-{tag}"))),
            201,
            Shape::Group,
        )
        .await;
    let group = id_of(&created);
    let reply = session
        .send(
            get.clone(),
            &format!("/Groups/{group}?excludedAttributes=members"),
            None,
            200,
            Shape::Group,
        )
        .await;
    assert!(reply.body.get("members").is_none());
    let renamed = format!("Analysts {tag}");
    let body =
        entra::group_attributes_patch_body(shape, Some(&renamed), Some(&format!("group-{tag}-2")))
            .unwrap();
    session
        .send(
            Method::PATCH,
            &format!("/Groups/{group}"),
            Some(&body),
            204,
            Shape::Empty,
        )
        .await;
    let body = entra::members_add_body(shape, &[manager.clone(), report.clone()]);
    session
        .send(
            Method::PATCH,
            &format!("/Groups/{group}"),
            Some(&body),
            204,
            Shape::Empty,
        )
        .await;
    let full = session
        .send(
            get.clone(),
            &format!("/Groups/{group}"),
            None,
            200,
            Shape::Group,
        )
        .await;
    assert_eq!(full.body["members"].as_array().map(Vec::len), Some(2));
    let body = entra::members_remove_body(shape, std::slice::from_ref(&report));
    session
        .send(
            Method::PATCH,
            &format!("/Groups/{group}"),
            Some(&body),
            204,
            Shape::Empty,
        )
        .await;
    let query = entra::group_query_url(base, &renamed).unwrap();
    let found = session
        .send(
            get.clone(),
            &relative(base, &query),
            None,
            200,
            Shape::GroupList,
        )
        .await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.raw);
    session
        .send(
            get.clone(),
            &format!(
                "/Groups?{}",
                filter(&format!("displayName eq \"{renamed}\""))
            ),
            None,
            200,
            Shape::GroupList,
        )
        .await;

    // Hard deletes; the deleted user is a 404 SCIM error.
    for path in [
        format!("/Users/{report}"),
        format!("/Groups/{group}"),
        format!("/Users/{manager}"),
    ] {
        session
            .send(Method::DELETE, &path, None, 204, Shape::Empty)
            .await;
    }
    session
        .send(get, &format!("/Users/{report}"), None, 404, Shape::Error)
        .await;
}

#[tokio::test]
async fn entra_sequence_responses_conform_to_the_published_schemas() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("conformance-entra").await;
    let schemas = Schemas::fetch(&scim).await;
    let base = reqwest::Url::parse(&stack.scim_base()).unwrap();
    let mut session = Session::new(&scim, &schemas);
    for shape in [PatchShape::Default, PatchShape::AadOptscim062020] {
        entra_cycle(&mut session, &base, shape).await;
    }
    session.finish(50);
    stack.stop().await;
}

// ---------------------------------------------------------------------------------------------
// (2) The RFC operations on every attribute of the User schema and its enterprise extension.

/// Values for attributes, generated from their published definitions.
struct Values {
    /// `…/scim/v2`, for references to this server's resources.
    base: String,
    /// The user every `manager` points at.
    manager: String,
    serial: usize,
}

impl Values {
    /// A value for `attribute` (whole: an array for a multi-valued one). `variant` 0 and 1
    /// give different values (and, for multi-valued attributes, different `type`s).
    fn of(&mut self, attribute: &Attribute, variant: usize) -> Value {
        let one = self.single(attribute, variant, None);
        if attribute.multi {
            Value::Array(vec![one])
        } else {
            one
        }
    }

    fn single(&mut self, attribute: &Attribute, variant: usize, parent: Option<&str>) -> Value {
        self.serial += 1;
        let name = attribute.name.as_str();
        let at = match parent {
            Some(parent) => format!("{parent}.{name}"),
            None => name.to_owned(),
        };
        match attribute.ty.as_str() {
            "complex" => {
                let mut object = Map::new();
                for sub in attribute.sub.iter().filter(|s| s.writable()) {
                    let value = self.single(sub, variant, Some(&at));
                    object.insert(sub.name.clone(), value);
                }
                Value::Object(object)
            }
            "boolean" if name == "primary" => Value::Bool(true),
            "boolean" => Value::Bool(variant == 0),
            "integer" => json!(variant),
            "decimal" => json!(variant as f64 + 0.5),
            "dateTime" => json!(format!("2024-0{}-02T03:04:05Z", variant + 1)),
            "binary" => json!(base64(format!("{at} {variant}").as_bytes())),
            "reference" if at == "manager.$ref" => {
                json!(format!("{}/Users/{}", self.base, self.manager))
            }
            "reference" => json!(format!("https://conformance.example/{at}/{variant}")),
            _ if !attribute.canonical.is_empty() => {
                json!(attribute.canonical[variant % attribute.canonical.len()])
            }
            _ if at == "userName" => json!(format!("user-{}@conformance.example", self.serial)),
            _ if at == "manager.value" => json!(self.manager),
            _ if at == "emails.value" => json!(format!("mail-{variant}@conformance.example")),
            _ => json!(format!("{at} {variant}")),
        }
    }

    /// A User body with a value for every attribute a client may write (`password` included),
    /// the enterprise extension's too.
    fn user(&mut self, schemas: &Schemas, variant: usize) -> Value {
        let mut body = Map::new();
        body.insert("schemas".to_owned(), json!([USER_URN, ENTERPRISE_URN]));
        for attribute in schemas.user().iter().filter(|a| a.writable()) {
            let value = self.of(attribute, variant);
            body.insert(attribute.name.clone(), value);
        }
        let mut enterprise = Map::new();
        for attribute in schemas.enterprise().iter().filter(|a| a.writable()) {
            let value = self.of(attribute, variant);
            enterprise.insert(attribute.name.clone(), value);
        }
        body.insert(ENTERPRISE_URN.to_owned(), Value::Object(enterprise));
        Value::Object(body)
    }
}

fn get_ci<'v>(object: &'v Value, key: &str) -> Option<&'v Value> {
    let object = object.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Whether `returned` holds what was written: every written sub-attribute of a complex value,
/// every written element of a multi-valued one (and, for a replace, nothing else).
fn reflects(
    attribute: &Attribute,
    written: &Value,
    returned: Option<&Value>,
    whole: bool,
) -> Result<(), String> {
    if attribute.returned == "never" {
        return match returned {
            Some(_) => Err("returned \"never\" but present".to_owned()),
            None => Ok(()),
        };
    }
    let Some(returned) = returned else {
        return Err(format!("written as {written} but absent"));
    };
    if attribute.multi {
        let written = written
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![written.clone()]);
        let Some(items) = returned.as_array() else {
            return Err(format!("not an array: {returned}"));
        };
        for element in &written {
            if !items
                .iter()
                .any(|item| element_matches(attribute, element, item))
            {
                return Err(format!("element {element} missing from {returned}"));
            }
        }
        if whole && items.len() != written.len() {
            return Err(format!(
                "replaced by {} values, holds {returned}",
                written.len()
            ));
        }
        return Ok(());
    }
    if element_matches(attribute, written, returned) {
        Ok(())
    } else {
        Err(format!("written as {written}, returned as {returned}"))
    }
}

fn element_matches(attribute: &Attribute, written: &Value, returned: &Value) -> bool {
    match written.as_object() {
        Some(fields) if attribute.ty == "complex" => fields.iter().all(|(key, value)| {
            let readable = attribute
                .sub_attribute(key)
                .is_none_or(|sub| sub.returned != "never");
            !readable || get_ci(returned, key) == Some(value)
        }),
        _ => written == returned,
    }
}

/// Checks that a created or replaced user holds every attribute of the body it was sent.
fn check_round_trip(
    session: &mut Session<'_>,
    response: &str,
    schemas: &Schemas,
    sent: &Value,
    returned: &Value,
) {
    let mut checked = 0;
    for (urn, attributes, written, held) in [
        (USER_URN, schemas.user(), sent, returned),
        (
            ENTERPRISE_URN,
            schemas.enterprise(),
            &sent[ENTERPRISE_URN],
            &returned[ENTERPRISE_URN],
        ),
    ] {
        for attribute in attributes.iter().filter(|a| a.writable()) {
            let Some(value) = get_ci(written, &attribute.name) else {
                continue;
            };
            checked += 1;
            if let Err(problem) = reflects(attribute, value, get_ci(held, &attribute.name), true) {
                session.fail(response, &format!("{urn}:{}", attribute.name), problem);
            }
        }
    }
    assert!(
        checked >= 20,
        "{response}: only {checked} attributes were sent"
    );
}

/// `urn:…:name` for an extension attribute, `name` for a core one.
fn qualified(urn: &str, name: &str) -> String {
    if urn == USER_URN {
        name.to_owned()
    } else {
        format!("{urn}:{name}")
    }
}

fn held<'v>(resource: &'v Value, urn: &str, name: &str) -> Option<&'v Value> {
    if urn == USER_URN {
        get_ci(resource, name)
    } else {
        get_ci(resource, urn).and_then(|extension| get_ci(extension, name))
    }
}

#[tokio::test]
async fn rfc_operations_on_every_user_attribute_conform() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("conformance-rfc").await;
    let schemas = Schemas::fetch(&scim).await;
    let mut session = Session::new(&scim, &schemas);
    let boss = session
        .send(
            Method::POST,
            "/Users",
            Some(&json!({"userName": "boss@conformance.example"})),
            201,
            Shape::User,
        )
        .await;
    let mut values = Values {
        base: stack.scim_base(),
        manager: id_of(&boss),
        serial: 0,
    };

    // Create with every attribute, then read it back every way there is.
    let body = values.user(&schemas, 0);
    let created = session
        .send(Method::POST, "/Users", Some(&body), 201, Shape::User)
        .await;
    let id = id_of(&created);
    check_round_trip(
        &mut session,
        "POST /Users → 201",
        &schemas,
        &body,
        &created.body,
    );
    let got = session
        .send(Method::GET, &format!("/Users/{id}"), None, 200, Shape::User)
        .await;
    check_round_trip(
        &mut session,
        &format!("GET /Users/{id} → 200"),
        &schemas,
        &body,
        &got.body,
    );
    let user_name = body["userName"].as_str().unwrap().to_owned();
    let by_name = filter(&format!("userName eq \"{user_name}\""));
    let department = format!("{ENTERPRISE_URN}:department");
    for (query, must_hold) in [
        (by_name.clone(), vec!["userName", "emails", "meta"]),
        (
            format!("{by_name}&attributes=userName,emails"),
            vec!["id", "userName", "emails"],
        ),
        (
            format!(
                "{by_name}&attributes=name.givenName,{}",
                encode_query_value(&department)
            ),
            vec!["id", "name", ENTERPRISE_URN],
        ),
        (
            format!(
                "{by_name}&excludedAttributes=emails,name.familyName,id,{}",
                encode_query_value(&department)
            ),
            vec!["id", "name", "phoneNumbers"],
        ),
        (
            "startIndex=1&count=2&attributes=userName".to_owned(),
            vec!["id", "userName"],
        ),
        (
            format!("{by_name}&attributes=password,displayName"),
            vec!["id", "displayName"],
        ),
        (format!("{by_name}&attributes=groups"), vec!["id"]),
    ] {
        let path = format!("/Users?{query}");
        let list = session
            .send(Method::GET, &path, None, 200, Shape::UserList)
            .await;
        let first = &list.body["Resources"][0];
        for key in must_hold {
            if get_ci(first, key).is_none() {
                session.fail(
                    &format!("GET {path}"),
                    key,
                    "absent, though asked for or default",
                );
            }
        }
    }
    for query in [
        "attributes=displayName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "excludedAttributes=meta,phoneNumbers,name",
        "attributes=emails.value,addresses.locality",
        "excludedAttributes=emails.type,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    ] {
        let path = format!(
            "/Users/{id}?{}",
            query.replace(':', "%3A").replace(',', "%2C")
        );
        session
            .send(Method::GET, &path, None, 200, Shape::User)
            .await;
    }

    // Replace (PUT) with every attribute changed.
    let body = values.user(&schemas, 1);
    let replaced = session
        .send(
            Method::PUT,
            &format!("/Users/{id}"),
            Some(&body),
            200,
            Shape::User,
        )
        .await;
    check_round_trip(
        &mut session,
        &format!("PUT /Users/{id} → 200"),
        &schemas,
        &body,
        &replaced.body,
    );
    if replaced.body["id"] != id.as_str() {
        session.fail(&format!("PUT /Users/{id}"), "id", "changed by a replace");
    }

    // PATCH add, replace and remove of every attribute and sub-attribute, on a user created
    // with nothing but its userName: what it holds then is what "unassigned" reads as.
    let minimal = session
        .send(
            Method::POST,
            "/Users",
            Some(&json!({"userName": "minimal@conformance.example"})),
            201,
            Shape::User,
        )
        .await;
    let minimal_id = id_of(&minimal);
    let target = format!("/Users/{minimal_id}");
    let mut covered = Vec::new();
    for (urn, attributes) in [
        (USER_URN, schemas.user().to_vec()),
        (ENTERPRISE_URN, schemas.enterprise().to_vec()),
    ] {
        for attribute in attributes.iter().filter(|a| a.writable()) {
            let path = qualified(urn, &attribute.name);
            let unassigned = held(&minimal.body, urn, &attribute.name).cloned();
            for (op, variant) in [("add", 0), ("replace", 1)] {
                let value = values.of(attribute, variant);
                let reply = session
                    .send(
                        Method::PATCH,
                        &target,
                        Some(&patch(json!([{"op": op, "path": path, "value": value}]))),
                        200,
                        Shape::User,
                    )
                    .await;
                if let Err(problem) = reflects(
                    attribute,
                    &value,
                    held(&reply.body, urn, &attribute.name),
                    op == "replace",
                ) {
                    session.fail(&format!("PATCH {target} [{op} {path}]"), &path, problem);
                }
            }
            // Sub-attributes: by a dotted path on a single complex attribute, through a value
            // filter on the element of a multi-valued one (which now holds variant 1).
            if attribute.ty == "complex" {
                let element = values.of(attribute, 1);
                let filter_on = attribute.sub_attribute("type").and_then(|_| {
                    element
                        .as_array()
                        .and_then(|items| items.first())
                        .and_then(|item| item["type"].as_str())
                        .map(str::to_owned)
                });
                for sub in attribute
                    .sub
                    .iter()
                    .filter(|s| s.writable() && s.name != "type")
                {
                    let sub_path = match (&filter_on, attribute.multi) {
                        (_, false) => format!("{path}.{}", sub.name),
                        (Some(kind), true) => format!("{path}[type eq \"{kind}\"].{}", sub.name),
                        (None, true) => continue,
                    };
                    for (op, variant) in [("add", 0), ("replace", 1), ("remove", 1)] {
                        let value = values.single(sub, variant, Some(&attribute.name));
                        let operation = if op == "remove" {
                            json!({"op": op, "path": sub_path})
                        } else {
                            json!({"op": op, "path": sub_path, "value": value})
                        };
                        let reply = session
                            .send(
                                Method::PATCH,
                                &target,
                                Some(&patch(json!([operation]))),
                                200,
                                Shape::User,
                            )
                            .await;
                        let whole = held(&reply.body, urn, &attribute.name);
                        let element = match (whole, attribute.multi) {
                            (Some(Value::Array(items)), true) => items
                                .iter()
                                .find(|item| item["type"].as_str() == filter_on.as_deref()),
                            (whole, _) => whole,
                        };
                        let found = element.and_then(|e| get_ci(e, &sub.name));
                        let outcome = if op == "remove" {
                            match found {
                                Some(left) => Err(format!("still {left} after remove")),
                                None => Ok(()),
                            }
                        } else {
                            reflects(sub, &value, found, true)
                        };
                        if let Err(problem) = outcome {
                            session.fail(
                                &format!("PATCH {target} [{op} {sub_path}]"),
                                &sub_path,
                                problem,
                            );
                        }
                    }
                }
            }
            // Remove: unassigned again, unless the attribute is required (RFC 7644 §3.5.2.2:
            // 400 mutability).
            let reply = if attribute.required {
                let reply = session
                    .send(
                        Method::PATCH,
                        &target,
                        Some(&patch(json!([{"op": "remove", "path": path}]))),
                        400,
                        Shape::Error,
                    )
                    .await;
                if reply.body["scimType"] != "mutability" {
                    session.fail(
                        &format!("PATCH {target} [remove {path}]"),
                        &path,
                        format!(
                            "a required attribute's removal must be 400 mutability (RFC 7644 §3.5.2.2): {}",
                            reply.raw
                        ),
                    );
                }
                reply
            } else {
                session
                    .send(
                        Method::PATCH,
                        &target,
                        Some(&patch(json!([{"op": "remove", "path": path}]))),
                        200,
                        Shape::User,
                    )
                    .await
            };
            if !attribute.required && held(&reply.body, urn, &attribute.name) != unassigned.as_ref()
            {
                session.fail(
                    &format!("PATCH {target} [remove {path}]"),
                    &path,
                    format!(
                        "reads {:?} after remove; a user created without it reads {unassigned:?}",
                        held(&reply.body, urn, &attribute.name)
                    ),
                );
            }
            covered.push(path);
        }
    }
    for expected in [
        "userName",
        "name",
        "emails",
        "addresses",
        "x509Certificates",
        "password",
        "active",
    ] {
        assert!(
            covered.iter().any(|c| c == expected),
            "{expected} not covered: {covered:?}"
        );
    }
    for expected in ["employeeNumber", "manager"] {
        assert!(
            covered.contains(&format!("{ENTERPRISE_URN}:{expected}")),
            "{expected} not covered"
        );
    }
    let user_attributes = schemas.user().iter().filter(|a| a.writable()).count()
        + schemas.enterprise().iter().filter(|a| a.writable()).count();
    assert_eq!(covered.len(), user_attributes);

    session.finish(200);
    stack.stop().await;
}

// ---------------------------------------------------------------------------------------------
// returned "never": sent every way a client can, never seen again.

#[tokio::test]
async fn attributes_returned_never_are_never_returned() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("conformance-never").await;
    let schemas = Schemas::fetch(&scim).await;
    let never: Vec<Attribute> = schemas
        .user()
        .iter()
        .filter(|a| a.returned == "never")
        .cloned()
        .collect();
    assert!(
        never.iter().any(|a| a.name == "password"),
        "the User schema publishes password as returned \"never\" (RFC 7643 §4.1.1)"
    );
    let mut session = Session::new(&scim, &schemas);
    let mut secrets = Vec::new();
    let mut serial = 0;
    let mut secret = |secrets: &mut Vec<String>| {
        serial += 1;
        let secret = format!("Secr3t-{serial}-Pw!");
        secrets.push(secret.clone());
        secret
    };
    let mut replies = Vec::new();
    for attribute in &never {
        let name = attribute.name.as_str();
        let qualified = format!("{USER_URN}:{name}");
        // POST: plain, URN-qualified, inside the core URN object, in another case.
        let mut ids = Vec::new();
        for (i, shape) in ["plain", "qualified", "core_object", "upper_case"]
            .iter()
            .enumerate()
        {
            let value = secret(&mut secrets);
            let user_name = format!("never-{name}-{i}@conformance.example");
            let body = match *shape {
                "plain" => json!({"userName": user_name, name: value}),
                "qualified" => json!({"userName": user_name, qualified.clone(): value}),
                "core_object" => json!({"userName": user_name, USER_URN: {name: value}}),
                _ => json!({"userName": user_name, name.to_uppercase(): value}),
            };
            let reply = session
                .send(Method::POST, "/Users", Some(&body), 201, Shape::User)
                .await;
            ids.push(id_of(&reply));
            replies.push(reply);
        }
        let id = ids[0].clone();
        // PUT: plain and URN-qualified.
        for body in [
            json!({"userName": format!("never-{name}-0@conformance.example"), name: secret(&mut secrets)}),
            json!({"userName": format!("never-{name}-0@conformance.example"), qualified.clone(): secret(&mut secrets)}),
        ] {
            replies.push(
                session
                    .send(
                        Method::PUT,
                        &format!("/Users/{id}"),
                        Some(&body),
                        200,
                        Shape::User,
                    )
                    .await,
            );
        }
        // PATCH: add and replace by path (plain and qualified), and path-less.
        for operation in [
            json!({"op": "add", "path": name, "value": secret(&mut secrets)}),
            json!({"op": "replace", "path": name, "value": secret(&mut secrets)}),
            json!({"op": "Replace", "path": qualified, "value": secret(&mut secrets)}),
            json!({"op": "replace", "value": {name: secret(&mut secrets)}}),
            json!({"op": "add", "value": {qualified.clone(): secret(&mut secrets)}}),
            json!({"op": "replace", "value": {USER_URN: {name: secret(&mut secrets)}}}),
        ] {
            replies.push(
                session
                    .send(
                        Method::PATCH,
                        &format!("/Users/{id}"),
                        Some(&patch(json!([operation]))),
                        200,
                        Shape::User,
                    )
                    .await,
            );
        }
        // Reads, asking for it by name too.
        let by_name = filter(&format!(
            "userName eq \"never-{name}-0@conformance.example\""
        ));
        for path in [
            format!("/Users/{id}"),
            format!("/Users/{id}?attributes={name}"),
            format!(
                "/Users/{}?attributes={}",
                ids[1],
                encode_query_value(&qualified)
            ),
            format!("/Users?{by_name}"),
            format!("/Users?{by_name}&attributes={name},userName"),
            "/Users?count=50".to_owned(),
        ] {
            let shape = if path.starts_with("/Users?") {
                Shape::UserList
            } else {
                Shape::User
            };
            replies.push(session.send(Method::GET, &path, None, 200, shape).await);
        }
    }
    // The validator saw no attribute returned "never"; nor does any value appear anywhere.
    assert!(secrets.len() >= 12, "{secrets:?}");
    for reply in &replies {
        for value in &secrets {
            assert!(
                !reply.raw.contains(value.as_str()),
                "a value written to a returned-never attribute came back: {}",
                reply.raw
            );
        }
    }
    session.finish(15);
    stack.stop().await;
}

// ---------------------------------------------------------------------------------------------
// mutability readOnly: a client's write is refused (400 mutability) or ignored.

/// Every readOnly attribute a User has, as (schema URN, dotted path, definition): the
/// schemas' own and the common `id` and `meta` (with their sub-attributes).
fn read_only_attributes(schemas: &Schemas) -> Vec<(&'static str, String, Attribute)> {
    let mut out = Vec::new();
    let core: Vec<Attribute> = schemas
        .user()
        .iter()
        .cloned()
        .chain(common_attributes())
        .collect();
    for (urn, attributes) in [
        (USER_URN, core),
        (ENTERPRISE_URN, schemas.enterprise().to_vec()),
    ] {
        for attribute in &attributes {
            if attribute.mutability == "readOnly" {
                out.push((urn, attribute.name.clone(), attribute.clone()));
            }
            for sub in &attribute.sub {
                if sub.mutability == "readOnly" || attribute.mutability == "readOnly" {
                    out.push((urn, format!("{}.{}", attribute.name, sub.name), sub.clone()));
                }
            }
        }
    }
    out
}

/// A value for a readOnly attribute, sub-attributes and all.
fn any_value(attribute: &Attribute, variant: usize, at: &str) -> Value {
    let one = match attribute.ty.as_str() {
        "complex" => Value::Object(
            attribute
                .sub
                .iter()
                .map(|sub| {
                    (
                        sub.name.clone(),
                        any_value(sub, variant, &format!("{at}.{}", sub.name)),
                    )
                })
                .collect(),
        ),
        "boolean" => Value::Bool(variant == 0),
        "dateTime" => json!("2001-02-03T04:05:06Z"),
        "reference" => json!(format!("https://client.example/{at}/{variant}")),
        _ => json!(format!("client-{}-{variant}", at.replace('.', "-"))),
    };
    if attribute.multi && !at.contains('.') {
        Value::Array(vec![one])
    } else {
        one
    }
}

/// The value at a dotted path (`meta.created`) of `urn`'s part of a resource.
fn at_path<'v>(resource: &'v Value, urn: &str, path: &str) -> Option<&'v Value> {
    let (name, sub) = match path.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (path, None),
    };
    let value = held(resource, urn, name)?;
    match sub {
        None => Some(value),
        Some(sub) => match value {
            Value::Array(items) => items.iter().find_map(|item| get_ci(item, sub)),
            other => get_ci(other, sub),
        },
    }
}

#[tokio::test]
async fn read_only_attributes_cannot_be_set_by_a_client() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("conformance-read-only").await;
    let schemas = Schemas::fetch(&scim).await;
    let read_only = read_only_attributes(&schemas);
    let names: Vec<&str> = read_only.iter().map(|(_, path, _)| path.as_str()).collect();
    for expected in ["id", "meta", "meta.created", "groups", "groups.value"] {
        assert!(
            names.contains(&expected),
            "{expected} is not readOnly: {names:?}"
        );
    }
    let mut session = Session::new(&scim, &schemas);
    let boss = session
        .send(
            Method::POST,
            "/Users",
            Some(&json!({"userName": "ro-boss@conformance.example"})),
            201,
            Shape::User,
        )
        .await;
    let boss = id_of(&boss);
    let mut attempts = 0;
    for (n, (urn, path, attribute)) in read_only.iter().enumerate() {
        let written = any_value(attribute, 0, path);
        let (name, sub) = match path.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (path.as_str(), None),
        };
        // The value as a body attribute: `{"meta": {"created": …}}` for a sub-attribute; the
        // manager also gets its (writable) id so that the object is kept.
        let mut object = match sub {
            Some(sub) => json!({ sub: written.clone() }),
            None => written.clone(),
        };
        if name == "manager"
            && let Some(fields) = object.as_object_mut()
        {
            fields.insert("value".to_owned(), json!(boss));
        }
        let user_name = format!("ro-{n}@conformance.example");
        let mut body = json!({"userName": user_name, "schemas": [USER_URN, ENTERPRISE_URN]});
        if *urn == USER_URN {
            body[name] = object.clone();
        } else {
            body[*urn] = json!({ name: object.clone() });
        }
        let wrote = |resource: &Value| at_path(resource, urn, path) == Some(&written);

        // POST: ignored (RFC 7644 §3.3).
        let created = session
            .send(Method::POST, "/Users", Some(&body), 201, Shape::User)
            .await;
        attempts += 1;
        if wrote(&created.body) {
            session.fail(
                "POST /Users → 201",
                path,
                format!("a client set readOnly {path} to {written}"),
            );
        }
        let id = created.body["id"].as_str().unwrap_or_default().to_owned();
        if id.is_empty() {
            continue;
        }
        let target = format!("/Users/{id}");
        // PUT: ignored (RFC 7644 §3.5.1); the id stays the one in the path.
        let replaced = session
            .send(Method::PUT, &target, Some(&body), 200, Shape::User)
            .await;
        attempts += 1;
        if wrote(&replaced.body) || replaced.body["id"] != id.as_str() {
            session.fail(
                &format!("PUT {target} → 200"),
                path,
                format!("a client set readOnly {path} to {written}"),
            );
        }
        // PATCH add and replace, by path and path-less: refused with mutability, or ignored.
        let qualified_path = qualified(urn, path);
        for operation in [
            json!({"op": "add", "path": qualified_path, "value": written}),
            json!({"op": "replace", "path": qualified_path, "value": written}),
            json!({"op": "replace", "value": { qualified_path.clone(): written }}),
        ] {
            attempts += 1;
            let reply = scim
                .patch(&target, &patch(json!([operation.clone()])))
                .await;
            let response = format!("PATCH {target} [{operation}] → {}", reply.status);
            match reply.status.as_u16() {
                200 => {
                    session
                        .conformance
                        .check(&Method::PATCH, &target, &reply, Shape::User);
                    if wrote(&reply.body) || reply.body["id"] != id.as_str() {
                        session.fail(
                            &response,
                            path,
                            format!("a client set readOnly {path} to {written}"),
                        );
                    }
                }
                400 => {
                    session
                        .conformance
                        .check(&Method::PATCH, &target, &reply, Shape::Error);
                    if reply.body["scimType"] != "mutability" {
                        session.fail(
                            &response,
                            path,
                            format!("refused, but not as mutability: {}", reply.raw),
                        );
                    }
                }
                _ => session.fail(
                    &response,
                    path,
                    format!("neither ignored nor refused: {}", reply.raw),
                ),
            }
        }
        let after = session
            .send(Method::GET, &target, None, 200, Shape::User)
            .await;
        if wrote(&after.body) {
            session.fail(
                &format!("GET {target} → 200"),
                path,
                format!("holds the client's {written}"),
            );
        }
    }
    assert!(attempts >= 5 * read_only.len(), "{attempts} attempts");
    session.finish(read_only.len() * 3);
    stack.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The validator itself: it must catch what it claims to.

#[tokio::test]
async fn the_validator_catches_every_kind_of_violation() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("conformance-validator").await;
    let schemas = Schemas::fetch(&scim).await;
    let valid = json!({
        "schemas": [USER_URN, ENTERPRISE_URN, "urn:example:custom:2.0:User"],
        "id": "1",
        "userName": "a",
        "active": true,
        "emails": [{"value": "a@b", "type": "work", "primary": true}],
        "x509Certificates": [{"value": "TUlJQw=="}],
        "meta": {"resourceType": "User", "created": "2024-01-02T03:04:05.123Z",
                 "lastModified": "2024-01-02T03:04:05+01:00", "location": "https://h/Users/1",
                 "version": "W/\"1\""},
        ENTERPRISE_URN: {"department": "d", "manager": {"value": "2"}},
        "urn:example:custom:2.0:User": {"anything": [1, 2]},
    });
    let reply = |body: Value| Reply {
        status: hyper::StatusCode::OK,
        headers: {
            let mut headers = hyper::HeaderMap::new();
            headers.insert(
                "content-type",
                hyper::header::HeaderValue::from_static("application/scim+json"),
            );
            headers
        },
        raw: body.to_string(),
        body,
    };
    let failures = |path: &str, body: Value| {
        let mut conformance = Conformance::new(&schemas);
        conformance.check(&Method::GET, path, &reply(body), Shape::User);
        conformance.failures
    };
    assert_eq!(failures("/Users/1", valid.clone()), Vec::<String>::new());
    let broken = |mutate: &dyn Fn(&mut Value)| {
        let mut body = valid.clone();
        mutate(&mut body);
        body
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/Users/1",
            broken(&|b| b["password"] = json!("x")),
            "password: returned \"never\"",
        ),
        (
            "/Users/1",
            broken(&|b| b["favoriteColor"] = json!("red")),
            "favoriteColor: not declared",
        ),
        (
            "/Users/1",
            broken(&|b| b["urn:example:other:2.0:User"] = json!({"a": 1})),
            "urn:example:other:2.0:User: an extension the resource does not list",
        ),
        (
            "/Users/1",
            broken(&|b| b["emails"] = json!({"value": "a@b"})),
            "emails: multi-valued, but not an array",
        ),
        (
            "/Users/1",
            broken(&|b| b["active"] = json!("True")),
            "active: not a boolean",
        ),
        (
            "/Users/1",
            broken(&|b| b["meta"]["created"] = json!("yesterday")),
            "meta.created: not an xsd:dateTime",
        ),
        (
            "/Users/1",
            broken(&|b| b["x509Certificates"][0]["value"] = json!("not base64!")),
            "x509Certificates[0].value: not base64",
        ),
        (
            "/Users/1",
            broken(&|b| b["emails"][0]["label"] = json!("x")),
            "emails[0].label: not a sub-attribute",
        ),
        (
            "/Users/1",
            broken(&|b| b[ENTERPRISE_URN]["shoeSize"] = json!("9")),
            "shoeSize: not declared by the extension",
        ),
        (
            "/Users/1",
            broken(&|b| {
                b.as_object_mut().unwrap().remove("id");
            }),
            "id: returned \"always\" but absent",
        ),
        (
            "/Users/1",
            broken(&|b| b["schemas"] = json!([GROUP_URN])),
            "schemas: does not list",
        ),
        (
            "/Users/1?attributes=userName",
            valid.clone(),
            "emails: present, but not among the attributes asked for",
        ),
        (
            "/Users/1?excludedAttributes=emails",
            valid.clone(),
            "emails: present, but excluded",
        ),
        (
            "/Users/1?attributes=emails.value",
            valid.clone(),
            "emails[0].type: present, but not among",
        ),
        (
            "/Users/1?excludedAttributes=emails.type",
            valid.clone(),
            "emails[0].type: present, but excluded",
        ),
    ];
    for (path, body, expected) in cases {
        let found = failures(path, body);
        assert!(
            found
                .iter()
                .any(|f| f.contains(expected) && f.starts_with(&format!("GET {path}"))),
            "the validator missed {expected:?} for GET {path}: {found:?}"
        );
    }
    stack.stop().await;
}
