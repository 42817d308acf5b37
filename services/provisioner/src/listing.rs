//! List requests: RFC 7644 paging, and turning a SCIM filter into an indexed
//! SQL condition. Entra's matching queries (`userName eq`, `externalId eq`,
//! `displayName eq`, work email, and `and` of these) become index lookups, so
//! their cost does not grow with the directory. Anything else narrows what it
//! can in SQL and the exact SCIM evaluator decides each remaining row.

use dirsync_scim::{CompValue, CompareOp, Filter};
use sea_orm::sea_query::SimpleExpr;
use sea_orm::{Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QuerySelect, Select};

use crate::error::{ProvisionerError, Result};

/// Rows a filter may have to evaluate outside SQL before it is refused.
pub(crate) const MAX_SCAN_ROWS: u64 = 250_000;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) default_page_size: u32,
    pub(crate) max_page_size: u32,
}

/// One page: where it starts and how many rows it may hold (0 when only the total is wanted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) offset: u64,
    pub(crate) limit: u64,
}

impl Page {
    /// The 1-based index of the page's first row, as SCIM reports it.
    pub(crate) fn start_index(&self) -> u32 {
        u32::try_from(self.offset.saturating_add(1)).unwrap_or(u32::MAX)
    }

    /// The token of the page after this one, if rows remain past it.
    pub(crate) fn next_token(&self, returned: usize, total: u64) -> String {
        let next = self.offset.saturating_add(returned as u64);
        if returned == 0 || next >= total {
            String::new()
        } else {
            format!("{OFFSET_TOKEN}{next}")
        }
    }
}

/// Page tokens are opaque to callers; this one holds an offset.
const OFFSET_TOKEN: &str = "o";

/// What a list request asks for, in either paging style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRequest<'a> {
    pub(crate) page_size: i32,
    pub(crate) page_token: &'a str,
    /// SCIM's 1-based index; 0 when the caller pages by token.
    pub(crate) start_index: u32,
    pub(crate) count_only: bool,
}

impl Limits {
    /// The page a request asks for: an unset size means the default page, never "nothing";
    /// a size past the maximum is capped; SCIM's `start_index` wins over a token.
    pub(crate) fn page(&self, request: PageRequest<'_>) -> Result<Page> {
        let limit = if request.count_only {
            0
        } else {
            match u32::try_from(request.page_size) {
                Ok(0) => self.default_page_size,
                Ok(size) => size.min(self.max_page_size),
                Err(_) => {
                    return Err(ProvisionerError::invalid(
                        "page_size",
                        "page_size must not be negative",
                    ));
                }
            }
        };
        let offset = if request.start_index > 0 {
            u64::from(request.start_index - 1)
        } else if request.page_token.is_empty() {
            0
        } else {
            request
                .page_token
                .strip_prefix(OFFSET_TOKEN)
                .and_then(|offset| offset.parse().ok())
                .ok_or_else(|| {
                    ProvisionerError::invalid(
                        "page_token",
                        "page_token is not one this server issued",
                    )
                })?
        };
        Ok(Page {
            offset,
            limit: u64::from(limit),
        })
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

/// One page of the rows `query` selects (tenant, an exact SQL filter and the order already
/// applied), and how many match in all. A first page that is not full is the whole result, so
/// Entra's matching queries cost one index seek and no count.
pub(crate) async fn exact_page<E>(
    db: &impl ConnectionTrait,
    query: Select<E>,
    page: Page,
) -> Result<(Vec<E::Model>, u64)>
where
    E: EntityTrait,
    E::Model: Send + Sync,
{
    let rows = if page.limit == 0 {
        Vec::new()
    } else {
        query
            .clone()
            .offset(page.offset)
            .limit(page.limit)
            .all(db)
            .await?
    };
    let total = if page.offset == 0 && (rows.len() as u64) < page.limit {
        rows.len() as u64
    } else {
        query.count(db).await?
    };
    Ok((rows, total))
}

/// The rows SQL could only narrow, for the exact SCIM evaluator to decide: at most
/// [`MAX_SCAN_ROWS`], else the filter is refused as too costly.
pub(crate) async fn candidates<E>(
    db: &impl ConnectionTrait,
    query: Select<E>,
) -> Result<Vec<E::Model>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
{
    let candidates = query.limit(MAX_SCAN_ROWS + 1).all(db).await?;
    if candidates.len() as u64 > MAX_SCAN_ROWS {
        return Err(too_many());
    }
    Ok(candidates)
}

/// One page of rows the evaluator kept, and how many it kept in all.
pub(crate) fn page_of<T>(matched: Vec<T>, page: Page) -> (Vec<T>, u64) {
    let total = matched.len() as u64;
    let rows = matched
        .into_iter()
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
        .collect();
    (rows, total)
}

pub(crate) fn parse_filter(raw: &str) -> Result<Option<Filter>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    dirsync_scim::parse_filter(raw)
        .map(Some)
        .map_err(|error| ProvisionerError::scim(error, "filter"))
}

pub(crate) fn too_many() -> ProvisionerError {
    ProvisionerError::scim_type(
        dirsync_scim::ScimType::TooMany,
        Some("filter"),
        format!(
            "the filter cannot use an index and would evaluate more than {MAX_SCAN_ROWS} resources; \
             filter on userName, externalId, id, displayName or the work email"
        ),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(page_size: i32, page_token: &str, start_index: u32) -> PageRequest<'_> {
        PageRequest {
            page_size,
            page_token,
            start_index,
            count_only: false,
        }
    }

    #[test]
    fn paging_by_index_and_by_token() {
        let limits = Limits {
            default_page_size: 100,
            max_page_size: 500,
        };
        let first = limits.page(request(0, "", 0)).unwrap();
        assert_eq!(
            first,
            Page {
                offset: 0,
                limit: 100
            },
            "unset size is the default page"
        );
        assert_eq!(first.start_index(), 1);
        assert_eq!(limits.page(request(5, "", 11)).unwrap().offset, 10);
        assert_eq!(
            limits.page(request(10_000, "", 1)).unwrap().limit,
            500,
            "capped"
        );
        let count_only = PageRequest {
            count_only: true,
            ..request(0, "", 1)
        };
        assert_eq!(limits.page(count_only).unwrap().limit, 0);
        let token = first.next_token(100, 250);
        assert_eq!(limits.page(request(0, &token, 0)).unwrap().offset, 100);
        assert_eq!(
            Page {
                offset: 200,
                limit: 100
            }
            .next_token(50, 250),
            ""
        );
        assert!(limits.page(request(0, "garbage", 0)).is_err());
        assert!(limits.page(request(-1, "", 0)).is_err());
    }
}
