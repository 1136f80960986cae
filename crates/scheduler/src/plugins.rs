//! Filter and score plugins. A filter says why a node cannot run a pod, in the words the
//! aggregated `FailedScheduling` message uses; the score prefers the least loaded node.
//! Resource fit (`NodeResourcesFit`) slots in here as one more [`Filter`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};

/// One reason a node is filtered out.
pub trait Filter: Send + Sync {
    /// `Err(reason)` when `node` cannot run `pod`; `reason` reads like "node(s) were unschedulable".
    fn filter(&self, pod: &Pod, node: &Node) -> Result<(), String>;
}

/// `spec.unschedulable` (a cordoned node), unless the pod tolerates it.
pub struct NodeUnschedulable;

impl Filter for NodeUnschedulable {
    fn filter(&self, pod: &Pod, node: &Node) -> Result<(), String> {
        let cordoned = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if cordoned && !tolerated(pod, &taint) {
            return Err("node(s) were unschedulable".into());
        }
        Ok(())
    }
}

/// NoSchedule and NoExecute taints the pod does not tolerate.
pub struct TaintToleration;

impl Filter for TaintToleration {
    fn filter(&self, pod: &Pod, node: &Node) -> Result<(), String> {
        let taints = node.spec.as_ref().and_then(|s| s.taints.as_ref());
        for taint in taints.into_iter().flatten() {
            if (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
                && !tolerated(pod, taint)
            {
                return Err(format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    taint.key,
                    taint.value.as_deref().unwrap_or("")
                ));
            }
        }
        Ok(())
    }
}

fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect_ok = t.effect.as_deref().unwrap_or("").is_empty()
        || t.effect.as_deref() == Some(taint.effect.as_str());
    let key = t.key.as_deref().unwrap_or("");
    let key_ok = key.is_empty() || key == taint.key;
    let value_ok = match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    };
    // An empty key with operator Exists tolerates everything.
    effect_ok && key_ok && value_ok && !(key.is_empty() && t.operator.as_deref() != Some("Exists"))
}

fn tolerated(pod: &Pod, taint: &Taint) -> bool {
    let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_ref());
    tolerations
        .into_iter()
        .flatten()
        .any(|t| tolerates(t, taint))
}

pub fn default_filters() -> Vec<Box<dyn Filter>> {
    vec![Box::new(NodeUnschedulable), Box::new(TaintToleration)]
}

/// How many pods each node already runs (for scoring).
pub fn pods_per_node(pods: &[Arc<Pod>]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for p in pods {
        if let Some(n) = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            *counts.entry(n.to_string()).or_default() += 1;
        }
    }
    counts
}

/// The node `pod` should run on, or the `FailedScheduling` message when none fits.
pub fn select(
    pod: &Pod,
    nodes: &[Arc<Node>],
    bound: &HashMap<String, usize>,
) -> Result<String, String> {
    if nodes.is_empty() {
        return Err("no nodes available to schedule pods".into());
    }
    let filters = default_filters();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut feasible: Vec<&str> = Vec::new();
    for node in nodes {
        let name = node.metadata.name.as_deref().unwrap_or("");
        match filters.iter().try_for_each(|f| f.filter(pod, node)) {
            Ok(()) => feasible.push(name),
            Err(reason) => *reasons.entry(reason).or_default() += 1,
        }
    }
    if let Some(best) = feasible
        .into_iter()
        .min_by_key(|n| (bound.get(*n).copied().unwrap_or(0), n.to_string()))
    {
        return Ok(best.to_string());
    }
    let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    Err(format!(
        "0/{} nodes are available: {}.",
        nodes.len(),
        parts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, extra: serde_json::Value) -> Arc<Node> {
        let mut v = json!({"metadata": {"name": name}, "spec": {}});
        if let Some(spec) = extra.get("spec") {
            v["spec"] = spec.clone();
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn pod(tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], "tolerations": tolerations}})).unwrap()
    }

    #[test]
    fn no_nodes_reads_like_kubernetes() {
        assert_eq!(
            select(&pod(json!([])), &[], &HashMap::new()).unwrap_err(),
            "no nodes available to schedule pods"
        );
    }

    #[test]
    fn taints_and_cordons_are_aggregated() {
        let nodes = vec![
            node("a", json!({"spec": {"unschedulable": true}})),
            node(
                "b",
                json!({"spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}}),
            ),
            node(
                "c",
                json!({"spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}}),
            ),
        ];
        let err = select(&pod(json!([])), &nodes, &HashMap::new()).unwrap_err();
        assert_eq!(err, "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.");
        let tolerant = pod(json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]));
        assert_eq!(select(&tolerant, &nodes, &HashMap::new()).unwrap(), "b");
    }

    #[test]
    fn the_least_loaded_node_wins() {
        let nodes = vec![node("a", json!({})), node("b", json!({}))];
        let mut bound = HashMap::new();
        bound.insert("a".to_string(), 3);
        assert_eq!(select(&pod(json!([])), &nodes, &bound).unwrap(), "b");
    }
}
