//! ResourceQuotas (core/v1) as Kubernetes enforces them (`pkg/quota/v1`, the resourcequota
//! admission plugin): what a pod or another object uses, the check a create must pass (`exceeded
//! quota`, `must specify`, `status unknown`), the usage the quota controller computes, and which
//! resource names a quota may hold. kubelite enforces pods' compute resources and object counts;
//! a quota naming anything else, or with scopes, is refused rather than silently not enforced.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity::{self, Nanos};
use crate::resource::{Resource, RESOURCES};
use crate::validation::{BadValue, ErrorList};

/// Resource name → amount.
pub type Usage = BTreeMap<String, Nanos>;

const NANO: Nanos = 1_000_000_000;

/// The compute resources of pods a quota may limit.
const COMPUTE: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

/// Those every container must state once a quota limits them.
const CONSTRAINED: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// Object counts by their short names (`services` counts what `count/services` counts).
const LEGACY_COUNTS: &[&str] = &[
    "services",
    "secrets",
    "configmaps",
    "resourcequotas",
    "replicationcontrollers",
];

/// `count/pods`, `count/poddisruptionbudgets.policy`.
pub fn count_name(resource: &Resource) -> String {
    if resource.group.is_empty() {
        format!("count/{}", resource.plural)
    } else {
        format!("count/{}.{}", resource.plural, resource.group)
    }
}

/// Whether kubelite enforces a quota on `name`.
fn enforced(name: &str) -> bool {
    COMPUTE.contains(&name)
        || name == "pods"
        || LEGACY_COUNTS.contains(&name)
        || RESOURCES.iter().any(|r| count_name(r) == name)
}

/// Names Kubernetes takes in a quota that kubelite has nothing to count for.
fn kubernetes_only(name: &str) -> bool {
    name.contains('/')
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
        || [
            "persistentvolumeclaims",
            "services.nodeports",
            "services.loadbalancers",
            "requests.storage",
        ]
        .contains(&name)
}

fn is_binary(name: &str) -> bool {
    name.ends_with("memory") || name.ends_with("ephemeral-storage")
}

/// `amount` of `name` as Kubernetes prints it.
pub fn show(name: &str, amount: Nanos) -> String {
    quantity::format(amount, is_binary(name))
}

/// The names and amounts of a quantity map; what does not parse counts as nothing.
pub fn parse_map(map: Option<&BTreeMap<String, Quantity>>) -> Usage {
    map.into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), quantity::parse(&v.0).unwrap_or(0)))
        .collect()
}

/// A quantity map of `usage`.
pub fn quantities(usage: &Usage) -> BTreeMap<String, Quantity> {
    usage
        .iter()
        .map(|(k, v)| (k.clone(), Quantity(show(k, *v))))
        .collect()
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// What `pod` uses: one `count/pods` always, and while it is not finished `pods` and its compute
/// requests and limits.
pub fn pod_usage(pod: &Pod) -> Usage {
    let mut usage = Usage::from([("count/pods".to_string(), NANO)]);
    if is_terminal(pod) {
        return usage;
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let requests = crate::resources::pod_requests(&spec);
    let limits = crate::resources::pod_limits(&spec);
    let milli = |m: i64| Nanos::from(m) * 1_000_000;
    let units = |u: i64| Nanos::from(u) * NANO;
    usage.insert("pods".into(), NANO);
    for (name, amount) in [
        ("cpu", milli(requests.milli_cpu)),
        ("memory", units(requests.memory)),
        ("ephemeral-storage", units(requests.ephemeral_storage)),
    ] {
        usage.insert(name.into(), amount);
        usage.insert(format!("requests.{name}"), amount);
    }
    usage.insert("limits.cpu".into(), milli(limits.milli_cpu));
    usage.insert("limits.memory".into(), units(limits.memory));
    usage.insert(
        "limits.ephemeral-storage".into(),
        units(limits.ephemeral_storage),
    );
    usage
}

/// What one new object of `resource` uses: one of its count.
pub fn object_usage(resource: &Resource) -> Usage {
    let mut usage = Usage::from([(count_name(resource), NANO)]);
    if resource.group.is_empty() && LEGACY_COUNTS.contains(&resource.plural) {
        usage.insert(resource.plural.to_string(), NANO);
    }
    usage
}

/// The names a quota's hard limits may hold that `usage` speaks of.
fn matched<'a>(hard: &'a Usage, usage: &Usage) -> Vec<&'a String> {
    hard.keys().filter(|k| usage.contains_key(*k)).collect()
}

