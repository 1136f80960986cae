//! PodDisruptionBudgets (policy/v1): their validation, the status the disruption controller
//! computes from the pods they select, and the checks `pods/eviction` makes against them, each
//! as Kubernetes has them (`pkg/apis/policy/validation`, `pkg/controller/disruption`,
//! `pkg/registry/core/pod/storage/eviction.go`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::status::ApiError;
use crate::validation::{BadValue, ErrorList};

/// How long a pod stays in `status.disruptedPods` after its eviction was allowed, waiting to be
/// seen deleting (the controller's `DeletionTimeout`).
pub const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

/// More pods than this in `status.disruptedPods` and evictions are refused.
pub const MAX_DISRUPTED_PODS: usize = 2000;

const PERCENT_FORMAT: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

/// The field errors of a budget's spec.
pub fn validate(pdb: &PodDisruptionBudget) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(spec) = &pdb.spec else {
        return errs;
    };
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        let shown = serde_json::to_string(spec).unwrap_or_default();
        errs.invalid(
            "spec",
            BadValue::Raw(shown),
            "minAvailable and maxUnavailable cannot be both set",
        );
    }
    for (field, value) in [
        ("spec.minAvailable", &spec.min_available),
        ("spec.maxUnavailable", &spec.max_unavailable),
    ] {
        if let Some(value) = value {
            validate_int_or_percent(value, field, &mut errs);
        }
    }
    if let Some(selector) = &spec.selector {
        errs.extend(crate::label_selector::validate(selector, "spec.selector"));
    }
    if let Some(policy) = &spec.unhealthy_pod_eviction_policy {
        if policy != "IfHealthyBudget" && policy != "AlwaysAllow" {
            errs.not_supported(
                "spec.unhealthyPodEvictionPolicy",
                policy,
                &["AlwaysAllow", "IfHealthyBudget"],
            );
        }
    }
    errs
}

fn validate_int_or_percent(value: &IntOrString, field: &str, errs: &mut ErrorList) {
    match value {
        IntOrString::Int(n) if *n < 0 => errs.invalid(
            field,
            BadValue::Int(i64::from(*n)),
            "must be greater than or equal to 0",
        ),
        IntOrString::Int(_) => {}
        IntOrString::String(s) => match percent(s) {
            None => errs.invalid(field, BadValue::Str(s.clone()), PERCENT_FORMAT),
            Some(p) if p > 100 => errs.invalid(
                field,
                BadValue::Str(s.clone()),
                "must not be greater than 100%",
            ),
            Some(_) => {}
        },
    }
}

/// `"50%"` → 50.
fn percent(s: &str) -> Option<u64> {
    let digits = s.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

/// `value` of `total`: the number itself, or the percentage rounded up or down.
fn scaled(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let p = percent(s).unwrap_or(0).min(100) as i64;
            let product = p * i64::from(total.max(0));
            let n = if round_up {
                (product + 99) / 100
            } else {
                product / 100
            };
            n as i32
        }
    }
}

/// Whether the budget selects `pod` (same namespace; a budget without a selector selects
/// nothing, an empty selector every pod).
pub fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    let same_namespace = pdb.metadata.namespace == pod.metadata.namespace;
    let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    same_namespace && selector.is_some_and(|s| crate::label_selector::matches(s, &labels))
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn has_controller(pod: &Pod) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true))
}

