//! Just enough XML: writing a JSON tree as MaaS360-style XML, and reading the leaf elements of
//! a flat request body such as `<authRequest><maaS360AdminAuth>…</maaS360AdminAuth></authRequest>`.

use serde_json::Value;

/// Writes `value` as an XML document. A one-key object becomes the root element (as in
/// `<users>…</users>`); anything else is wrapped in `<response>`. Arrays become repeated
/// elements named after their key, which is how MaaS360's XML carries lists.
pub(crate) fn to_xml(value: &Value) -> String {
    let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#);
    match value {
        Value::Object(map) if map.len() == 1 => {
            for (key, child) in map {
                element(&mut out, key, child);
            }
        }
        other => element(&mut out, "response", other),
    }
    out
}

fn element(out: &mut String, name: &str, value: &Value) {
    let name = element_name(name);
    match value {
        Value::Array(items) => {
            for item in items {
                element(out, &name, item);
            }
        }
        Value::Null => {
            out.push('<');
            out.push_str(&name);
            out.push_str("/>");
        }
        Value::Object(map) => {
            open(out, &name);
            for (key, child) in map {
                element(out, key, child);
            }
            close(out, &name);
        }
        Value::String(s) => {
            open(out, &name);
            escape_into(out, s);
            close(out, &name);
        }
        Value::Number(n) => {
            open(out, &name);
            out.push_str(&n.to_string());
            close(out, &name);
        }
        Value::Bool(b) => {
            open(out, &name);
            out.push_str(if *b { "true" } else { "false" });
            close(out, &name);
        }
    }
}

fn open(out: &mut String, name: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Keys come from our own code, but a bad one must still not produce broken XML.
fn element_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.chars().next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => cleaned,
        _ => format!("_{cleaned}"),
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The `(name, text)` of every element that holds only text, in document order. Attributes,
/// comments and nesting depth are ignored; malformed input yields fewer pairs, never a panic.
pub(crate) fn leaf_elements(xml: &str) -> Vec<(String, String)> {
    let mut leaves = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        rest = rest.get(start + 1..).unwrap_or("");
        let Some(end) = rest.find('>') else { break };
        let tag = rest.get(..end).unwrap_or("");
        rest = rest.get(end + 1..).unwrap_or("");
        if tag.starts_with(['/', '?', '!']) || tag.ends_with('/') {
            continue;
        }
        let name = tag.split_whitespace().next().unwrap_or("");
        if name.is_empty() {
            continue;
        }
        let text_end = rest.find('<').unwrap_or(rest.len());
        let after = rest.get(text_end..).unwrap_or("");
        let closing = format!("</{name}>");
        if after.starts_with(&closing) {
            let text = rest.get(..text_end).unwrap_or("");
            leaves.push((name.to_owned(), unescape(text.trim())));
            rest = after.get(closing.len()..).unwrap_or("");
        }
    }
    leaves
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn writes_lists_as_repeated_elements() {
        let xml = to_xml(
            &json!({"users": {"count": 2, "user": [{"userName": "a&b"}, {"userName": "c"}]}}),
        );
        assert!(xml.ends_with(
            "<users><count>2</count><user><userName>a&amp;b</userName></user><user><userName>c</userName></user></users>"
        ));
        let xml = to_xml(&json!({"errorCode": 1, "errorDesc": "x"}));
        assert!(
            xml.contains("<response><errorCode>1</errorCode><errorDesc>x</errorDesc></response>")
        );
    }

    #[test]
    fn reads_leaves_and_survives_garbage() {
        let leaves = leaf_elements(
            "<authRequest><maaS360AdminAuth><billingID>1</billingID><password>a&lt;b</password></maaS360AdminAuth></authRequest>",
        );
        assert_eq!(
            leaves,
            vec![
                ("billingID".to_owned(), "1".to_owned()),
                ("password".to_owned(), "a<b".to_owned())
            ]
        );
        for garbage in ["<", "<<>>", "<a>", "</a>", "<a>text", "<é>ü</é>", ">"] {
            let _ = leaf_elements(garbage);
        }
    }
}
