//! RFC 7644 §3.4.2.2 filters and attribute paths: parsing and evaluation.
//!
//! The parser is a hand-written recursive descent over the raw string, with
//! explicit limits on length, nesting and number of terms so that hostile
//! input cannot exhaust the stack (parsing, evaluation, SQL translation and
//! even `Drop` of the AST all recurse over its depth).
//!
//! Beyond the RFC grammar it accepts what Entra ID actually sends:
//! `emails[type eq "work"].value eq "x"` (outside the ABNF, but Microsoft
//! keeps sending it), bare unquoted values (`externalId eq jyoung`, from old
//! docs), operators and keywords in any case, and arbitrary extra whitespace.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Number, Value};

use crate::error::{ScimError, ScimType};
use crate::schema::{is_core_urn, looks_like_urn};
use crate::util::{char_pos, get_ci, is_present, parse_bool_str};

/// Longest filter or path accepted, in bytes. Entra's filters are a single
/// `attr eq "value"`, so this is generous.
pub const MAX_FILTER_LEN: usize = 8 * 1024;
/// Deepest nesting of parentheses, `not (…)` and `[…]` accepted.
pub const MAX_FILTER_DEPTH: usize = 64;
/// Most attribute expressions accepted in one filter. Together with the depth
/// limit this bounds the depth of the AST, whose `and`/`or` chains are
/// left-deep.
pub const MAX_FILTER_TERMS: usize = 256;

/// An attribute path: `[urn:…:]name[.sub]`, optionally with a value filter.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    /// Schema URN qualifying the attribute, as written (without the final `:`).
    /// `None` for unqualified names. A path that is *only* a URN (an entire
    /// extension, e.g. in a path-less PATCH value) has `schema: None` and the
    /// URN as `name`.
    pub schema: Option<String>,
    /// Attribute name as written (names are case-insensitive).
    pub name: String,
    /// Sub-attribute name as written.
    pub sub_attr: Option<String>,
    /// Value filter selecting elements of a multi-valued attribute. Set for
    /// PATCH paths (`members[value eq "x"]`, `emails[type eq "work"].value`) and
    /// for Entra's filter form `emails[type eq "work"].value eq "x"`.
    pub value_filter: Option<Box<Filter>>,
}

