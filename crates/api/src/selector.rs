//! Label and field selectors, as `?labelSelector=` and `?fieldSelector=` carry them.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

impl Selector {
    /// Parses a label selector (`a=b,c!=d,e in (x,y),!f`).
    pub fn parse_labels(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Selector(reqs));
        }
        for part in split_top(s) {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!(
                    "unable to parse requirement: found '', expected: identifier (in {s:?})"
                ));
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement {
                    key: key.trim().to_string(),
                    op: Op::DoesNotExist,
                }
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement {
                    key: k.trim().to_string(),
                    op: Op::NotEquals(v.trim().to_string()),
                }
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement {
                    key: k.trim().to_string(),
                    op: Op::Equals(v.trim().to_string()),
                }
            } else if let Some((k, set)) = part.split_once(" notin ") {
                Requirement {
                    key: k.trim().to_string(),
                    op: Op::NotIn(
                        parse_set(set)
                            .ok_or_else(|| format!("unable to parse requirement: {part:?}"))?,
                    ),
                }
            } else if let Some((k, set)) = part.split_once(" in ") {
                Requirement {
                    key: k.trim().to_string(),
                    op: Op::In(
                        parse_set(set)
                            .ok_or_else(|| format!("unable to parse requirement: {part:?}"))?,
                    ),
                }
            } else {
                Requirement {
                    key: part.to_string(),
                    op: Op::Exists,
                }
            };
            if let Some(e) = crate::validation::qualified_name(&req.key).first() {
                return Err(format!(
                    "unable to parse requirement: <nil>: Invalid value: {}: {e}",
                    crate::validation::go_quote(&req.key)
                ));
            }
            reqs.push(req);
        }
        Ok(Selector(reqs))
    }

    /// Parses a field selector (`metadata.name=x,status.phase!=Running`): only `=`, `==` and `!=`.
    pub fn parse_fields(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Selector(reqs));
        }
        for part in s.split(',') {
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement {
                    key: k.trim().to_string(),
                    op: Op::NotEquals(v.to_string()),
                }
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement {
                    key: k.trim().to_string(),
                    op: Op::Equals(v.to_string()),
                }
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            reqs.push(req);
        }
        Ok(Selector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys this selector tests, so a caller can reject fields it does not support.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|r| r.key.as_str())
    }

    /// The value required by an `=` on `key`, if the selector has one.
    pub fn equals(&self, key: &str) -> Option<&str> {
        self.0.iter().find_map(|r| match &r.op {
            Op::Equals(v) if r.key == key => Some(v.as_str()),
            _ => None,
        })
    }

    /// Whether a set of labels (or fields) satisfies every requirement.
    pub fn matches(&self, values: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| {
            let v = values.get(&r.key);
            match &r.op {
                Op::Equals(want) => v == Some(want),
                Op::NotEquals(want) => v != Some(want),
                Op::In(set) => v.is_some_and(|v| set.contains(v)),
                Op::NotIn(set) => v.is_none_or(|v| !set.contains(v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_forms() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing,app=web", true),
            ("", true),
        ] {
            assert_eq!(
                Selector::parse_labels(sel).unwrap().matches(&l),
                want,
                "{sel}"
            );
        }
        assert!(Selector::parse_labels("a b=c").is_err());
    }

    #[test]
    fn field_selector_forms() {
        let f = labels(&[("metadata.name", "x"), ("status.phase", "Running")]);
        assert!(Selector::parse_fields("metadata.name=x")
            .unwrap()
            .matches(&f));
        assert!(!Selector::parse_fields("status.phase!=Running")
            .unwrap()
            .matches(&f));
        assert!(Selector::parse_fields("nonsense").is_err());
        assert_eq!(
            Selector::parse_fields("spec.nodeName=n1")
                .unwrap()
                .equals("spec.nodeName"),
            Some("n1")
        );
    }
}
