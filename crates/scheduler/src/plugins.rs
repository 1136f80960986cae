//! Filter and score plugins, in kube-scheduler's order and words. A filter says why a node cannot
//! run a pod; [`select`] runs them over every node, scores the nodes that pass and, when none
//! does, writes the `FailedScheduling` message as kube-scheduler 1.33 writes it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use api::resources::Resources;
use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, Pod, Taint, Toleration};

/// A node as the scheduler sees it: the object, and what the pods bound to it already request.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    /// The sum of the requests of the node's non-terminal pods.
    pub requested: Resources,
    /// How many non-terminal pods the node has.
    pub pods: usize,
    /// What the node offers to pods.
    offer: Offer,
}

/// What a node can allocate to pods, and how many pods it takes, parsed from its status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    pub allocatable: Resources,
    pub max_pods: i64,
}

impl Offer {
    pub fn of(node: &Node) -> Self {
        let map = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        let max_pods = map
            .and_then(|m| m.get("pods"))
            .and_then(|q| api::quantity::parse(&q.0))
            .map_or(0, api::quantity::to_units);
        Offer {
            allocatable: Resources::from_map(map),
            max_pods,
        }
    }
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> Self {
        let offer = Offer::of(&node);
        Self::with_offer(node, offer)
    }

    /// A node whose offer is already known (parsing it for every node on every pass would cost
    /// more than the filters).
    pub fn with_offer(node: Arc<Node>, offer: Offer) -> Self {
        NodeInfo {
            node,
            offer,
            requested: Resources::default(),
            pods: 0,
        }
    }

    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    pub fn offer(&self) -> Offer {
        self.offer
    }

    /// Counts a pod bound (or being bound) to this node.
    pub fn add_pod(&mut self, request: Resources) {
        self.requested = self.requested.plus(request);
        self.pods += 1;
    }
}

/// Whether preemption could help on a node that rejected the pod (kube-scheduler's
/// `Unschedulable`), or not (`UnschedulableAndUnresolvable`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Unschedulable,
    UnschedulableAndUnresolvable,
}

/// Why a node cannot run a pod: one or more reasons, in the words of the aggregated message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub code: Code,
    pub reasons: Vec<String>,
}

impl Rejection {
    fn unresolvable(reason: impl Into<String>) -> Self {
        Rejection {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.into()],
        }
    }
}

/// One filter plugin.
pub trait Filter: Send + Sync {
    /// `Err` when `node` cannot run `pod`, whose requests are `request`.
    fn filter(&self, pod: &Pod, request: &Resources, node: &NodeInfo) -> Result<(), Rejection>;
}

/// `spec.unschedulable` (a cordoned node), unless the pod tolerates it.
pub struct NodeUnschedulable;

impl Filter for NodeUnschedulable {
    fn filter(&self, pod: &Pod, _: &Resources, node: &NodeInfo) -> Result<(), Rejection> {
        let cordoned = node
            .node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        if !cordoned {
            return Ok(());
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if !tolerated(pod, &taint) {
            return Err(Rejection::unresolvable("node(s) were unschedulable"));
        }
        Ok(())
    }
}

/// `spec.nodeName` set by the user before scheduling (kube-scheduler only sees such pods when
/// they come through it, which ours do not; kept for the plugin order and for completeness).
pub struct NodeName;

impl Filter for NodeName {
    fn filter(&self, pod: &Pod, _: &Resources, node: &NodeInfo) -> Result<(), Rejection> {
        match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            Some(wanted) if !wanted.is_empty() && wanted != node.name() => Err(
                Rejection::unresolvable("node(s) didn't match the requested node name"),
            ),
            _ => Ok(()),
        }
    }
}

/// NoSchedule and NoExecute taints the pod does not tolerate; the first one is reported.
pub struct TaintToleration;