fn pretty(usage: &Usage, keys: &[&String]) -> String {
    keys.iter()
        .map(|k| format!("{k}={}", show(k, usage.get(*k).copied().unwrap_or(0))))
        .collect::<Vec<_>>()
        .join(",")
}

/// The containers of `pod` that do not state a resource a quota constrains:
/// `limits.cpu for: a,b; requests.memory for: a`.
fn missing(pod: &Pod, hard: &Usage) -> Option<String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let containers: Vec<_> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut parts = Vec::new();
    for name in CONSTRAINED.iter().filter(|n| hard.contains_key(**n)) {
        let (kind, resource) = match name.split_once('.') {
            Some(("limits", r)) => ("limits", r),
            Some((_, r)) => ("requests", r),
            None => ("requests", *name),
        };
        let mut lacking: Vec<&str> = containers
            .iter()
            .filter(|c| {
                let r = c.resources.as_ref();
                let map = if kind == "limits" {
                    r.and_then(|r| r.limits.as_ref())
                } else {
                    r.and_then(|r| r.requests.as_ref())
                };
                !map.is_some_and(|m| m.contains_key(resource))
            })
            .map(|c| c.name.as_str())
            .collect();
        lacking.sort_unstable();
        if !lacking.is_empty() {
            parts.push(format!("{name} for: {}", lacking.join(",")));
        }
    }
    parts.sort();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The check of a create that uses `usage` (of `pod`, when it is one) against the namespace's
/// quotas: the quotas' new `status.used`, by quota name, or the reason it is refused.
pub fn charge(
    usage: &Usage,
    pod: Option<&Pod>,
    quotas: &[ResourceQuota],
) -> Result<Vec<(String, Usage)>, String> {
    let mut charged = Vec::new();
    for quota in quotas {
        let name = quota.metadata.name.clone().unwrap_or_default();
        let status = quota.status.clone().unwrap_or_default();
        let hard = parse_map(status.hard.as_ref());
        let keys = matched(&hard, usage);
        if keys.is_empty() {
            continue;
        }
        if let Some(lacking) = pod.and_then(|p| missing(p, &hard)) {
            return Err(format!("failed quota: {name}: must specify {lacking}"));
        }
        let mut used = parse_map(status.used.as_ref());
        let unknown: Vec<&str> = keys
            .iter()
            .filter(|k| !used.contains_key(**k))
            .map(|k| k.as_str())
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "status unknown for quota: {name}, resources: {}",
                unknown.join(",")
            ));
        }
        let requested: Vec<&String> = keys.into_iter().filter(|k| usage[*k] != 0).collect();
        let exceeded: Vec<&String> = requested
            .iter()
            .copied()
            .filter(|k| used[*k].saturating_add(usage[*k]) > hard[*k])
            .collect();
        if !exceeded.is_empty() {
            return Err(format!(
                "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                pretty(usage, &exceeded),
                pretty(&used, &exceeded),
                pretty(&hard, &exceeded)
            ));
        }
        if requested.is_empty() {
            continue;
        }
        for k in requested {
            *used.entry(k.clone()).or_insert(0) += usage[k];
        }
        charged.push((name, used));
    }
    Ok(charged)
}

/// The usage the quota controller writes: for each hard name, what the namespace's pods and
/// object counts add up to.
pub fn usage_of(hard: &Usage, pods: &[Pod], counts: &BTreeMap<String, i64>) -> Usage {
    let mut total = Usage::new();
    for pod in pods {
        for (k, v) in pod_usage(pod) {
            *total.entry(k).or_insert(0) += v;
        }
    }
    hard.keys()
        .map(|k| {
            let amount = match counts.get(k) {
                Some(n) => Nanos::from(*n) * NANO,
                None => total.get(k).copied().unwrap_or(0),
            };
            (k.clone(), amount)
        })
        .collect()
}

/// The object count names among `hard`, with the resource each counts.
pub fn counted(hard: &Usage) -> Vec<(String, &'static Resource)> {
    hard.keys()
        .filter(|k| {
            !COMPUTE.contains(&k.as_str()) && k.as_str() != "pods" && k.as_str() != "count/pods"
        })
        .filter_map(|k| {
            let r = RESOURCES
                .iter()
                .find(|r| count_name(r) == *k || (r.group.is_empty() && r.plural == k.as_str()))?;
            Some((k.clone(), r))
        })
        .collect()
}