impl AttrPath {
    /// An unqualified path with just a name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            schema: None,
            name: name.into(),
            sub_attr: None,
            value_filter: None,
        }
    }

    /// True when this path names attribute `name` (case-insensitive) with no
    /// sub-attribute and no value filter. The schema qualifier is ignored, so
    /// `urn:…:core:2.0:User:userName` is `userName`.
    pub fn is(&self, name: &str) -> bool {
        self.sub_attr.is_none()
            && self.value_filter.is_none()
            && self.name.eq_ignore_ascii_case(name)
    }

    /// Lower-cased `name.sub` (or `name`), convenient for matching known
    /// attributes. Ignores the schema and the value filter.
    pub fn dotted(&self) -> String {
        match &self.sub_attr {
            Some(sub) => format!("{}.{}", self.name, sub).to_lowercase(),
            None => self.name.to_lowercase(),
        }
    }

    /// True when the attribute lives in an extension (qualified with a URN
    /// other than the core User/Group schema).
    pub fn is_extension(&self) -> bool {
        self.schema.as_deref().is_some_and(|s| !is_core_urn(s))
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{schema}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(vf) = &self.value_filter {
            write!(f, "[{vf}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// Comparison operators. `pr` is [`Filter::Present`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// equal
    Eq,
    /// not equal
    Ne,
    /// contains
    Co,
    /// starts with
    Sw,
    /// ends with
    Ew,
    /// greater than
    Gt,
    /// greater than or equal
    Ge,
    /// less than
    Lt,
    /// less than or equal
    Le,
}

impl CompareOp {
    /// Lower-case operator keyword.
    pub fn as_str(&self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        const ALL: [CompareOp; 9] = [
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ];
        ALL.into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison value.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// A quoted string, or a bare word that is not a number/boolean/null.
    Str(String),
    /// A JSON number.
    Num(Number),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Value's Display is JSON, which gives correct escaping.
            CompValue::Str(s) => write!(f, "{}", Value::String(s.clone())),
            CompValue::Num(n) => write!(f, "{n}"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Null => f.write_str("null"),
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `a and b`
    And(Box<Filter>, Box<Filter>),
    /// `a or b`
    Or(Box<Filter>, Box<Filter>),
    /// `not (a)`
    Not(Box<Filter>),
    /// `path op value`
    Compare {
        /// attribute compared
        path: AttrPath,
        /// operator
        op: CompareOp,
        /// literal
        value: CompValue,
    },
    /// `path pr`
    Present {
        /// attribute tested
        path: AttrPath,
    },
    /// RFC value path `emails[type eq "work"]` used as a whole filter (true when any element matches)
    ValuePath {
        /// the multi-valued attribute
        path: AttrPath,
        /// filter applied to each element, with element-relative names
        filter: Box<Filter>,
    },
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                let kw = if matches!(self, Filter::And(..)) {
                    "and"
                } else {
                    "or"
                };
                write_child(f, self, a, false)?;
                write!(f, " {kw} ")?;
                write_child(f, self, b, true)
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present { path } => write!(f, "{path} pr"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

/// Writes a child of `and`/`or`, parenthesised where needed so the output
/// parses back to the same tree (chains are left-associative).
fn write_child(
    f: &mut fmt::Formatter<'_>,
    parent: &Filter,
    child: &Filter,
    right: bool,
) -> fmt::Result {
    let parens = match (parent, child) {
        (Filter::And(..), Filter::Or(..)) => true,
        (Filter::And(..), Filter::And(..)) | (Filter::Or(..), Filter::Or(..)) => right,
        _ => false,
    };
    if parens {
        write!(f, "({child})")
    } else {
        write!(f, "{child}")
    }
}

/// Parses a `filter` query parameter (already URL-decoded).
///
/// Errors are 400 `invalidFilter` whose detail names the (0-based, in
/// characters) position and what was expected there.
pub fn parse_filter(input: &str) -> Result<Filter, ScimError> {
    let mut parser = Parser::new(input, Mode::Filter)?;
    parser.skip_ws();
    if parser.peek().is_none() {
        return Err(parser.error(parser.pos, "the filter is empty"));
    }
    let filter = parser.parse_or()?;
    parser.skip_ws();
    if parser.peek().is_some() {
        return Err(parser.error(
            parser.pos,
            format!(
                "expected 'and', 'or' or the end of the filter but found {}",
                parser.found()
            ),
        ));
    }
    Ok(filter)
}

/// Parses a PATCH `path` (RFC 7644 §3.5.2): `attr`, `attr.sub`, `urn:…:attr`,
/// `urn:…:attr.sub`, `attr[filter]`, `attr[filter].sub`, or a bare URN.
///
/// Errors are 400 `invalidPath`.
pub fn parse_attr_path(input: &str) -> Result<AttrPath, ScimError> {
    let mut parser = Parser::new(input, Mode::Path)?;
    parser.skip_ws();
    let (start, word) = parser.take_word();
    let mut path = parser.path_from_word(start, word)?;
    if parser.peek() == Some('[') {
        let inner = parser.parse_bracket()?;
        path.value_filter = Some(Box::new(inner));
        if parser.peek() == Some('.') {
            parser.pos += 1;
            let (at, sub) = parser.take_word();
            if path.sub_attr.is_some() {
                return Err(parser.error(at, "a path can have only one sub-attribute"));
            }
            path.sub_attr = Some(parser.check_name(at, sub)?);
        }
    }
    parser.skip_ws();
    if parser.peek().is_some() {
        return Err(parser.error(
            parser.pos,
            format!("unexpected {} after the path", parser.found()),
        ));
    }
    Ok(path)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Filter,
    Path,
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    terms: usize,
    mode: Mode,
    in_value_filter: bool,
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '[' | ']' | '"')
}

fn is_version(seg: &str) -> bool {
    !seg.is_empty()
        && seg.chars().all(|c| c.is_ascii_digit() || c == '.')
        && seg.chars().any(|c| c.is_ascii_digit())
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, mode: Mode) -> Result<Self, ScimError> {
        let p = Self {
            src,
            pos: 0,
            depth: 0,
            terms: 0,
            mode,
            in_value_filter: false,
        };
        if src.len() > MAX_FILTER_LEN {
            return Err(p.error(
                MAX_FILTER_LEN,
                format!("longer than the {MAX_FILTER_LEN}-byte limit"),
            ));
        }
        Ok(p)
    }

    #[cold]
    #[inline(never)]
    fn error(&self, at: usize, msg: impl fmt::Display) -> ScimError {
        let (what, scim_type) = match self.mode {
            Mode::Filter => ("invalid filter", ScimType::InvalidFilter),
            Mode::Path => ("invalid path", ScimType::InvalidPath),
        };
        ScimError::bad_request(
            scim_type,
            format!("{what} at position {}: {msg}", char_pos(self.src, at)),
        )
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// A short description of the text at the cursor, for error messages.
    fn found(&self) -> String {
        let rest = self.rest();
        match rest.chars().next() {
            None => "the end of the input".to_owned(),
            Some(c) if !is_word_char(c) && !c.is_whitespace() => format!("'{c}'"),
            Some(_) => {
                let word: String = rest
                    .chars()
                    .take_while(|c| is_word_char(*c))
                    .take(32)
                    .collect();
                format!("'{word}'")
            }
        }
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
    }

    fn peek_word(&self) -> &'a str {
        let rest = self.rest();
        let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        rest.get(..end).unwrap_or("")
    }

    fn take_word(&mut self) -> (usize, &'a str) {
        let start = self.pos;
        let word = self.peek_word();
        self.pos += word.len();
        (start, word)
    }

    fn enter(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(self.too_deep());
        }
        Ok(())
    }

    // The recursive descent functions keep their frames small by building
    // error messages out of line: frame size times nesting depth is what the
    // stack has to hold.
    #[cold]
    #[inline(never)]
    fn too_deep(&self) -> ScimError {
        self.error(
            self.pos,
            format!("nested deeper than {MAX_FILTER_DEPTH} levels"),
        )
    }

    #[cold]
    #[inline(never)]
    fn unexpected(&self, expected: &str) -> ScimError {
        self.error(
            self.pos,
            format!("expected {expected} but found {}", self.found()),
        )
    }

    #[cold]
    #[inline(never)]
    fn unclosed(&self, close: char, open_at: usize) -> ScimError {
        self.error(
            self.pos,
            format!(
                "expected '{close}' to match the one opened at position {} but found {}",
                char_pos(self.src, open_at),
                self.found()
            ),
        )
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn expect_close(&mut self, close: char, open_at: usize) -> Result<(), ScimError> {
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unclosed(close, open_at))
        }
    }

    fn parse_or(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.parse_and()?;
        loop {
            self.skip_ws();
            if !self.peek_word().eq_ignore_ascii_case("or") {
                return Ok(left);
            }
            self.pos += 2;
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
    }

    fn parse_and(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.parse_unary()?;
        loop {
            self.skip_ws();
            if !self.peek_word().eq_ignore_ascii_case("and") {
                return Ok(left);
            }
            self.pos += 3;
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
    }

    fn parse_unary(&mut self) -> Result<Filter, ScimError> {
        self.skip_ws();
        match self.peek() {
            Some('(') => {
                let open = self.pos;
                self.pos += 1;
                self.enter()?;
                let inner = self.parse_or()?;
                self.expect_close(')', open)?;
                self.leave();
                Ok(inner)
            }
            Some(c) if is_word_char(c) => {
                if self.peek_word().eq_ignore_ascii_case("not") {
                    let save = self.pos;
                    self.pos += 3;
                    self.skip_ws();
                    if self.peek() == Some('(') {
                        let open = self.pos;
                        self.pos += 1;
                        self.enter()?;
                        let inner = self.parse_or()?;
                        self.expect_close(')', open)?;
                        self.leave();
                        return Ok(Filter::Not(Box::new(inner)));
                    }
                    // An attribute that happens to be called "not".
                    self.pos = save;
                }
                self.parse_attr_expr()
            }
            _ => Err(self.unexpected("an attribute path, 'not' or '('")),
        }
    }

    #[inline(never)]
    fn parse_attr_expr(&mut self) -> Result<Filter, ScimError> {
        self.terms += 1;
        if self.terms > MAX_FILTER_TERMS {
            return Err(self.error(
                self.pos,
                format!("more than {MAX_FILTER_TERMS} expressions"),
            ));
        }
        let (start, word) = self.take_word();
        let mut path = self.path_from_word(start, word)?;
        if self.peek() == Some('[') {
            let inner = self.parse_bracket()?;
            if self.peek() != Some('.') {
                return Ok(Filter::ValuePath {
                    path,
                    filter: Box::new(inner),
                });
            }
            // Entra's `emails[type eq "work"].value eq "x"`.
            self.pos += 1;
            let (at, sub) = self.take_word();
            if path.sub_attr.is_some() {
                return Err(self.error(at, "a path can have only one sub-attribute"));
            }
            path.sub_attr = Some(self.check_name(at, sub)?);
            path.value_filter = Some(Box::new(inner));
        }
        self.skip_ws();
        let op_at = self.pos;
        let found = self.found();
        let (_, op_word) = self.take_word();
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present { path });
        }
        let Some(op) = CompareOp::parse(op_word) else {
            return Err(self.error(
                op_at,
                format!("expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after '{word}' but found {found}"),
            ));
        };
        let value = self.parse_value()?;
        Ok(Filter::Compare { path, op, value })
    }

    #[inline(never)]
    fn parse_bracket(&mut self) -> Result<Filter, ScimError> {
        let open = self.pos;
        if self.in_value_filter {
            return Err(self.error(open, "value filters ('[…]') cannot be nested"));
        }
        self.pos += 1;
        self.enter()?;
        self.in_value_filter = true;
        let inner = self.parse_or();
        self.in_value_filter = false;
        let inner = inner?;
        self.expect_close(']', open)?;
        self.leave();
        Ok(inner)
    }

    fn parse_value(&mut self) -> Result<CompValue, ScimError> {
        self.skip_ws();
        let start = self.pos;
        let value = match self.peek() {
            Some('"') => self.parse_string().map(CompValue::Str)?,
            Some(c) if is_word_char(c) => {
                let (_, word) = self.take_word();
                bare_value(word)
            }
            _ => {
                return Err(self.error(
                    self.pos,
                    format!("expected a value but found {}", self.found()),
                ));
            }
        };
        // No stored value holds a NUL (see `limits::check_no_nul`), and PostgreSQL cannot even
        // compare one.
        if matches!(&value, CompValue::Str(text) if text.contains('\0')) {
            return Err(self.error(start, "the value contains the NUL character (U+0000)"));
        }
        Ok(value)
    }

    fn parse_string(&mut self) -> Result<String, ScimError> {
        let start = self.pos;
        let rest = self.rest();
        let mut escaped = false;
        let mut end = None;
        for (i, c) in rest.char_indices().skip(1) {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                end = Some(i);
                break;
            }
        }
        let Some(end) = end else {
            return Err(self.error(start, "unterminated string (missing closing '\"')"));
        };
        let literal = rest.get(..=end).unwrap_or("");
        match serde_json::from_str::<String>(literal) {
            Ok(s) => {
                self.pos += end + 1;
                Ok(s)
            }
            Err(e) => Err(self.error(start, format!("invalid string literal: {e}"))),
        }
    }

    fn path_from_word(&self, start: usize, word: &str) -> Result<AttrPath, ScimError> {
        if word.is_empty() {
            return Err(self.error(
                start,
                format!("expected an attribute path but found {}", self.found()),
            ));
        }
        let (schema, rest, rest_at) = if looks_like_urn(word) {
            let idx = word.rfind(':').unwrap_or(0);
            let schema = word.get(..idx).unwrap_or("");
            let rest = word.get(idx + 1..).unwrap_or("");
            let last_segment = schema.rsplit(':').next().unwrap_or("");
            if is_version(last_segment) && !rest.contains('.') {
                // Only a schema URN, e.g. `urn:…:enterprise:2.0:User`: the
                // whole extension object.
                self.check_name(start + idx + 1, rest)?;
                return Ok(AttrPath::new(word));
            }
            (Some(schema.to_owned()), rest, start + idx + 1)
        } else {
            (None, word, start)
        };
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        let name = self.check_name(rest_at, name)?;
        let sub_attr = match sub {
            Some(s) => Some(self.check_name(rest_at + name.len() + 1, s)?),
            None => None,
        };
        Ok(AttrPath {
            schema,
            name,
            sub_attr,
            value_filter: None,
        })
    }

    /// RFC 7643 ATTRNAME: ALPHA *(ALPHA / DIGIT / "-" / "_"), plus `$ref`.
    fn check_name(&self, at: usize, name: &str) -> Result<String, ScimError> {
        let mut chars = name.chars();
        let ok = match chars.next() {
            Some(c) if c.is_ascii_alphabetic() || c == '$' => {
                chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }
            _ => false,
        };
        if ok {
            Ok(name.to_owned())
        } else if name.is_empty() {
            Err(self.error(
                at,
                format!("expected an attribute name but found {}", self.found_at(at)),
            ))
        } else if name.contains('.') {
            Err(self.error(
                at,
                format!("'{name}': only one level of sub-attribute is allowed"),
            ))
        } else {
            Err(self.error(at, format!("'{name}' is not a valid attribute name")))
        }
    }

    fn found_at(&self, at: usize) -> String {
        let probe = Parser {
            src: self.src,
            pos: at,
            depth: 0,
            terms: 0,
            mode: self.mode,
            in_value_filter: false,
        };
        probe.found()
    }
}

fn bare_value(word: &str) -> CompValue {
    if word.eq_ignore_ascii_case("true") {
        CompValue::Bool(true)
    } else if word.eq_ignore_ascii_case("false") {
        CompValue::Bool(false)
    } else if word.eq_ignore_ascii_case("null") {
        CompValue::Null
    } else if word.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        && let Some(n) = parse_number(word)
    {
        CompValue::Num(n)
    } else {
        CompValue::Str(word.to_owned())
    }
}

/// A JSON number literal. serde_json checks the syntax, but its default
/// float parser is not correctly rounded (`5e32` comes out one ulp off), so
/// fractions and exponents go through the standard library's parser.
fn parse_number(word: &str) -> Option<Number> {
    let n = serde_json::from_str::<Number>(word).ok()?;
    if n.is_f64() {
        word.parse::<f64>().ok().and_then(Number::from_f64)
    } else {
        Some(n)
    }
}

// ---------------------------------------------------------------------------
// Evaluation

impl Filter {
    /// Evaluates the filter against a SCIM resource (or, inside a value
    /// filter, against one element of a multi-valued attribute).
    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Filter::And(left, right) => left.matches(resource) && right.matches(resource),
            Filter::Or(left, right) => left.matches(resource) || right.matches(resource),
            Filter::Not(inner) => !inner.matches(resource),
            Filter::Present { path } => resolve(path, resource).into_iter().any(is_present),
            Filter::ValuePath { path, filter } => match lookup(path, resource) {
                Some(Value::Array(items)) => items.iter().any(|element| filter.matches(element)),
                Some(single @ Value::Object(_)) => filter.matches(single),
                _ => false,
            },
            Filter::Compare { path, op, value } => {
                let values = scalars(resolve(path, resource));
                let exact = is_case_exact(path);
                match (op, value) {
                    (CompareOp::Eq, CompValue::Null) => values.iter().all(|found| found.is_null()),
                    (CompareOp::Ne, CompValue::Null) => values.iter().any(|found| !found.is_null()),
                    (_, CompValue::Null) => false,
                    // `ne` is the negation of `eq`, so it holds for a missing
                    // attribute and for a multi-valued one with no equal element.
                    (CompareOp::Ne, _) => !values
                        .iter()
                        .any(|found| compare(CompareOp::Eq, found, value, exact)),
                    _ => values.iter().any(|found| compare(*op, found, value, exact)),
                }
            }
        }
    }
}