impl Filter for TaintToleration {
    fn filter(&self, pod: &Pod, _: &Resources, node: &NodeInfo) -> Result<(), Rejection> {
        let taints = node.node.spec.as_ref().and_then(|s| s.taints.as_ref());
        for taint in taints.into_iter().flatten() {
            if (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
                && !tolerated(pod, taint)
            {
                return Err(Rejection::unresolvable(format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    taint.key,
                    taint.value.as_deref().unwrap_or("")
                )));
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

/// `spec.nodeSelector` and the required node affinity.
pub struct NodeAffinity;

impl Filter for NodeAffinity {
    fn filter(&self, pod: &Pod, _: &Resources, node: &NodeInfo) -> Result<(), Rejection> {
        let empty = BTreeMap::new();
        let labels = node.node.metadata.labels.as_ref().unwrap_or(&empty);
        let spec = pod.spec.as_ref();
        let selector_ok = spec
            .and_then(|s| s.node_selector.as_ref())
            .into_iter()
            .flatten()
            .all(|(k, v)| labels.get(k) == Some(v));
        let terms = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|r| r.node_selector_terms.as_slice());
        // The terms are ORed; a term's expressions and fields are ANDed.
        let affinity_ok = terms.is_none_or(|terms| {
            terms.iter().any(|term| {
                let exprs = term.match_expressions.iter().flatten();
                let fields = term.match_fields.iter().flatten();
                let has_any = term
                    .match_expressions
                    .as_ref()
                    .is_some_and(|e| !e.is_empty())
                    || term.match_fields.as_ref().is_some_and(|f| !f.is_empty());
                has_any
                    && exprs
                        .clone()
                        .all(|r| matches_requirement(r, labels.get(&r.key).map(String::as_str)))
                    && fields.clone().all(|r| {
                        let value = (r.key == "metadata.name").then(|| node.name());
                        matches_requirement(r, value)
                    })
            })
        });
        if selector_ok && affinity_ok {
            Ok(())
        } else {
            Err(Rejection::unresolvable(
                "node(s) didn't match Pod's node affinity/selector",
            ))
        }
    }
}

fn matches_requirement(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|w| w == v)),
        "NotIn" => value.is_none_or(|v| values.iter().all(|w| w != v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), Some(bound)) = (
                value.and_then(number),
                values.first().and_then(|b| number(b)),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                have > bound
            } else {
                have < bound
            }
        }
        _ => false,
    }
}

/// Requests against what the node can allocate minus what its pods already request.
pub struct NodeResourcesFit;

impl Filter for NodeResourcesFit {
    fn filter(&self, _: &Pod, request: &Resources, node: &NodeInfo) -> Result<(), Rejection> {
        let Offer {
            allocatable,
            max_pods,
        } = node.offer;
        let mut reasons = Vec::new();
        if node.pods as i64 + 1 > max_pods {
            reasons.push("Too many pods".to_string());
        }
        let used = node.requested;
        let checks = [
            (
                "cpu",
                request.milli_cpu,
                used.milli_cpu,
                allocatable.milli_cpu,
            ),
            ("memory", request.memory, used.memory, allocatable.memory),
            (
                "ephemeral-storage",
                request.ephemeral_storage,
                used.ephemeral_storage,
                allocatable.ephemeral_storage,
            ),
        ];
        for (name, wanted, used, offered) in checks {
            if wanted > 0 && wanted.saturating_add(used) > offered {
                reasons.push(format!("Insufficient {name}"));
            }
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(Rejection {
                code: Code::Unschedulable,
                reasons,
            })
        }
    }
}

/// The filters in kube-scheduler's default order: a node is reported by the first that rejects it.
pub fn default_filters() -> Vec<Box<dyn Filter>> {
    vec![
        Box::new(NodeUnschedulable),
        Box::new(NodeName),
        Box::new(TaintToleration),
        Box::new(NodeAffinity),
        Box::new(NodeResourcesFit),
    ]
}

/// "N reason, M reason" sorted as kube-scheduler sorts it (the whole strings, bytewise).
fn summarize(counts: &HashMap<String, usize>) -> String {
    let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    parts.join(", ")
}

/// What the default preemption plugin says when it finds nothing to do. kubelite does not
/// preempt: a node that failed on resources has no victims to offer, any other is beyond help.
fn preemption_message(pod: &Pod, nodes: usize, codes: &[Code]) -> String {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref());
    if policy == Some("Never") {
        return "preemption: not eligible due to preemptionPolicy=Never.".into();
    }
    let mut counts = HashMap::new();
    for code in codes {
        let reason = match code {
            Code::Unschedulable => "No preemption victims found for incoming pod",
            Code::UnschedulableAndUnresolvable => "Preemption is not helpful for scheduling",
        };
        *counts.entry(reason.to_string()).or_default() += 1;
    }
    format!(
        "preemption: 0/{nodes} nodes are available: {}.",
        summarize(&counts)
    )
}