/// What the disruption controller writes for a budget, and the events it records.
#[derive(Debug, Default)]
pub struct Computed {
    pub status: PodDisruptionBudgetStatus,
    /// `(reason, message)` of Warning events on the budget.
    pub warnings: Vec<(&'static str, String)>,
}

/// The budget's status from the pods of its namespace, as the disruption controller computes it.
/// Pods without a controller add nothing to the expected count (`UnmanagedPods`); pods whose
/// controller kubelite does not run make the computation fail (`SyncFailed`).
pub fn compute(pdb: &PodDisruptionBudget, pods: &[Pod], now: Timestamp) -> Computed {
    let selected: Vec<&Pod> = pods.iter().filter(|p| selects(pdb, p)).collect();
    let mut warnings = Vec::new();
    let old = pdb.status.clone().unwrap_or_default();
    let expected_and_desired = expected_and_desired(pdb, &selected, &mut warnings);
    let (expected, desired) = match expected_and_desired {
        Ok(counts) => counts,
        Err(message) => {
            warnings.push((
                "CalculateExpectedPodCountFailed",
                format!("Failed to calculate the number of expected pods: {message}"),
            ));
            let mut status = old;
            status.disruptions_allowed = 0;
            set_condition(&mut status, "False", "SyncFailed", &message, now);
            return Computed { status, warnings };
        }
    };
    let disrupted = still_disrupted(&old, &selected, now);
    let healthy = selected
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !disrupted.contains_key(p.metadata.name.as_deref().unwrap_or_default()))
        .filter(|p| is_ready(p))
        .count() as i32;
    let allowed = if expected <= 0 {
        0
    } else {
        (healthy - desired).max(0)
    };
    let mut status = PodDisruptionBudgetStatus {
        current_healthy: healthy,
        desired_healthy: desired,
        expected_pods: expected,
        disruptions_allowed: allowed,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: pdb.metadata.generation,
        conditions: old.conditions,
    };
    let (state, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    set_condition(&mut status, state, reason, "", now);
    Computed { status, warnings }
}

fn expected_and_desired(
    pdb: &PodDisruptionBudget,
    selected: &[&Pod],
    warnings: &mut Vec<(&'static str, String)>,
) -> Result<(i32, i32), String> {
    let spec = pdb.spec.clone().unwrap_or_default();
    let mut scale = || -> Result<i32, String> {
        if let Some(pod) = selected.iter().find(|p| has_controller(p)) {
            return Err(format!(
                "found no controllers for pod {:?}",
                pod.metadata.name.as_deref().unwrap_or_default()
            ));
        }
        if !selected.is_empty() {
            let selector = serde_json::to_string(&spec.selector).unwrap_or_default();
            warnings.push(("UnmanagedPods", format!("Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.")));
        }
        Ok(0)
    };
    match (&spec.max_unavailable, &spec.min_available) {
        (Some(max), _) => {
            let expected = scale()?;
            Ok((expected, (expected - scaled(max, expected, true)).max(0)))
        }
        (None, Some(IntOrString::Int(min))) => Ok((selected.len() as i32, *min)),
        (None, Some(min)) => {
            let expected = scale()?;
            Ok((expected, scaled(min, expected, true)))
        }
        (None, None) => Ok((0, 0)),
    }
}

/// The entries of `disruptedPods` still waiting for their pod to be seen deleting.
fn still_disrupted(
    old: &PodDisruptionBudgetStatus,
    selected: &[&Pod],
    now: Timestamp,
) -> BTreeMap<String, Time> {
    let mut out = BTreeMap::new();
    for (name, at) in old.disrupted_pods.iter().flatten() {
        let pod = selected
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name));
        let waiting = pod.is_some_and(|p| p.metadata.deletion_timestamp.is_none());
        if waiting && at.0 + DELETION_TIMEOUT > now {
            out.insert(name.clone(), at.clone());
        }
    }
    out
}

fn set_condition(
    status: &mut PodDisruptionBudgetStatus,
    state: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let unchanged = conditions.iter().any(|c| {
        c.type_ == "DisruptionAllowed"
            && c.status == state
            && c.reason == reason
            && c.message == message
            && c.observed_generation == status.observed_generation
    });
    if unchanged {
        return;
    }
    let since = conditions
        .iter()
        .find(|c| c.type_ == "DisruptionAllowed" && c.status == state)
        .map(|c| c.last_transition_time.clone());
    conditions.retain(|c| c.type_ != "DisruptionAllowed");
    conditions.push(Condition {
        type_: "DisruptionAllowed".into(),
        status: state.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: status.observed_generation,
        last_transition_time: since.unwrap_or(Time(now)),
    });
}

/// What an eviction does once the budgets are consulted.
#[derive(Debug, PartialEq)]
pub enum Eviction {
    /// Delete the pod; with `Some`, only while it is still at this resourceVersion.
    Delete { pinned: bool },
    /// Delete the pod after writing this status to the named budget.
    DeleteCharging {
        budget: String,
        status: Box<PodDisruptionBudgetStatus>,
    },
}

