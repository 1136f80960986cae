//! Node lifecycle: a node whose agent stops renewing its Lease for longer than the grace period
//! (Kubernetes: 40 s) gets `Ready=Unknown` ("Kubelet stopped posting node status.") and the
//! `node.kubernetes.io/unreachable` taint; a node that is not ready gets
//! `node.kubernetes.io/not-ready`. The scheduler then stops placing pods there.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint each pressure condition puts on its node while True (TaintNodeByCondition).
const PRESSURE_TAINTS: &[(&str, &str)] = &[
    ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "node.kubernetes.io/pid-pressure"),
];

/// `NoSchedule` taints for the pressures the node reports.
pub fn pressure_taints(node: &Node) -> Vec<Taint> {
    let conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    PRESSURE_TAINTS
        .iter()
        .filter(|(type_, _)| {
            conditions
                .iter()
                .any(|c| c.type_ == *type_ && c.status == "True")
        })
        .map(|(_, key)| Taint {
            key: key.to_string(),
            effect: "NoSchedule".into(),
            ..Default::default()
        })
        .collect()
}

/// Whether this controller manages taints with `key`.
fn managed(key: &str) -> bool {
    key == NOT_READY || key == UNREACHABLE || PRESSURE_TAINTS.iter().any(|(_, k)| *k == key)
}

#[derive(Clone, Debug)]
pub struct Config {
    /// How long a lease may go unrenewed before the node is considered lost.
    pub grace_period: Duration,
    /// How often nodes are checked.
    pub interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grace_period: Duration::from_secs(40),
            interval: Duration::from_secs(5),
        }
    }
}

/// The taints a node should carry for its Ready condition (`None`: no condition yet).
pub fn taints_for(ready: Option<&str>) -> Vec<Taint> {
    let taint = |key: &str, effect: &str| Taint {
        key: key.into(),
        effect: effect.into(),
        ..Default::default()
    };
    match ready {
        Some("True") => vec![],
        Some("False") => vec![
            taint(NOT_READY, "NoSchedule"),
            taint(NOT_READY, "NoExecute"),
        ],
        // Never reported yet: what the API gave it at creation (TaintNodesAtCreation).
        None => vec![taint(NOT_READY, "NoSchedule")],
        _ => vec![
            taint(UNREACHABLE, "NoSchedule"),
            taint(UNREACHABLE, "NoExecute"),
        ],
    }
}

fn ready_status(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

/// Whether a lease renewed at `renewed` has expired at `now`.
pub fn expired(renewed: Option<Timestamp>, now: Timestamp, grace: Duration) -> bool {
    match renewed {
        None => true,
        Some(t) => now.duration_since(t).as_secs_f64() > grace.as_secs_f64(),
    }
}

async fn check(client: &kube::Client, config: &Config) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease_list = leases.list(&ListParams::default()).await?;
    let now = Timestamp::now();
    for node in nodes.list(&ListParams::default()).await? {
        let name = node.name_any();
        // A node that has not renewed a lease yet counts from its registration.
        let renewed = lease_list
            .iter()
            .find(|l| l.name_any() == name)
            .and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0))
            .or_else(|| node.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let mut ready = ready_status(&node);
        if expired(renewed, now, config.grace_period) && ready.as_deref() != Some("Unknown") {
            // Every condition the agent reported becomes Unknown.
            let conditions: Vec<NodeCondition> = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    c.status = "Unknown".into();
                    c.reason = Some("NodeStatusUnknown".into());
                    c.message = Some("Kubelet stopped posting node status.".into());
                    c.last_transition_time = Some(Time(now));
                    c
                })
                .collect();
            let patch = json!({"status": {"conditions": conditions}});
            nodes
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await?;
            tracing::warn!(node = %name, "node lease expired; marking it not ready");
            ready = Some("Unknown".into());
        }
        let mut wanted = taints_for(ready.as_deref());
        wanted.extend(pressure_taints(&node));
        let current: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let others: Vec<Taint> = current
            .iter()
            .filter(|t| !managed(&t.key))
            .cloned()
            .collect();
        let mut desired = others;
        desired.extend(wanted);
        let same = desired.len() == current.len()
            && desired.iter().all(|d| {
                current
                    .iter()
                    .any(|c| c.key == d.key && c.effect == d.effect)
            });
        if !same {
            let patch = json!({"spec": {"taints": desired}});
            nodes
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    Ok(())
}

/// Runs the controller until the process ends: every `interval` (leases expire with time) and
/// whenever a node changes (a new node's `not-ready` taint goes as soon as it reports Ready).
pub async fn run(client: kube::Client, config: Config) {
    use futures::StreamExt;
    use kube::runtime::{watcher, WatchStreamExt};
    let changed = std::sync::Arc::new(tokio::sync::Notify::new());
    let notify = changed.clone();
    let nodes = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .touched_objects();
    tokio::spawn(async move {
        futures::pin_mut!(nodes);
        while nodes.next().await.is_some() {
            notify.notify_one();
        }
    });
    loop {
        if let Err(err) = check(&client, &config).await {
            tracing::debug!(%err, "node lifecycle check failed");
        }
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(config.interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressures_taint_the_node_no_schedule() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "True"},
                {"type": "DiskPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
            ]},
        }))
        .expect("node");
        let taints = pressure_taints(&node);
        assert_eq!(taints.len(), 1);
        assert_eq!(taints[0].key, "node.kubernetes.io/memory-pressure");
        assert_eq!(taints[0].effect, "NoSchedule");
        assert!(managed("node.kubernetes.io/disk-pressure") && !managed("dedicated"));
    }

    #[test]
    fn taints_follow_readiness() {
        assert!(taints_for(Some("True")).is_empty());
        assert!(taints_for(Some("False")).iter().all(|t| t.key == NOT_READY));
        assert!(taints_for(Some("Unknown"))
            .iter()
            .all(|t| t.key == UNREACHABLE));
        assert_eq!(taints_for(None).len(), 1);
        assert!(taints_for(None)
            .iter()
            .all(|t| t.key == NOT_READY && t.effect == "NoSchedule"));
    }

    #[test]
    fn leases_expire_after_the_grace_period() {
        let now = Timestamp::now();
        let grace = Duration::from_secs(40);
        assert!(!expired(Some(now), now, grace));
        assert!(expired(
            Some(now - k8s_openapi::jiff::SignedDuration::from_secs(41)),
            now,
            grace
        ));
        assert!(expired(None, now, grace));
    }
}
