//! LimitRanges (core/v1) and the LimitRanger admission of pods, as Kubernetes has them
//! (`plugin/pkg/admission/limitranger`): a range's defaults, its validation, the requests and
//! limits a new pod's containers get from it, and the minimum, maximum and ratio checks, in
//! Kubernetes' words. Only `Container` and `Pod` items act on pods; kubelite serves no
//! PersistentVolumeClaims, so a `PersistentVolumeClaim` item is refused.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, LimitRange, LimitRangeItem, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity::{self, Nanos};
use crate::quota::show;
use crate::validation::{BadValue, ErrorList};

type Amounts = BTreeMap<String, Quantity>;

fn amount(map: Option<&Amounts>, name: &str) -> Option<Nanos> {
    map.and_then(|m| m.get(name))
        .and_then(|q| quantity::parse(&q.0))
}

/// Defaults of a new range: a container item's `default` from its `max`, `defaultRequest` from
/// `default` and then from `min`.
pub fn set_defaults(range: &mut LimitRange) {
    let Some(spec) = range.spec.as_mut() else {
        return;
    };
    for item in spec.limits.iter_mut().filter(|i| i.type_ == "Container") {
        for (name, q) in item.max.clone().into_iter().flatten() {
            item.default
                .get_or_insert_with(BTreeMap::new)
                .entry(name)
                .or_insert(q);
        }
        for source in [item.default.clone(), item.min.clone()] {
            for (name, q) in source.into_iter().flatten() {
                item.default_request
                    .get_or_insert_with(BTreeMap::new)
                    .entry(name)
                    .or_insert(q);
            }
        }
    }
}

/// The field errors of a range.
pub fn validate(range: &LimitRange) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(spec) = &range.spec else {
        return errs;
    };
    let mut types = Vec::new();
    for (i, item) in spec.limits.iter().enumerate() {
        let at = format!("spec.limits[{i}]");
        if types.contains(&item.type_) {
            errs.duplicate(format!("{at}.type"), BadValue::Str(item.type_.clone()));
        }
        types.push(item.type_.clone());
        match item.type_.as_str() {
            "Container" => {}
            "Pod" => {
                for (field, set) in [
                    ("default", &item.default),
                    ("defaultRequest", &item.default_request),
                ] {
                    if set.as_ref().is_some_and(|m| !m.is_empty()) {
                        errs.forbidden(
                            format!("{at}.{field}"),
                            "may not be specified when `type` is 'Pod'",
                        );
                    }
                }
            }
            "PersistentVolumeClaim" => errs.forbidden(
                format!("{at}.type"),
                "kubelite serves no PersistentVolumeClaims",
            ),
            other => errs.invalid(
                format!("{at}.type"),
                BadValue::Str(other.to_string()),
                "must be a standard limit type or fully qualified",
            ),
        }
        validate_bounds(item, &at, &mut errs);
    }
    errs
}

fn validate_bounds(item: &LimitRangeItem, at: &str, errs: &mut ErrorList) {
    let names: std::collections::BTreeSet<&String> =
        [&item.max, &item.min, &item.default, &item.default_request]
            .into_iter()
            .flat_map(|m| m.iter().flat_map(|m| m.keys()))
            .collect();
    for name in names {
        let get = |m: &Option<Amounts>| amount(m.as_ref(), name);
        let (max, min, default, request) = (
            get(&item.max),
            get(&item.min),
            get(&item.default),
            get(&item.default_request),
        );
        let s = |n: Nanos| show(name, n);
        let checks = [
            (
                min,
                max,
                "min value {a} is greater than max value {b}",
                "min",
            ),
            (
                min,
                request,
                "min value {a} is greater than default request value {b}",
                "defaultRequest",
            ),
            (
                request,
                max,
                "default request value {a} is greater than max value {b}",
                "defaultRequest",
            ),
            (
                request,
                default,
                "default request value {a} is greater than default limit value {b}",
                "defaultRequest",
            ),
            (
                min,
                default,
                "min value {a} is greater than default value {b}",
                "default",
            ),
            (
                default,
                max,
                "default value {a} is greater than max value {b}",
                "default",
            ),
        ];
        for (a, b, text, field) in checks {
            if let (Some(a), Some(b)) = (a, b) {
                if a > b {
                    let detail = text.replace("{a}", &s(a)).replace("{b}", &s(b));
                    errs.invalid(format!("{at}.{field}[{name}]"), BadValue::Str(s(a)), detail);
                }
            }
        }
    }
}