/// The checks of `pods/eviction` for `pod` against the budgets of its namespace: whether it may
/// be deleted, and what a budget is charged for it; refusals are the Status Kubernetes answers.
pub fn check_eviction(
    pod: &Pod,
    budgets: &[PodDisruptionBudget],
    now: Timestamp,
) -> Result<Eviction, ApiError> {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if pod.metadata.deletion_timestamp.is_some() || matches!(phase, Some("Succeeded" | "Failed")) {
        return Ok(Eviction::Delete { pinned: false });
    }
    if phase == Some("Pending") {
        return Ok(Eviction::Delete { pinned: true });
    }
    let matching: Vec<&PodDisruptionBudget> = budgets.iter().filter(|b| selects(b, pod)).collect();
    let budget = match matching.as_slice() {
        [] => return Ok(Eviction::Delete { pinned: false }),
        [one] => *one,
        _ => {
            return Err(ApiError::new(
                500,
                "",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ))
        }
    };
    let status = budget.status.clone().unwrap_or_default();
    if !is_ready(pod) {
        let always = budget
            .spec
            .as_ref()
            .and_then(|s| s.unhealthy_pod_eviction_policy.as_deref())
            == Some("AlwaysAllow");
        let healthy_enough =
            status.current_healthy >= status.desired_healthy && status.desired_healthy > 0;
        if always || healthy_enough {
            return Ok(Eviction::Delete { pinned: true });
        }
    }
    charge(budget, status, pod, now)
}