/// The field errors of a quota's spec.
pub fn validate(quota: &ResourceQuota) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = quota.spec.clone().unwrap_or_default();
    for (name, value) in spec.hard.iter().flatten() {
        let field = format!("spec.hard[{name}]");
        if !enforced(name) {
            if kubernetes_only(name) {
                errs.forbidden(&field, "kubelite does not enforce a quota on this resource");
            } else {
                errs.invalid(
                    &field,
                    BadValue::Str(name.clone()),
                    "must be a standard resource for quota",
                );
            }
            continue;
        }
        match quantity::parse(&value.0) {
            Some(n) if n < 0 => errs.invalid(
                &field,
                BadValue::Str(value.0.clone()),
                "must be greater than or equal to 0",
            ),
            Some(n) if !COMPUTE.contains(&name.as_str()) && n % NANO != 0 => {
                errs.invalid(&field, BadValue::Str(value.0.clone()), "must be an integer")
            }
            _ => {}
        }
    }
    if spec.scopes.as_ref().is_some_and(|s| !s.is_empty()) || spec.scope_selector.is_some() {
        errs.forbidden("spec.scopes", "kubelite does not enforce quota scopes");
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quota(hard: serde_json::Value, used: serde_json::Value) -> ResourceQuota {
        serde_json::from_value(json!({"metadata": {"name": "compute"},
            "spec": {"hard": hard}, "status": {"hard": hard, "used": used}}))
        .expect("a quota")
    }

    fn pod(resources: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "i", "resources": resources}
        ]}}))
        .expect("a pod")
    }

    #[test]
    fn a_pod_is_charged_or_refused_in_kubernetes_words() {
        let q = quota(
            json!({"requests.cpu": "1", "pods": "2"}),
            json!({"requests.cpu": "500m", "pods": "1"}),
        );
        let small = pod(json!({"requests": {"cpu": "250m"}}));
        let charged =
            charge(&pod_usage(&small), Some(&small), std::slice::from_ref(&q)).expect("fits");
        assert_eq!(charged[0].0, "compute");
        assert_eq!(show("requests.cpu", charged[0].1["requests.cpu"]), "750m");
        assert_eq!(show("pods", charged[0].1["pods"]), "2");
        let big = pod(json!({"requests": {"cpu": "2"}}));
        assert_eq!(
            charge(&pod_usage(&big), Some(&big), std::slice::from_ref(&q)).expect_err("too big"),
            "exceeded quota: compute, requested: requests.cpu=2, used: requests.cpu=500m, limited: requests.cpu=1"
        );
        let bare = pod(json!({}));
        assert_eq!(
            charge(&pod_usage(&bare), Some(&bare), &[q]).expect_err("must specify"),
            "failed quota: compute: must specify requests.cpu for: a"
        );
        let unknown: ResourceQuota = serde_json::from_value(json!({"metadata": {"name": "new"},
            "status": {"hard": {"pods": "1"}}}))
        .expect("a quota");
        assert_eq!(
            charge(&pod_usage(&small), Some(&small), &[unknown]).expect_err("unknown"),
            "status unknown for quota: new, resources: pods"
        );
    }

    #[test]
    fn usage_adds_up_running_pods_and_counts() {
        let hard = parse_map(Some(&BTreeMap::from([
            ("limits.memory".to_string(), Quantity("1Gi".into())),
            ("configmaps".to_string(), Quantity("5".into())),
        ])));
        let pods = [
            pod(json!({"limits": {"memory": "256Mi"}})),
            pod(json!({"limits": {"memory": "256Mi"}})),
        ];
        let used = usage_of(
            &hard,
            &pods,
            &BTreeMap::from([("configmaps".to_string(), 3)]),
        );
        assert_eq!(show("limits.memory", used["limits.memory"]), "512Mi");
        assert_eq!(show("configmaps", used["configmaps"]), "3");
        assert_eq!(counted(&hard)[0].1.plural, "configmaps");
    }

    #[test]
    fn quotas_name_what_is_enforced() {
        let q: ResourceQuota = serde_json::from_value(json!({"metadata": {"name": "q"},
            "spec": {"hard": {"foo": "1", "pods": "-1", "count/pods": "1.5",
                              "requests.storage": "1Gi"}}}))
        .expect("a quota");
        let errs: Vec<String> = validate(&q).iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errs,
            [
                "spec.hard[count/pods]: Invalid value: \"1.5\": must be an integer",
                "spec.hard[foo]: Invalid value: \"foo\": must be a standard resource for quota",
                "spec.hard[pods]: Invalid value: \"-1\": must be greater than or equal to 0",
                "spec.hard[requests.storage]: Forbidden: kubelite does not enforce a quota on this resource",
            ]
        );
    }
}