/// The LimitRanger admission of a new pod: missing requests and limits of its containers from
/// the ranges' defaults (noted in the `kubernetes.io/limit-ranger` annotation), then the
/// minimum, maximum and ratio checks; refused with Kubernetes' texts.
pub fn admit(pod: &mut Pod, ranges: &[LimitRange]) -> Result<(), String> {
    let items: Vec<&LimitRangeItem> = ranges
        .iter()
        .flat_map(|r| r.spec.iter().flat_map(|s| s.limits.iter()))
        .collect();
    let mut notes = Vec::new();
    if let Some(spec) = pod.spec.as_mut() {
        for item in items.iter().filter(|i| i.type_ == "Container") {
            for c in spec.containers.iter_mut() {
                default_container(c, item, "container", &mut notes);
            }
            for c in spec.init_containers.iter_mut().flatten() {
                default_container(c, item, "init container", &mut notes);
            }
        }
    }
    if !notes.is_empty() {
        pod.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(
                "kubernetes.io/limit-ranger".into(),
                format!("LimitRanger plugin set: {}", notes.join("; ")),
            );
    }
    for item in &items {
        let errors = check_item(pod, item);
        match errors.len() {
            0 => {}
            1 => return Err(errors[0].clone()),
            _ => return Err(format!("[{}]", errors.join(", "))),
        }
    }
    Ok(())
}

fn default_container(
    c: &mut Container,
    item: &LimitRangeItem,
    what: &str,
    notes: &mut Vec<String>,
) {
    let resources = c.resources.get_or_insert_with(Default::default);
    let mut set = |defaults: &Option<Amounts>, target: &mut Option<Amounts>, kind: &str| {
        let mut names = Vec::new();
        for (name, q) in defaults.iter().flatten() {
            let map = target.get_or_insert_with(BTreeMap::new);
            if !map.contains_key(name) {
                map.insert(name.clone(), q.clone());
                names.push(name.clone());
            }
        }
        if !names.is_empty() {
            notes.push(format!("{} {kind} for {what} {}", names.join(", "), c.name));
        }
    };
    set(&item.default_request, &mut resources.requests, "request");
    set(&item.default, &mut resources.limits, "limit");
}

/// The violations of one item by the pod (per container for `Container`, summed for `Pod`).
fn check_item(pod: &Pod, item: &LimitRangeItem) -> Vec<String> {
    let spec = pod.spec.clone().unwrap_or_default();
    match item.type_.as_str() {
        "Container" => spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .flat_map(|c| {
                let r = c.resources.clone().unwrap_or_default();
                violations(item, "Container", r.requests.as_ref(), r.limits.as_ref())
            })
            .collect(),
        "Pod" => {
            let totals = |r: crate::resources::Resources| -> Amounts {
                BTreeMap::from([
                    ("cpu".to_string(), Quantity(format!("{}m", r.milli_cpu))),
                    ("memory".to_string(), Quantity(r.memory.to_string())),
                ])
                .into_iter()
                .filter(|(_, q)| q.0 != "0m" && q.0 != "0")
                .collect()
            };
            // The Pod item counts the containers, not the overhead.
            let spec = k8s_openapi::api::core::v1::PodSpec {
                overhead: None,
                ..spec
            };
            let requests = totals(crate::resources::pod_requests(&spec));
            let limits = totals(crate::resources::pod_limits(&spec));
            violations(item, "Pod", Some(&requests), Some(&limits))
        }
        _ => Vec::new(),
    }
}