/// `checkAndDecrement`: one disruption less for the budget, or the refusal.
fn charge(
    budget: &PodDisruptionBudget,
    mut status: PodDisruptionBudgetStatus,
    pod: &Pod,
    now: Timestamp,
) -> Result<Eviction, ApiError> {
    let name = budget.metadata.name.clone().unwrap_or_default();
    let violation = |retry_after: Option<u32>, cause: String| {
        let mut err = ApiError::new(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
        );
        err.retry_after = retry_after;
        err.causes.push(crate::status::Cause {
            reason: "DisruptionBudget".into(),
            message: cause,
            field: String::new(),
        });
        err
    };
    if status.observed_generation.unwrap_or(0) < budget.metadata.generation.unwrap_or(0) {
        return Err(violation(
            Some(10),
            format!("The disruption budget {name} is still being processed by the server."),
        ));
    }
    if status.disruptions_allowed < 0 {
        return Err(ApiError::forbidden(
            "policy",
            "poddisruptionbudget",
            &name,
            "pdb disruptions allowed is negative",
        ));
    }
    let disrupted = status.disrupted_pods.get_or_insert_with(BTreeMap::new);
    if disrupted.len() > MAX_DISRUPTED_PODS {
        return Err(ApiError::forbidden(
            "policy",
            "poddisruptionbudget",
            &name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if status.disruptions_allowed == 0 {
        return Err(violation(
            None,
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                status.desired_healthy, status.current_healthy
            ),
        ));
    }
    disrupted.insert(pod.metadata.name.clone().unwrap_or_default(), Time(now));
    status.disruptions_allowed -= 1;
    if status.disruptions_allowed == 0 {
        set_condition(&mut status, "False", "InsufficientPods", "", now);
    }
    Ok(Eviction::DeleteCharging {
        budget: name,
        status: Box::new(status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn budget(spec: serde_json::Value, status: serde_json::Value) -> PodDisruptionBudget {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "generation": 1},
            "spec": spec, "status": status,
        }))
        .expect("a budget")
    }

    fn pod(name: &str, ready: bool, extra: serde_json::Value) -> Pod {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}
            ]},
        });
        if let (Some(m), Some(e)) = (p["metadata"].as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        serde_json::from_value(p).expect("a pod")
    }

    fn test_now() -> Timestamp {
        Timestamp::from_second(chrono::Utc::now().timestamp()).expect("a time")
    }

    fn errors(pdb: &PodDisruptionBudget) -> Vec<String> {
        validate(pdb).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn specs_are_validated_with_kubernetes_messages() {
        let both = budget(json!({"minAvailable": 1, "maxUnavailable": 1}), json!({}));
        assert!(errors(&both)[0].ends_with("minAvailable and maxUnavailable cannot be both set"));
        let bad = budget(
            json!({"minAvailable": "5", "unhealthyPodEvictionPolicy": "Sometimes"}),
            json!({}),
        );
        let errs = errors(&bad);
        assert!(
            errs[0].starts_with("spec.minAvailable: Invalid value: \"5\": a valid percent string")
        );
        assert_eq!(
            errs[1],
            "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Sometimes\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\""
        );
        let over = budget(json!({"maxUnavailable": "120%"}), json!({}));
        assert_eq!(
            errors(&over),
            ["spec.maxUnavailable: Invalid value: \"120%\": must not be greater than 100%"]
        );
        let negative = budget(json!({"minAvailable": -1}), json!({}));
        assert_eq!(
            errors(&negative),
            ["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"]
        );
    }

    #[test]
    fn min_available_counts_ready_pods_and_allows_the_rest() {
        let pdb = budget(
            json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}),
            json!({}),
        );
        let pods = [
            pod("a", true, json!({})),
            pod("b", true, json!({})),
            pod("c", true, json!({})),
            pod("d", false, json!({})),
            pod("other", true, json!({"labels": {"app": "db"}})),
        ];
        let c = compute(&pdb, &pods, test_now());
        assert_eq!(
            (
                c.status.current_healthy,
                c.status.desired_healthy,
                c.status.expected_pods,
                c.status.disruptions_allowed
            ),
            (3, 2, 4, 1)
        );
        let cond = &c.status.conditions.as_ref().expect("a condition")[0];
        assert_eq!(
            (cond.status.as_str(), cond.reason.as_str()),
            ("True", "SufficientPods")
        );
        assert_eq!(c.status.observed_generation, Some(1));
    }

    #[test]
    fn percentages_need_controllers_bare_pods_count_for_nothing() {
        let pdb = budget(json!({"maxUnavailable": "50%", "selector": {}}), json!({}));
        let c = compute(&pdb, &[pod("a", true, json!({}))], test_now());
        assert_eq!(c.status.expected_pods, 0);
        assert_eq!(c.status.disruptions_allowed, 0);
        assert_eq!(c.warnings[0].0, "UnmanagedPods");
        let owned = pod(
            "a",
            true,
            json!({"ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}
            ]}),
        );
        let c = compute(&pdb, &[owned], test_now());
        let cond = &c.status.conditions.as_ref().expect("a condition")[0];
        assert_eq!(cond.reason, "SyncFailed");
        assert_eq!(cond.message, "found no controllers for pod \"a\"");
        assert_eq!(
            c.status.observed_generation, None,
            "not observed on failure"
        );
    }

    #[test]
    fn evicted_pods_stop_counting_until_they_go_or_time_out() {
        let now = test_now();
        let pdb = budget(
            json!({"minAvailable": 1, "selector": {}}),
            json!({"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2,
                   "disruptedPods": {"a": (now - SignedDuration::from_secs(30)).to_string(),
                                     "b": (now - SignedDuration::from_secs(180)).to_string()}}),
        );
        let pods = [pod("a", true, json!({})), pod("b", true, json!({}))];
        let c = compute(&pdb, &pods, now);
        let disrupted = c.status.disrupted_pods.expect("a is still waiting");
        assert_eq!(disrupted.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(c.status.current_healthy, 1);
        assert_eq!(c.status.disruptions_allowed, 0);
    }

    #[test]
    fn evictions_charge_the_budget_or_are_refused() {
        let now = test_now();
        let status = json!({"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1,
                            "expectedPods": 2, "observedGeneration": 1});
        let pdb = budget(json!({"minAvailable": 1, "selector": {}}), status);
        let running = pod("a", true, json!({}));
        let Ok(Eviction::DeleteCharging {
            budget: name,
            status,
        }) = check_eviction(&running, std::slice::from_ref(&pdb), now)
        else {
            panic!("allowed");
        };
        assert_eq!(name, "web");
        assert_eq!(status.disruptions_allowed, 0);
        assert!(status.disrupted_pods.expect("recorded").contains_key("a"));
        let mut spent = pdb.clone();
        spent.status = Some(*status_with(&pdb, 0));
        let err = check_eviction(&running, &[spent], now).expect_err("refused");
        assert_eq!(err.code, 429);
        assert_eq!(
            err.message,
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        assert_eq!(
            err.causes[0].message,
            "The disruption budget web needs 1 healthy pods and has 2 currently"
        );
        assert_eq!(err.retry_after, None);
        let mut unseen = pdb.clone();
        unseen.metadata.generation = Some(2);
        let err = check_eviction(&running, &[unseen], now).expect_err("not observed yet");
        assert_eq!(err.retry_after, Some(10));
        let err = check_eviction(&running, &[pdb.clone(), pdb.clone()], now).expect_err("two");
        assert_eq!(err.code, 500);
        assert_eq!(
            check_eviction(&running, &[], now),
            Ok(Eviction::Delete { pinned: false })
        );
        let pending = {
            let mut p = running.clone();
            p.status.as_mut().expect("status").phase = Some("Pending".into());
            p
        };
        assert_eq!(
            check_eviction(&pending, &[pdb], now),
            Ok(Eviction::Delete { pinned: true })
        );
    }

    fn status_with(pdb: &PodDisruptionBudget, allowed: i32) -> Box<PodDisruptionBudgetStatus> {
        let mut s = pdb.status.clone().unwrap_or_default();
        s.disruptions_allowed = allowed;
        Box::new(s)
    }
}
