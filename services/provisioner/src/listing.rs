//! List requests: RFC 7644 paging, and turning a SCIM filter into an indexed
//! SQL condition. Entra's matching queries (`userName eq`, `externalId eq`,
//! `displayName eq`, work email, and `and` of these) become index lookups, so
//! their cost does not grow with the directory. Anything else narrows what it
//! can in SQL and the exact SCIM evaluator decides each remaining row.

use dirsync_scim::{CompValue, CompareOp, Filter};
use sea_orm::Condition;
use sea_orm::sea_query::SimpleExpr;

use crate::error::{ProvisionerError, Result};

/// Rows a filter may have to evaluate outside SQL before it is refused.
pub(crate) const MAX_SCAN_ROWS: u64 = 250_000;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) default_page_size: u32,
    pub(crate) max_page_size: u32,
}

/// One page in RFC 7644 terms: 1-based start, a count that may be 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) start_index: u32,
    pub(crate) offset: u64,
    pub(crate) limit: u64,
}

impl Limits {
    pub(crate) fn page(&self, start_index: u32, count: u32, default_count: bool) -> Page {
        let start_index = start_index.max(1);
        let count = if default_count {
            self.default_page_size
        } else {
            count.min(self.max_page_size)
        };
        Page {
            start_index,
            offset: u64::from(start_index - 1),
            limit: u64::from(count),
        }
    }
}

/// A SQL narrowing of a filter. `condition: None` means "every row of the
/// tenant"; `exact` means SQL alone decides, with no evaluation afterwards.
#[derive(Debug, Clone)]
pub(crate) struct SqlFilter {
    pub(crate) condition: Option<Condition>,
    pub(crate) exact: bool,
}

impl SqlFilter {
    fn all_rows() -> Self {
        Self {
            condition: None,
            exact: false,
        }
    }

    pub(crate) fn everything() -> Self {
        Self {
            condition: None,
            exact: true,
        }
    }

    pub(crate) fn exact_expr(expr: SimpleExpr) -> Self {
        Self {
            condition: Some(Condition::all().add(expr)),
            exact: true,
        }
    }

    pub(crate) fn narrowing_expr(expr: SimpleExpr) -> Self {
        Self {
            condition: Some(Condition::all().add(expr)),
            exact: false,
        }
    }
}

/// How one resource type's attributes map to indexed columns.
pub(crate) trait ColumnMap {
    /// An exact or narrowing SQL expression for `attribute eq value`, if the
    /// attribute is indexed.
    fn equality(&self, path: &dirsync_scim::AttrPath, value: &str) -> Option<SqlFilter>;
    /// `active eq true` and similar boolean columns.
    fn boolean(&self, _path: &dirsync_scim::AttrPath, _value: bool) -> Option<SqlFilter> {
        None
    }
}

pub(crate) fn translate(filter: &Filter, columns: &dyn ColumnMap) -> SqlFilter {
    match filter {
        Filter::And(left, right) => {
            let (left, right) = (translate(left, columns), translate(right, columns));
            let condition = match (left.condition, right.condition) {
                (Some(l), Some(r)) => Some(Condition::all().add(l).add(r)),
                (Some(one), None) | (None, Some(one)) => Some(one),
                (None, None) => None,
            };
            SqlFilter {
                condition,
                exact: left.exact && right.exact,
            }
        }
        Filter::Or(left, right) => {
            let (left, right) = (translate(left, columns), translate(right, columns));
            match (left.condition, right.condition) {
                (Some(l), Some(r)) => SqlFilter {
                    condition: Some(Condition::any().add(l).add(r)),
                    exact: left.exact && right.exact,
                },
                // One side may match any row: SQL cannot narrow the union.
                _ => SqlFilter::all_rows(),
            }
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } => match value {
            CompValue::Str(text) => columns
                .equality(path, text)
                .unwrap_or_else(SqlFilter::all_rows),
            CompValue::Bool(flag) => columns
                .boolean(path, *flag)
                .unwrap_or_else(SqlFilter::all_rows),
            _ => SqlFilter::all_rows(),
        },
        _ => SqlFilter::all_rows(),
    }
}

pub(crate) fn parse_filter(raw: &str) -> Result<Option<Filter>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    dirsync_scim::parse_filter(raw)
        .map(Some)
        .map_err(|error| ProvisionerError::invalid("invalidFilter", error.detail))
}

pub(crate) fn too_many() -> ProvisionerError {
    ProvisionerError::invalid(
        "tooMany",
        format!(
            "the filter cannot use an index and would evaluate more than {MAX_SCAN_ROWS} resources; \
             filter on userName, externalId, id, displayName or the work email"
        ),
    )
}

/// RFC 3339 with milliseconds, as SCIM's `meta` dates.
pub(crate) fn rfc3339(unix_ms: i64) -> String {
    let time = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_follows_rfc7644() {
        let limits = Limits {
            default_page_size: 100,
            max_page_size: 500,
        };
        assert_eq!(
            limits.page(0, 0, true),
            Page {
                start_index: 1,
                offset: 0,
                limit: 100
            }
        );
        assert_eq!(limits.page(11, 5, false).offset, 10);
        assert_eq!(
            limits.page(1, 0, false).limit,
            0,
            "count=0 asks only for totals"
        );
        assert_eq!(limits.page(1, 10_000, false).limit, 500, "capped");
    }
}
