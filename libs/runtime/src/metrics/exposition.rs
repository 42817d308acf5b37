//! A checker for Prometheus' text exposition format (version 0.0.4), so that
//! what the hand-written encoder and the scrape-time sources write is proven
//! parseable by the tests that scrape a real process, not only grepped for a
//! line. It checks what a scraper rejects or silently mis-reads: malformed
//! names, labels or values, samples before their `# TYPE`, a family declared
//! twice, a series written twice, histogram buckets that are not cumulative.

use std::collections::{BTreeMap, BTreeSet};

/// Checks a whole exposition; the error names the first offending line.
pub fn check(text: &str) -> Result<(), String> {
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = BTreeSet::new();
    let mut series = BTreeSet::new();
    let mut last_bucket: BTreeMap<String, f64> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let at = |why: String| format!("line {}: {why}: {line:?}", index + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            check_name(name).map_err(at)?;
            if !helped.insert(name.to_owned()) {
                return Err(at(format!("a second HELP for {name}")));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap_or_default();
            let kind = parts.next().unwrap_or_default();
            check_name(name).map_err(at)?;
            if !matches!(
                kind,
                "counter" | "gauge" | "histogram" | "summary" | "untyped"
            ) {
                return Err(at(format!("unknown type {kind:?}")));
            }
            if families.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(at(format!("a second TYPE for {name}")));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        let family = family_of(&sample.name, &families)
            .ok_or_else(|| at(format!("{} has no TYPE before it", sample.name)))?;
        if !series.insert((sample.name.clone(), sample.labels.clone())) {
            return Err(at("the same series twice".to_owned()));
        }
        if families
            .get(&family)
            .is_some_and(|kind| kind == "histogram")
            && sample.name.ends_with("_bucket")
        {
            let others: Vec<_> = sample.labels.iter().filter(|(k, _)| k != "le").collect();
            let key = format!("{}{others:?}", sample.name);
            let previous = last_bucket.insert(key, sample.value).unwrap_or(0.0);
            if sample.value < previous {
                return Err(at("histogram buckets are not cumulative".to_owned()));
            }
        }
    }
    Ok(())
}

type Labels = Vec<(String, String)>;

struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

/// The family a sample belongs to: its own name, or a histogram's / summary's
/// name without the `_bucket`, `_sum` or `_count` suffix.
fn family_of(name: &str, families: &BTreeMap<String, String>) -> Option<String> {
    if families.contains_key(name) {
        return Some(name.to_owned());
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|suffix| name.strip_suffix(suffix))
        .find(|base| {
            families
                .get(*base)
                .is_some_and(|kind| kind == "histogram" || kind == "summary")
        })
        .map(str::to_owned)
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "a sample without a value".to_owned())?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| "a sample without a value".to_owned())?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        other => other
            .parse::<f64>()
            .map_err(|_| format!("value {other:?} is no number"))?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("timestamp {timestamp:?} is no integer"))?;
    }
    if fields.next().is_some() {
        return Err("trailing text after the value".to_owned());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y"}` (the text after `{`) and returns the labels and what follows `}`.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        if let Some(after) = text.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = text
            .find('=')
            .ok_or_else(|| "a label without a value".to_owned())?;
        let key = &text[..eq];
        check_name(key).map_err(|_| format!("bad label name {key:?}"))?;
        if labels.iter().any(|(k, _)| k == key) {
            return Err(format!("label {key} twice"));
        }
        let quoted = text[eq + 1..]
            .strip_prefix('"')
            .ok_or_else(|| format!("label {key} is not quoted"))?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => return Err(format!("bad escape in label {key}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err(format!("label {key} is not closed")),
            }
        };
        labels.push((key.to_owned(), value));
        text = &quoted[end + 1..];
        if let Some(after) = text.strip_prefix(',') {
            text = after;
        } else if !text.starts_with('}') {
            return Err("the label set is not closed".to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn a_well_formed_exposition_passes() {
        let text = "# HELP a_total Requests.\n# TYPE a_total counter\n\
                    a_total{route=\"/x\",code=\"200\"} 3\na_total{route=\"q\\\"\\n\"} 1\n\
                    # TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\n\
                    h_sum 0.3\nh_count 2\n# TYPE g gauge\ng 7 1700000000000\n";
        assert_eq!(check(text), Ok(()));
    }

    #[test]
    fn what_a_scraper_rejects_is_refused() {
        for (text, why) in [
            ("a_total 1\n", "no TYPE"),
            ("# TYPE a counter\n# TYPE a counter\n", "second TYPE"),
            ("# TYPE a gauge\na 1\na 2\n", "same series"),
            ("# TYPE a gauge\na{x=\"1\" 2\n", "not closed"),
            ("# TYPE a gauge\na{x=\"1 2\n", "not closed"),
            ("# TYPE a gauge\na{x=1} 2\n", "not quoted"),
            ("# TYPE a gauge\na{x=\"1\",x=\"2\"} 2\n", "twice"),
            ("# TYPE a gauge\na one\n", "no number"),
            ("# TYPE 1a gauge\n", "bad metric name"),
            ("# TYPE a gauge\na 1 2 3\n", "trailing"),
            (
                "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\n",
                "cumulative",
            ),
        ] {
            let error = check(text).expect_err(text);
            assert!(error.contains(why), "{text:?}: {error}");
        }
    }
}