/// The node `pod` (which requests `request`) should run on: the least loaded that passes every
/// filter; or the `FailedScheduling` message when none does.
pub fn select(pod: &Pod, request: &Resources, nodes: &[NodeInfo]) -> Result<String, String> {
    if nodes.is_empty() {
        return Err("no nodes available to schedule pods".into());
    }
    let filters = default_filters();
    let mut reasons: HashMap<String, usize> = HashMap::new();
    let mut codes = Vec::new();
    let mut best: Option<&NodeInfo> = None;
    for node in nodes {
        match filters
            .iter()
            .try_for_each(|f| f.filter(pod, request, node))
        {
            Ok(()) => {
                let better = best.is_none_or(|b| (node.pods, node.name()) < (b.pods, b.name()));
                if better {
                    best = Some(node);
                }
            }
            Err(rejection) => {
                for reason in rejection.reasons {
                    *reasons.entry(reason).or_default() += 1;
                }
                codes.push(rejection.code);
            }
        }
    }
    if let Some(node) = best {
        return Ok(node.name().to_string());
    }
    Err(format!(
        "0/{} nodes are available: {}. {}",
        nodes.len(),
        summarize(&reasons),
        preemption_message(pod, nodes.len(), &codes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, extra: serde_json::Value) -> NodeInfo {
        let mut v = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {}, "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}});
        for key in ["spec", "status"] {
            if let Some(part) = extra.get(key) {
                v[key] = part.clone();
            }
        }
        if let Some(labels) = extra.get("labels") {
            v["metadata"]["labels"] = labels.clone();
        }
        NodeInfo::new(Arc::new(serde_json::from_value(v).unwrap()))
    }

    /// `select` with the pod's own requests.
    fn place(pod: &Pod, nodes: &[NodeInfo]) -> Result<String, String> {
        let request = api::resources::pod_requests(pod.spec.as_ref().unwrap());
        select(pod, &request, nodes)
    }

    fn pod(spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c"}]);
        }
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn cpu(amount: &str) -> serde_json::Value {
        json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": amount}}}]})
    }

    #[test]
    fn no_nodes_reads_like_kubernetes() {
        assert_eq!(
            place(&pod(json!({})), &[]).unwrap_err(),
            "no nodes available to schedule pods"
        );
    }

    #[test]
    fn taints_and_cordons_are_aggregated() {
        let taint =
            json!({"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]});
        let nodes = vec![
            node("a", json!({"spec": {"unschedulable": true}})),
            node("b", json!({"spec": taint})),
            node("c", json!({"spec": taint})),
        ];
        let err = place(&pod(json!({})), &nodes).unwrap_err();
        assert_eq!(err, "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.");
        let tolerant = pod(
            json!({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]}),
        );
        assert_eq!(place(&tolerant, &nodes).unwrap(), "b");
    }

    #[test]
    fn a_request_larger_than_the_node_stays_pending_with_the_tutorial_message() {
        let nodes = vec![node("a", json!({}))];
        assert_eq!(
            place(&pod(cpu("32")), &nodes).unwrap_err(),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
        let never = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "32", "memory": "8Gi"}}}],
            "preemptionPolicy": "Never"}),
        );
        assert_eq!(
            place(&never, &nodes).unwrap_err(),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: not eligible due to preemptionPolicy=Never."
        );
    }

    #[test]
    fn what_bound_pods_request_is_taken_into_account() {
        let mut a = node("a", json!({}));
        a.add_pod(api::resources::pod_requests(
            pod(cpu("1500m")).spec.as_ref().unwrap(),
        ));
        let b = node(
            "b",
            json!({"status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "110"}}}),
        );
        assert_eq!(
            place(&pod(cpu("500m")), &[a.clone(), b.clone()]).unwrap(),
            "b"
        );
        let err = place(&pod(cpu("1100m")), &[a, b]).unwrap_err();
        assert!(
            err.starts_with("0/2 nodes are available: 2 Insufficient cpu."),
            "{err}"
        );
    }

    #[test]
    fn a_full_node_has_too_many_pods() {
        let mut a = node(
            "a",
            json!({"status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "1"}}}),
        );
        a.add_pod(Resources::default());
        let err = place(&pod(json!({})), &[a]).unwrap_err();
        assert!(
            err.starts_with("0/1 nodes are available: 1 Too many pods."),
            "{err}"
        );
    }

    #[test]
    fn node_selectors_and_affinity_pick_nodes() {
        let nodes = vec![
            node("a", json!({"labels": {"disk": "ssd", "gen": "5"}})),
            node("b", json!({"labels": {"disk": "hdd", "gen": "3"}})),
        ];
        assert_eq!(
            place(&pod(json!({"nodeSelector": {"disk": "hdd"}})), &nodes).unwrap(),
            "b"
        );
        let affinity = |op: &str, values: serde_json::Value| {
            pod(
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": [{"key": "gen", "operator": op, "values": values}]}]}}}}),
            )
        };
        assert_eq!(place(&affinity("Gt", json!(["4"])), &nodes).unwrap(), "a");
        assert_eq!(
            place(&affinity("NotIn", json!(["5"])), &nodes).unwrap(),
            "b"
        );
        let err = place(&affinity("In", json!(["7"])), &nodes).unwrap_err();
        assert!(
            err.starts_with(
                "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
            ),
            "{err}"
        );
    }

    #[test]
    fn the_least_loaded_node_wins() {
        let mut a = node("a", json!({}));
        for _ in 0..3 {
            a.add_pod(Resources::default());
        }
        assert_eq!(
            place(&pod(json!({})), &[a, node("b", json!({}))]).unwrap(),
            "b"
        );
    }
}
