//! `metav1.LabelSelector` (`matchLabels` and `matchExpressions`, as objects carry it, unlike the
//! `?labelSelector=` text of [`crate::selector`]): matching labels, and validation with
//! Kubernetes' messages.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::validation::{label_value, qualified_name, BadValue, ErrorList};

/// Whether `selector` selects an object with `labels`. A requirement with an operator Kubernetes
/// does not know selects nothing (validation refuses it before it is stored).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    by_labels
        && selector
            .match_expressions
            .iter()
            .flatten()
            .all(|r| requirement_matches(r, labels))
}

fn requirement_matches(r: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let value = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// The field errors of `selector` at `field` (`spec.selector`).
pub fn validate(selector: &LabelSelector, field: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        for e in qualified_name(key) {
            errs.invalid(
                format!("{field}.matchLabels"),
                BadValue::Str(key.clone()),
                e,
            );
        }
        for e in label_value(value) {
            errs.invalid(
                format!("{field}.matchLabels"),
                BadValue::Str(value.clone()),
                e,
            );
        }
    }
    for (i, r) in selector.match_expressions.iter().flatten().enumerate() {
        let at = format!("{field}.matchExpressions[{i}]");
        let has_values = r.values.as_ref().is_some_and(|v| !v.is_empty());
        match r.operator.as_str() {
            "In" | "NotIn" if !has_values => errs.required(
                format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            ),
            "Exists" | "DoesNotExist" if has_values => errs.forbidden(
                format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.invalid(
                format!("{at}.operator"),
                BadValue::Str(other.to_string()),
                "not a valid selector operator",
            ),
        }
        for e in qualified_name(&r.key) {
            errs.invalid(format!("{at}.key"), BadValue::Str(r.key.clone()), e);
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selector(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).expect("a selector")
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_and_expressions_must_all_hold() {
        let s = selector(json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "back"]},
            {"key": "canary", "operator": "DoesNotExist"}
        ]}));
        assert!(matches(&s, &labels(&[("app", "web"), ("tier", "front")])));
        assert!(!matches(&s, &labels(&[("app", "web"), ("tier", "db")])));
        assert!(!matches(
            &s,
            &labels(&[("app", "web"), ("tier", "front"), ("canary", "1")])
        ));
        assert!(!matches(&s, &labels(&[("tier", "front")])));
        assert!(
            matches(&selector(json!({})), &labels(&[])),
            "empty selects all"
        );
    }

    #[test]
    fn bad_requirements_are_field_errors() {
        let s = selector(json!({"matchExpressions": [
            {"key": "a", "operator": "In"},
            {"key": "b", "operator": "Exists", "values": ["x"]},
            {"key": "c", "operator": "Near", "values": ["x"]}
        ]}));
        let errs: Vec<String> = validate(&s, "spec.selector")
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errs,
            [
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                "spec.selector.matchExpressions[2].operator: Invalid value: \"Near\": not a valid selector operator",
            ]
        );
    }
}
