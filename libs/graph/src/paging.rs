//! One page of a Graph collection and the links that continue it (docs/graph.md §2.1, §3.1).
//! Links are followed verbatim: this module never builds or edits one.

use serde_json::Value;

use crate::error::GraphError;

/// Pages a single read may follow before it is taken for a loop: 100,000 pages of 999 is
/// two orders of magnitude beyond the largest tenant dirsync aims at.
pub(crate) const MAX_PAGES: u32 = 100_000;

#[derive(Debug, Default)]
pub(crate) struct Page {
    pub(crate) value: Vec<Value>,
    /// `@odata.nextLink`: there is more; follow it exactly.
    pub(crate) next_link: Option<String>,
    /// `@odata.deltaLink`: the delta round is over; the caller stores it.
    pub(crate) delta_link: Option<String>,
}

impl Page {
    pub(crate) fn parse(body: Option<Value>) -> Result<Self, GraphError> {
        let Some(Value::Object(mut body)) = body else {
            return Err(GraphError::InvalidResponse(
                "a collection page is not a JSON object".to_owned(),
            ));
        };
        let value = match body.remove("value") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(GraphError::InvalidResponse(
                    "a collection page has no value array".to_owned(),
                ));
            }
        };
        let link = |body: &mut serde_json::Map<String, Value>, name: &str| match body.remove(name) {
            Some(Value::String(link)) if !link.is_empty() => Some(link),
            _ => None,
        };
        let next_link = link(&mut body, "@odata.nextLink");
        let delta_link = link(&mut body, "@odata.deltaLink");
        Ok(Self {
            value,
            next_link,
            delta_link,
        })
    }
}

/// Guards a nextLink chain against a server that hands back the same link again or never
/// ends.
#[derive(Debug, Default)]
pub(crate) struct LinkGuard {
    pages: u32,
    last: Option<String>,
}

impl LinkGuard {
    pub(crate) fn next(&mut self, link: &str) -> Result<(), GraphError> {
        self.pages += 1;
        if self.pages > MAX_PAGES {
            return Err(GraphError::InvalidResponse(format!(
                "more than {MAX_PAGES} pages; giving up"
            )));
        }
        if self.last.as_deref() == Some(link) {
            return Err(GraphError::InvalidResponse(format!(
                "Graph returned the nextLink it was called with: {link}"
            )));
        }
        self.last = Some(link.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_value_and_links() {
        let page = Page::parse(Some(json!({
            "@odata.context": "x",
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=a",
            "value": [{"id": "1"}]
        })));
        let Ok(page) = page else {
            panic!("parse");
        };
        assert_eq!(page.value.len(), 1);
        assert!(page.next_link.is_some());
        assert!(page.delta_link.is_none());
        assert!(Page::parse(Some(json!({"values": []}))).is_err());
        assert!(Page::parse(None).is_err());
    }

    #[test]
    fn a_repeated_link_is_a_loop() {
        let mut guard = LinkGuard::default();
        assert!(guard.next("a").is_ok());
        assert!(guard.next("b").is_ok());
        assert!(guard.next("b").is_err());
    }
}