/// Finds the attribute's value in the resource: top level, or under its
/// extension URN key. An unqualified name not found at the top level is also
/// looked up in the extensions, because Entra's legacy reference queries say
/// `manager eq "…"` without the enterprise URN.
fn lookup<'a>(path: &AttrPath, resource: &'a Value) -> Option<&'a Value> {
    let fields = resource.as_object()?;
    match path.schema.as_deref() {
        Some(urn) if !is_core_urn(urn) => get_ci(get_ci(fields, urn)?.as_object()?, &path.name),
        Some(_) => get_ci(fields, &path.name),
        None => get_ci(fields, &path.name).or_else(|| {
            fields
                .iter()
                .filter(|(key, _)| looks_like_urn(key))
                .find_map(|(_, extension)| {
                    extension
                        .as_object()
                        .and_then(|attributes| get_ci(attributes, &path.name))
                })
        }),
    }
}

/// Values the path designates: the attribute (or each of its elements
/// passing the value filter), narrowed to the sub-attribute.
fn resolve<'a>(path: &AttrPath, resource: &'a Value) -> Vec<&'a Value> {
    let Some(base) = lookup(path, resource) else {
        return Vec::new();
    };
    let mut items: Vec<&Value> = match base {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    if let Some(value_filter) = &path.value_filter {
        items.retain(|element| value_filter.matches(element));
    }
    if let Some(sub) = &path.sub_attr {
        let mut out = Vec::new();
        for item in items {
            match item.as_object().and_then(|fields| get_ci(fields, sub)) {
                Some(Value::Array(values)) => out.extend(values.iter()),
                Some(sub_value) => out.push(sub_value),
                None => {}
            }
        }
        items = out;
    }
    items
}