fn violations(
    item: &LimitRangeItem,
    kind: &str,
    requests: Option<&Amounts>,
    limits: Option<&Amounts>,
) -> Vec<String> {
    let mut out = Vec::new();
    // One error per bound and resource, the first that holds (as Kubernetes checks them).
    for (name, min) in item.min.iter().flatten() {
        let min_n = quantity::parse(&min.0).unwrap_or(0);
        let (r, l) = (amount(requests, name), amount(limits, name));
        let head = format!("minimum {name} usage per {kind} is {}", min.0);
        match (r, l) {
            (None, _) => out.push(format!("{head}.  No request is specified")),
            (Some(r), _) if r < min_n => {
                out.push(format!("{head}, but request is {}", show(name, r)))
            }
            (_, Some(l)) if l < min_n => {
                out.push(format!("{head}, but limit is {}", show(name, l)))
            }
            _ => {}
        }
    }
    for (name, max) in item.max.iter().flatten() {
        let max_n = quantity::parse(&max.0).unwrap_or(0);
        let (r, l) = (amount(requests, name), amount(limits, name));
        let head = format!("maximum {name} usage per {kind} is {}", max.0);
        match (l, r) {
            (None, _) => out.push(format!("{head}.  No limit is specified")),
            (Some(l), _) if l > max_n => {
                out.push(format!("{head}, but limit is {}", show(name, l)))
            }
            (_, Some(r)) if r > max_n => {
                out.push(format!("{head}, but request is {}", show(name, r)))
            }
            _ => {}
        }
    }
    for (name, ratio) in item.max_limit_request_ratio.iter().flatten() {
        let wanted = quantity::parse(&ratio.0).unwrap_or(0);
        let (l, r) = (
            amount(limits, name).unwrap_or(0),
            amount(requests, name).unwrap_or(0),
        );
        if l == 0 {
            out.push(format!("{name} max limit to request ratio per {kind} is {}, but no limit is specified or limit is 0", ratio.0));
        } else if r == 0 {
            out.push(format!("{name} max limit to request ratio per {kind} is {}, but no request is specified or request is 0", ratio.0));
        } else if l * 1_000_000_000 / r > wanted {
            let provided = l as f64 / r as f64;
            out.push(format!("{name} max limit to request ratio per {kind} is {}, but provided ratio is {provided:.6}", ratio.0));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range(items: serde_json::Value) -> LimitRange {
        let mut r: LimitRange = serde_json::from_value(json!({"metadata": {"name": "limits"},
            "spec": {"limits": items}}))
        .expect("a range");
        set_defaults(&mut r);
        r
    }

    fn pod(resources: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "i", "resources": resources}
        ]}}))
        .expect("a pod")
    }

    #[test]
    fn containers_get_the_defaults_and_a_note_of_them() {
        let r = range(
            json!([{"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"},
                              "defaultRequest": {"cpu": "250m"}}]),
        );
        let mut p = pod(json!({"requests": {"memory": "64Mi"}}));
        admit(&mut p, &[r]).expect("admitted");
        let res = p.spec.as_ref().expect("spec").containers[0]
            .resources
            .clone()
            .expect("set");
        let requests = res.requests.expect("requests");
        assert_eq!(requests["cpu"].0, "250m");
        assert_eq!(requests["memory"].0, "64Mi");
        assert_eq!(res.limits.expect("limits")["memory"].0, "128Mi");
        assert_eq!(
            p.metadata.annotations.expect("noted")["kubernetes.io/limit-ranger"],
            "LimitRanger plugin set: cpu request for container c; cpu, memory limit for container c"
        );
    }

    #[test]
    fn bounds_are_checked_in_kubernetes_words() {
        let r =
            range(json!([{"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "64Mi"}}]));
        let mut p = pod(json!({"limits": {"cpu": "2"}, "requests": {"memory": "32Mi"}}));
        assert_eq!(
            admit(&mut p, &[r]).expect_err("refused"),
            "[minimum memory usage per Container is 64Mi, but request is 32Mi, maximum cpu usage per Container is 1, but limit is 2]"
        );
        let ratio = range(json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]));
        let mut p = pod(json!({"limits": {"cpu": "2"}, "requests": {"cpu": "500m"}}));
        assert_eq!(
            admit(&mut p, &[ratio]).expect_err("refused"),
            "cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000"
        );
    }

    #[test]
    fn ranges_are_validated() {
        let r = range(
            json!([{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}},
                             {"type": "Pod", "default": {"cpu": "1"}}]),
        );
        let errs: Vec<String> = validate(&r).iter().map(|e| e.to_string()).collect();
        assert!(
            errs.iter()
                .any(|e| e.ends_with("min value 2 is greater than max value 1")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e
                == "spec.limits[1].default: Forbidden: may not be specified when `type` is 'Pod'"),
            "{errs:?}"
        );
    }
}