/// Comparable scalars: a complex value compares through its `value`
/// sub-attribute (RFC 7644 §3.4.2.2, e.g. `emails eq "x"`, `manager eq "id"`).
fn scalars(values: Vec<&Value>) -> Vec<&Value> {
    let mut out = Vec::new();
    for value in values {
        match value {
            Value::Object(fields) => out.extend(get_ci(fields, "value")),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Object(fields) => out.extend(get_ci(fields, "value")),
                        Value::Array(_) => {}
                        other => out.push(other),
                    }
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// RFC 7643 caseExact attributes among those a filter can name.
fn is_case_exact(path: &AttrPath) -> bool {
    if path.name == "$ref" || path.sub_attr.as_deref() == Some("$ref") {
        return true;
    }
    if path.is_extension() {
        return false;
    }
    match path.sub_attr.as_deref() {
        None => {
            path.name.eq_ignore_ascii_case("id") || path.name.eq_ignore_ascii_case("externalId")
        }
        Some(sub) => path.name.eq_ignore_ascii_case("meta") && sub.eq_ignore_ascii_case("version"),
    }
}

fn compare(op: CompareOp, attr: &Value, literal: &CompValue, exact: bool) -> bool {
    match (attr, literal) {
        (Value::String(a), CompValue::Str(b)) => str_op(op, a, b, exact),
        // Entra sends `primary eq "True"`; stored booleans may be strings too.
        (Value::Bool(a), CompValue::Str(b)) => {
            parse_bool_str(b).is_some_and(|b| bool_op(op, *a, b))
        }
        (Value::String(a), CompValue::Bool(b)) => {
            parse_bool_str(a).is_some_and(|a| bool_op(op, a, *b))
        }
        (Value::Bool(a), CompValue::Bool(b)) => bool_op(op, *a, *b),
        (Value::Number(a), CompValue::Num(b)) => num_op(op, a, b),
        (Value::Number(a), CompValue::Str(b)) => match serde_json::from_str::<Number>(b.trim()) {
            Ok(b) => num_op(op, a, &b),
            Err(_) => str_op(op, &a.to_string(), b, true),
        },
        (Value::String(a), CompValue::Num(b)) => {
            match (op, serde_json::from_str::<Number>(a.trim())) {
                (CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le, Ok(a)) => {
                    num_op(op, &a, b)
                }
                _ => str_op(op, a, &b.to_string(), exact),
            }
        }
        _ => false,
    }
}

fn ord_op(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn str_op(op: CompareOp, a: &str, b: &str, exact: bool) -> bool {
    let (a, b) = if exact {
        (a.to_owned(), b.to_owned())
    } else {
        (a.to_lowercase(), b.to_lowercase())
    };
    match op {
        CompareOp::Co => a.contains(&b),
        CompareOp::Sw => a.starts_with(&b),
        CompareOp::Ew => a.ends_with(&b),
        _ => ord_op(op, a.cmp(&b)),
    }
}

fn bool_op(op: CompareOp, a: bool, b: bool) -> bool {
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        _ => false,
    }
}

fn num_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn num_op(op: CompareOp, a: &Number, b: &Number) -> bool {
    match op {
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
            str_op(op, &a.to_string(), &b.to_string(), true)
        }
        _ => num_cmp(a, b).is_some_and(|o| ord_op(op, o)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Filter {
        parse_filter(s).unwrap()
    }

    fn cmp(name: &str, op: CompareOp, value: CompValue) -> Filter {
        Filter::Compare {
            path: AttrPath::new(name),
            op,
            value,
        }
    }

    fn s(v: &str) -> CompValue {
        CompValue::Str(v.to_owned())
    }

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "bjensen",
            "userName": "Bjensen@example.com",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "displayName": "Babs Jensen",
            "active": true,
            "title": "",
            "roles": [],
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "meta": {"created": "2011-08-01T18:29:49.793Z", "version": "W/\"a330bc54f0671c9\""},
            "loginCount": 42,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            }
        })
    }

    #[test]
    fn parses_simple_eq() {
        assert_eq!(
            p(r#"userName eq "bjensen""#),
            cmp("userName", CompareOp::Eq, s("bjensen"))
        );
    }

    #[test]
    fn precedence_not_and_or() {
        let f = p(r#"a eq "1" or b eq "2" and not (c pr)"#);
        let expected = Filter::Or(
            Box::new(cmp("a", CompareOp::Eq, s("1"))),
            Box::new(Filter::And(
                Box::new(cmp("b", CompareOp::Eq, s("2"))),
                Box::new(Filter::Not(Box::new(Filter::Present {
                    path: AttrPath::new("c"),
                }))),
            )),
        );
        assert_eq!(f, expected);
    }

    #[test]
    fn grouping_overrides_precedence() {
        let f = p(r#"(a pr or b pr) and c pr"#);
        assert!(matches!(f, Filter::And(ref l, _) if matches!(**l, Filter::Or(..))));
    }

    #[test]
    fn all_operators_case_insensitive() {
        for (w, op) in [
            ("EQ", CompareOp::Eq),
            ("Ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("SW", CompareOp::Sw),
            ("eW", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("GE", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("Le", CompareOp::Le),
        ] {
            assert_eq!(
                p(&format!("x {w} 1")),
                cmp("x", op, CompValue::Num(1.into()))
            );
        }
        assert_eq!(
            p("x PR"),
            Filter::Present {
                path: AttrPath::new("x")
            }
        );
        assert!(matches!(p("a pr AND b pr Or NOT (c pr)"), Filter::Or(..)));
    }

    #[test]
    fn literal_kinds() {
        assert_eq!(
            p("x eq true"),
            cmp("x", CompareOp::Eq, CompValue::Bool(true))
        );
        assert_eq!(
            p("x eq FALSE"),
            cmp("x", CompareOp::Eq, CompValue::Bool(false))
        );
        assert_eq!(p("x eq null"), cmp("x", CompareOp::Eq, CompValue::Null));
        assert_eq!(
            p("x gt -1.5"),
            cmp(
                "x",
                CompareOp::Gt,
                CompValue::Num(Number::from_f64(-1.5).unwrap())
            )
        );
        assert_eq!(
            p("externalId eq jyoung"),
            cmp("externalId", CompareOp::Eq, s("jyoung"))
        );
        assert_eq!(
            p("meta.created gt 2015-10-10T14:38:21.8617979-07:00"),
            Filter::Compare {
                path: AttrPath {
                    sub_attr: Some("created".into()),
                    ..AttrPath::new("meta")
                },
                op: CompareOp::Gt,
                value: s("2015-10-10T14:38:21.8617979-07:00"),
            }
        );
        assert_eq!(
            p(r#"x eq "a \"q\" \u00e9\\""#),
            cmp("x", CompareOp::Eq, s("a \"q\" é\\"))
        );
    }

    #[test]
    fn urn_qualified_attributes() {
        let f = p(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1""#,
        );
        let Filter::Compare { path, .. } = &f else {
            panic!("{f:?}")
        };
        assert_eq!(
            path.schema.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(path.name, "employeeNumber");
        assert!(path.is_extension());
        let f = p(r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq "x""#);
        let Filter::Compare { path, .. } = &f else {
            panic!()
        };
        assert_eq!(path.dotted(), "name.familyname");
        assert!(!path.is_extension());
    }

    #[test]
    fn value_path_and_entra_form() {
        let f = p(r#"emails[type eq "work" and value co "@example.com"]"#);
        assert!(matches!(f, Filter::ValuePath { ref path, .. } if path.name == "emails"));
        let f = p(r#"emails[type eq "work"].value eq "x@y""#);
        let Filter::Compare { path, op, value } = &f else {
            panic!()
        };
        assert_eq!(path.sub_attr.as_deref(), Some("value"));
        assert_eq!(
            **path.value_filter.as_ref().unwrap(),
            cmp("type", CompareOp::Eq, s("work"))
        );
        assert_eq!((*op, value), (CompareOp::Eq, &s("x@y")));
    }

    #[test]
    fn whitespace_tolerance() {
        assert_eq!(
            p("   userName   eq    \"x\"   and\t\nactive  eq  true  "),
            Filter::And(
                Box::new(cmp("userName", CompareOp::Eq, s("x"))),
                Box::new(cmp("active", CompareOp::Eq, CompValue::Bool(true)))
            )
        );
        assert!(parse_filter("emails[ type eq \"work\" ]").is_ok());
        assert!(
            parse_filter("emails[type eq \"work\"] pr").is_err(),
            "a value path takes no operator"
        );
        assert!(parse_filter("( a pr )").is_ok());
    }

    #[test]
    fn attribute_named_like_keywords() {
        assert_eq!(p(r#"not eq "x""#), cmp("not", CompareOp::Eq, s("x")));
        assert_eq!(
            p("a pr and and pr"),
            Filter::And(
                Box::new(Filter::Present {
                    path: AttrPath::new("a")
                }),
                Box::new(Filter::Present {
                    path: AttrPath::new("and")
                })
            )
        );
    }

    fn err(s: &str) -> ScimError {
        parse_filter(s).unwrap_err()
    }

    #[test]
    fn errors_are_invalid_filter_with_position() {
        let e = err(r#"userName eq"#);
        assert_eq!(e.status, 400);
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
        assert!(e.detail.contains("position 11"), "{}", e.detail);
        assert!(e.detail.contains("expected a value"), "{}", e.detail);

        let e = err(r#"userName xx "a""#);
        assert!(
            e.detail.contains("position 9") && e.detail.contains("operator"),
            "{}",
            e.detail
        );

        let e = err(r#"(a pr"#);
        assert!(e.detail.contains("expected ')'"), "{}", e.detail);
        let e = err(r#"a pr)"#);
        assert!(e.detail.contains("position 4"), "{}", e.detail);
        assert!(err(r#"a eq "unterminated"#).detail.contains("unterminated"));
        assert!(err("").detail.contains("empty"));
        assert!(err("a.b.c pr").detail.contains("sub-attribute"));
        assert!(err("1abc pr").detail.contains("not a valid attribute name"));
        assert!(err("a[b[c pr]] pr").detail.contains("nested"));
        assert!(
            err("emails[type eq \"work\"].value")
                .detail
                .contains("operator")
        );
        assert!(err("a eq \"x\" b").detail.contains("'and', 'or'"));
        assert!(
            err("a eq \"\\x\"")
                .detail
                .contains("invalid string literal")
        );
    }

    #[test]
    fn nul_in_a_value_is_refused() {
        assert!(err("userName eq \"\\u0000\"").detail.contains("NUL"));
        assert!(err("userName eq a\u{0}b").detail.contains("NUL"));
        let e = parse_attr_path("members[value eq \"\\u0000\"]").unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        parse_filter("userName eq \"tab\\tx\"").unwrap();
    }

    #[test]
    fn limits_reject_hostile_input() {
        let deep = format!("{}a pr{}", "(".repeat(1_000), ")".repeat(1_000));
        assert!(err(&deep).detail.contains("nested deeper"));
        let huge = format!("{}a pr{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(err(&huge).detail.contains("limit"));
        let nots = format!("{}a pr{}", "not (".repeat(100), ")".repeat(100));
        assert!(err(&nots).detail.contains("nested deeper"));
        let many = vec!["a pr"; 300].join(" and ");
        assert!(err(&many).detail.contains("more than"));
        let long = format!("a eq \"{}\"", "x".repeat(MAX_FILTER_LEN));
        assert!(err(&long).detail.contains("limit"));
        let ok = format!("{}a pr{}", "(".repeat(60), ")".repeat(60));
        assert!(parse_filter(&ok).is_ok());
    }

    #[test]
    fn display_round_trips() {
        for src in [
            r#"userName eq "bjensen""#,
            r#"a pr or b pr and not (c eq 1)"#,
            r#"(a pr or b pr) and c pr"#,
            r#"a pr and (b pr and c pr)"#,
            r#"a pr or (b pr or c pr)"#,
            r#"emails[type eq "work" or primary eq true].value co "@x""#,
            r#"emails[type eq "work"]"#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "m""#,
            r#"x eq null and y ne false and z le 3.5 and w eq "q\"t""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr"#,
            // found by the fuzzer: serde_json's float parsing is not exact
            "logint ge 5e32 and x lt 0.1 and y gt -2.5E-7",
        ] {
            let f = p(src);
            assert_eq!(p(&f.to_string()), f, "{src} -> {f}");
        }
    }

    #[test]
    fn attr_path_parsing() {
        let a = parse_attr_path(r#"members[value eq "id1"]"#).unwrap();
        assert_eq!(a.name, "members");
        assert!(a.value_filter.is_some() && a.sub_attr.is_none());
        let a = parse_attr_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(a.sub_attr.as_deref(), Some("value"));
        let a = parse_attr_path(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(
            a.schema.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(
            (a.name.as_str(), a.sub_attr.as_deref()),
            ("manager", Some("value"))
        );
        let a =
            parse_attr_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User").unwrap();
        assert_eq!(a.schema, None);
        assert_eq!(
            a.name,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        );
        let a = parse_attr_path(" name.givenName ").unwrap();
        assert!(!a.is("name") && a.dotted() == "name.givenname");
        assert!(parse_attr_path("userName").unwrap().is("USERNAME"));
    }

    #[test]
    fn attr_path_errors_are_invalid_path() {
        for bad in [
            "",
            "emails[type eq \"work\"",
            "a b",
            "a.b.c",
            "emails[type eq].value",
            "x[y pr].",
            "urn:foo:",
        ] {
            let e = parse_attr_path(bad).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{bad}: {e:?}");
            assert!(
                e.detail.starts_with("invalid path at position"),
                "{bad}: {}",
                e.detail
            );
        }
    }

    fn m(filter: &str) -> bool {
        p(filter).matches(&user())
    }

    #[test]
    fn matching_basics() {
        assert!(m(r#"userName eq "bjensen@EXAMPLE.com""#));
        assert!(m(r#"USERNAME sw "bjen""#));
        assert!(m(r#"name.FamilyName ew "SEN""#));
        assert!(m(r#"displayName co "bs j""#));
        assert!(!m(r#"userName eq "other""#));
        assert!(m(r#"userName ne "other""#));
        assert!(m(r#"nickName ne "x""#), "ne on a missing attribute is true");
        assert!(!m(r#"nickName eq "x""#));
        assert!(m("nickName eq null") && !m("userName eq null") && m("userName ne null"));
    }

    #[test]
    fn matching_case_exact() {
        assert!(m(r#"externalId eq "bjensen""#));
        assert!(!m(r#"externalId eq "BJensen""#));
        assert!(!m(r#"id eq "2819C223-7F76-453A-919D-413861904646""#));
        assert!(m(r#"meta.version eq "W/\"a330bc54f0671c9\"""#));
        assert!(!m(r#"meta.version eq "w/\"A330BC54F0671C9\"""#));
    }

    #[test]
    fn matching_presence() {
        assert!(m("userName pr"));
        assert!(!m("title pr"), "empty string is not present");
        assert!(!m("roles pr"), "empty array is not present");
        assert!(!m("nickName pr"));
        assert!(m("emails pr") && m("emails.type pr"));
        let v = json!({"name": {}, "x": null});
        assert!(!p("name pr").matches(&v) && !p("x pr").matches(&v));
    }

    #[test]
    fn matching_multi_valued_and_value_paths() {
        assert!(m(r#"emails.value eq "babs@jensen.org""#));
        assert!(m(r#"emails eq "babs@jensen.org""#));
        assert!(m(r#"emails[type eq "work" and value co "@example.com"]"#));
        assert!(!m(r#"emails[type eq "home" and value co "@example.com"]"#));
        assert!(m(
            r#"emails[type eq "work"].value eq "BJENSEN@example.com""#
        ));
        assert!(!m(
            r#"emails[type eq "home"].value eq "bjensen@example.com""#
        ));
        assert!(m(r#"emails[primary eq "True"].type eq "work""#));
        assert!(m(r#"emails[not (type eq "work")].value ew ".org""#));
    }

    #[test]
    fn matching_booleans_numbers_ordering() {
        assert!(m("active eq true"));
        assert!(m(r#"active eq "True""#));
        assert!(!m(r#"active eq "false""#));
        assert!(m(r#"emails.primary eq "TRUE""#));
        assert!(
            m("loginCount gt 41")
                && m("loginCount ge 42")
                && !m("loginCount lt 42")
                && m("loginCount le 42")
        );
        assert!(m(r#"loginCount eq "42""#));
        assert!(m(r#"meta.created gt "2011-01-01T00:00:00Z""#));
        assert!(!m(r#"meta.created lt "2011-01-01T00:00:00Z""#));
        let v = json!({"active": "False"});
        assert!(p("active eq false").matches(&v));
    }

    #[test]
    fn matching_extensions() {
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
        ));
        assert!(m(
            r#"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:DEPARTMENT sw "tour""#
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen@example.com""#
        ));
        assert!(m(r#"manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr"#
        ));
        assert!(m(
            r#"id eq "2819c223-7f76-453a-919d-413861904646" and manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#
        ));
        assert!(!m(
            r#"id eq "2819c223-7f76-453a-919d-413861904646" and manager eq "someone-else""#
        ));
    }

    #[test]
    fn non_object_resources_never_match() {
        assert!(!p("a pr").matches(&json!(null)));
        assert!(!p("a eq 1").matches(&json!([1])));
        assert!(p("a ne 1").matches(&json!("x")));
    }
}
