//! The scheduler: watches pods that no node runs yet and binds each to a node through the
//! `pods/binding` subresource, as kube-scheduler does.
//!
//! Start at [`run`]. A pass takes every pending pod, runs the [`plugins::Filter`]s over every node
//! (with what the pods already bound there request), scores the nodes that pass, binds to the
//! best, and records `Scheduled` or `FailedScheduling` events worded as Kubernetes words them
//! (repeats fold into one event series). A pod that fits nowhere waits until a node changes or a
//! pod goes away, as kube-scheduler's unschedulable queue does, and is retried every five minutes
//! regardless.
//!
//! **Boundary:** the scheduler is an ordinary API client; it never touches storage.

pub mod plugins;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::resources::Resources;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Resource, ResourceExt};
use tokio::sync::Notify;

pub const SCHEDULER_NAME: &str = "default-scheduler";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding {pod} to {node}: {source}")]
    Bind {
        pod: String,
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("recording the pod's condition: {0}")]
    Status(#[source] kube::Error),
}

/// Whether `pod` is waiting for this scheduler.
pub fn is_pending(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let unbound = spec
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
        .is_empty();
    let ours = spec
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or(SCHEDULER_NAME)
        == SCHEDULER_NAME;
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    unbound
        && ours
        && pod.metadata.deletion_timestamp.is_none()
        && phase != "Succeeded"
        && phase != "Failed"
}

/// Per-pod retry state for pods that did not fit or could not be bound.
struct Backoff {
    next: Instant,
    delay: Duration,
}

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long an unschedulable pod waits when nothing in the cluster changes (kube-scheduler's
/// `podMaxInUnschedulablePodsDuration`).
const UNSCHEDULABLE_FLUSH: Duration = Duration::from_secs(300);
/// How long a pod this scheduler bound counts on its node before the watch shows the binding.
const ASSUME_TTL: Duration = Duration::from_secs(30);
/// How long a pass waits after the first change it wakes for, to take the ones that follow.
const PASS_GATHER: Duration = Duration::from_millis(5);
/// A change this soon after the last pass ended means a burst of changes.
const BURST: Duration = Duration::from_millis(20);
/// How many bindings are in flight at once.
const BIND_CONCURRENCY: usize = 32;

/// Pods bound by this scheduler that the pod watch has not shown bound yet, so that the next pass
/// neither binds them again nor forgets what they take from their node.
#[derive(Default)]
struct Assumed(HashMap<String, (String, Instant)>);

impl Assumed {
    fn node_of(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|(node, _)| node.as_str())
    }
}

/// Whether a pod is bound to a node and still counts there (not terminal).
fn bound_node(pod: &Pod) -> Option<&str> {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return None;
    }
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// What each pod requests, by UID: a pod's requests never change, and parsing them again on every
/// pass for every pod would dominate a pass on a large cluster.
#[derive(Default)]
struct Requests(HashMap<String, Resources>);

impl Requests {
    fn of(&mut self, pod: &Pod) -> Resources {
        let compute = || {
            pod.spec
                .as_ref()
                .map(api::resources::pod_requests)
                .unwrap_or_default()
        };
        let Some(uid) = pod.metadata.uid.as_deref() else {
            return compute();
        };
        if let Some(known) = self.0.get(uid) {
            return *known;
        }
        let request = compute();
        self.0.insert(uid.to_string(), request);
        request
    }

    /// Forgets the pods that are gone, once there are more of those than present ones (UIDs are
    /// never reused, so a stale entry is never wrong, only kept).
    fn retain(&mut self, pods: &[Arc<Pod>]) {
        if self.0.len() <= 2 * pods.len() {
            return;
        }
        let present: std::collections::HashSet<&str> = pods
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref())
            .collect();
        self.0.retain(|uid, _| present.contains(uid.as_str()));
    }
}

/// What each node offers, by name, with the resourceVersion it was parsed from.
#[derive(Default)]
struct Offers(HashMap<String, (String, plugins::Offer)>);

impl Offers {
    fn info(&mut self, node: &Arc<Node>) -> plugins::NodeInfo {
        let (Some(name), Some(version)) = (
            node.metadata.name.as_deref(),
            node.metadata.resource_version.as_deref(),
        ) else {
            return plugins::NodeInfo::new(node.clone());
        };
        let offer = match self.0.get(name) {
            Some((known, offer)) if known == version => *offer,
            _ => {
                let offer = plugins::Offer::of(node);
                self.0
                    .insert(name.to_string(), (version.to_string(), offer));
                offer
            }
        };
        plugins::NodeInfo::with_offer(node.clone(), offer)
    }

    /// Forgets the nodes that are gone.
    fn retain(&mut self, nodes: &[Arc<Node>]) {
        if self.0.len() > nodes.len() {
            let present: std::collections::HashSet<&str> = nodes
                .iter()
                .filter_map(|n| n.metadata.name.as_deref())
                .collect();
            self.0.retain(|name, _| present.contains(name.as_str()));
        }
    }
}

/// Every node with what its pods (bound, or assumed bound) request.
fn node_infos(
    nodes: &[Arc<Node>],
    pods: &[Arc<Pod>],
    assumed: &Assumed,
    requests: &mut Requests,
    offers: &mut Offers,
) -> Vec<plugins::NodeInfo> {
    offers.retain(nodes);
    let mut infos: Vec<plugins::NodeInfo> = nodes.iter().map(|n| offers.info(n)).collect();
    let index: HashMap<String, usize> = infos
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name().to_string(), i))
        .collect();
    for pod in pods {
        let node = bound_node(pod).or_else(|| assumed.node_of(&key(pod)));
        if let Some(i) = node.and_then(|n| index.get(n)) {
            infos[*i].add_pod(requests.of(pod));
        }
    }
    infos
}

/// Drops what no filter, score or event reads before a pod is kept, so that the scheduler's copy
/// of every pod in the cluster stays small: annotations, managed fields, container statuses, and
/// each container's command, environment, ports and mounts (only its resources count).
fn keep_what_scheduling_reads(pod: &mut Pod) {
    pod.metadata.annotations = None;
    pod.metadata.managed_fields = None;
    if let Some(status) = pod.status.as_mut() {
        status.container_statuses = None;
        status.init_container_statuses = None;
        status.ephemeral_container_statuses = None;
    }
    if let Some(spec) = pod.spec.as_mut() {
        spec.volumes = None;
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            c.command = None;
            c.args = None;
            c.env = None;
            c.env_from = None;
            c.ports = None;
            c.volume_mounts = None;
            c.liveness_probe = None;
            c.readiness_probe = None;
            c.startup_probe = None;
            c.lifecycle = None;
            c.security_context = None;
        }
    }
}

/// Runs the scheduler until the process ends.
pub async fn run(client: kube::Client) {
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (nodes, node_writer) = reflector::store::<Node>();
    let changed = Arc::new(Notify::new());

    let notify = changed.clone();
    // Every pod that is not terminal: pending ones to schedule, bound ones for what they take.
    // A pod that ends or goes away arrives as a deletion, and may make room.
    let pods_gone = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let gone = pods_gone.clone();
    let pod_stream = watcher(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().fields("status.phase!=Succeeded,status.phase!=Failed"),
    )
    .default_backoff()
    .modify(keep_what_scheduling_reads)
    .reflect(pod_writer);
    tokio::spawn(async move {
        futures::pin_mut!(pod_stream);
        while let Some(ev) = pod_stream.next().await {
            match ev {
                Ok(watcher::Event::Delete(_)) => {
                    gone.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(err) => tracing::debug!(%err, "pod watch"),
            }
            notify.notify_one();
        }
    });
    let notify = changed.clone();
    let node_stream = reflector::reflector(
        node_writer,
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let node_changes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = node_changes.clone();
    tokio::spawn(async move {
        futures::pin_mut!(node_stream);
        while let Some(ev) = node_stream.next().await {
            if let Err(err) = ev {
                tracing::debug!(%err, "node watch");
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            notify.notify_one();
        }
    });
    let _ = pods.wait_until_ready().await;
    let _ = nodes.wait_until_ready().await;

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: SCHEDULER_NAME.into(),
            instance: None,
        },
    );
    let mut backoff: HashMap<String, Backoff> = HashMap::new();
    let mut assumed = Assumed::default();
    let mut requests = Requests::default();
    let mut offers = Offers::default();
    let mut seen_changes = (0, 0);
    loop {
        // A node change, or a pod that went away, may make any waiting pod fit: retry them all now.
        let changes = (
            node_changes.load(std::sync::atomic::Ordering::Relaxed),
            pods_gone.load(std::sync::atomic::Ordering::Relaxed),
        );
        if changes != seen_changes {
            seen_changes = changes;
            backoff.clear();
        }
        let mut pass = Pass {
            client: &client,
            recorder: &recorder,
            backoff: &mut backoff,
            assumed: &mut assumed,
            requests: &mut requests,
            offers: &mut offers,
        };
        let next_retry = pass.run(&pods, &nodes).await;
        let last_pass = Instant::now();
        let wait = next_retry
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(60));
        tokio::select! {
            _ = changed.notified() => {
                // In a burst of changes (creates, their bindings, their statuses) let a few
                // milliseconds' worth gather so one pass serves them all; a lone change is
                // served at once.
                if last_pass.elapsed() < BURST {
                    tokio::time::sleep(PASS_GATHER).await;
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// What one scheduling pass works with.
struct Pass<'a> {
    requests: &'a mut Requests,
    offers: &'a mut Offers,
    client: &'a kube::Client,
    recorder: &'a Recorder,
    backoff: &'a mut HashMap<String, Backoff>,
    assumed: &'a mut Assumed,
}

impl Pass<'_> {
    /// One pass over the pending pods; returns when the next retry is due.
    async fn run(&mut self, pods: &Store<Pod>, nodes: &Store<Node>) -> Option<Instant> {
        let now = Instant::now();
        let all = pods.state();
        // An assumed pod is done with once the watch shows it bound (or gone), or it expired.
        self.assumed.0.retain(|k, (_, since)| {
            let pod = k
                .split_once('/')
                .and_then(|(ns, name)| pods.get(&ObjectRef::new(name).within(ns)));
            pod.is_some_and(|p| bound_node(&p).is_none()) && since.elapsed() < ASSUME_TTL
        });
        let mut pending: Vec<Arc<Pod>> = all
            .iter()
            .filter(|p| is_pending(p) && self.assumed.node_of(&key(p)).is_none())
            .cloned()
            .collect();
        pending.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
        let keys: std::collections::HashSet<String> = pending.iter().map(|p| key(p)).collect();
        self.backoff.retain(|k, _| keys.contains(k));
        self.requests.retain(&all);
        let mut infos = node_infos(
            &nodes.state(),
            &all,
            self.assumed,
            self.requests,
            self.offers,
        );
        // Decide every pod in turn against node infos that count the pods placed before it,
        // then bind them all at once: bindings are independent API calls.
        let mut placed: Vec<(Arc<Pod>, String)> = Vec::new();
        for pod in pending {
            let k = key(&pod);
            if self.backoff.get(&k).is_some_and(|b| b.next > now) {
                continue;
            }
            let request = self.requests.of(&pod);
            match plugins::select(&pod, &request, &infos) {
                Ok(node) => {
                    if let Some(info) = infos.iter_mut().find(|i| i.name() == node) {
                        info.add_pod(request);
                    }
                    self.assumed.0.insert(k, (node.clone(), Instant::now()));
                    placed.push((pod, node));
                }
                Err(message) => {
                    self.backoff.insert(
                        k.clone(),
                        Backoff {
                            next: now + UNSCHEDULABLE_FLUSH,
                            delay: INITIAL_BACKOFF,
                        },
                    );
                    if let Err(err) =
                        unschedulable(self.client, self.recorder, &pod, &message).await
                    {
                        tracing::warn!(pod = %k, %err, "recording FailedScheduling failed");
                    }
                }
            }
        }
        let (client, recorder) = (self.client, self.recorder);
        let results: Vec<(String, Result<(), Error>)> = futures::stream::iter(placed)
            .map(
                |(pod, node)| async move { (key(&pod), bind(client, recorder, &pod, &node).await) },
            )
            .buffer_unordered(BIND_CONCURRENCY)
            .collect()
            .await;
        for (k, result) in results {
            match result {
                Ok(()) => {
                    self.backoff.remove(&k);
                }
                Err(err) => {
                    tracing::warn!(pod = %k, %err, "binding failed");
                    self.assumed.0.remove(&k);
                    self.retry_later(k, now);
                }
            }
        }
        self.backoff.values().map(|b| b.next).min()
    }

    /// A pod whose binding failed is tried again after a growing delay.
    fn retry_later(&mut self, key: String, now: Instant) {
        let b = self.backoff.entry(key).or_insert(Backoff {
            next: now,
            delay: INITIAL_BACKOFF,
        });
        b.next = now + b.delay;
        b.delay = (b.delay * 2).min(MAX_BACKOFF);
    }
}

fn key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

async fn bind(
    client: &kube::Client,
    recorder: &Recorder,
    pod: &Pod,
    node: &str,
) -> Result<(), Error> {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let binding = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": ns},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    api.create_subresource::<serde_json::Value, serde_json::Value>(
        "binding",
        &name,
        &PostParams::default(),
        &binding,
    )
    .await
    .map_err(|source| Error::Bind {
        pod: name.clone(),
        node: node.to_string(),
        source,
    })?;
    let event = Event {
        type_: EventType::Normal,
        reason: "Scheduled".into(),
        note: Some(format!("Successfully assigned {ns}/{name} to {node}")),
        action: "Binding".into(),
        secondary: None,
    };
    // The event is not part of the binding: record it without holding up the next binding.
    let (recorder, reference) = (recorder.clone(), pod.object_ref(&()));
    tokio::spawn(async move {
        if let Err(err) = recorder.publish(&event, &reference).await {
            tracing::warn!(%err, "recording the Scheduled event failed");
        }
    });
    tracing::debug!(pod = %format!("{ns}/{name}"), node, "scheduled");
    Ok(())
}

async fn unschedulable(
    client: &kube::Client,
    recorder: &Recorder,
    pod: &Pod,
    message: &str,
) -> Result<(), Error> {
    let ns = pod.namespace().unwrap_or_default();
    let already = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .is_some_and(|c| c.status == "False" && c.message.as_deref() == Some(message));
    if !already {
        let patch = serde_json::json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
        }]}});
        Api::<Pod>::namespaced(client.clone(), &ns)
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
            .map_err(Error::Status)?;
    }
    let event = Event {
        type_: EventType::Warning,
        reason: "FailedScheduling".into(),
        note: Some(message.to_string()),
        action: "Scheduling".into(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, &pod.object_ref(&())).await {
        tracing::warn!(%err, "recording the FailedScheduling event failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(version: &str, cpu: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "n", "resourceVersion": version},
                "status": {"allocatable": {"cpu": cpu, "memory": "1Gi", "pods": "110"}},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn the_kept_copy_of_a_pod_schedules_as_the_pod_does() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "annotations": {"a": "b"}, "labels": {"app": "x"}},
            "spec": {
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "containers": [{"name": "c", "command": ["sh"], "env": [{"name": "A", "value": "1"}],
                    "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}],
                "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}],
            },
            "status": {"containerStatuses": [], "conditions": [{"type": "PodScheduled", "status": "False"}]},
        }))
        .unwrap();
        let before = api::resources::pod_requests(pod.spec.as_ref().unwrap());
        keep_what_scheduling_reads(&mut pod);
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(api::resources::pod_requests(spec), before);
        assert!(spec.node_selector.is_some() && spec.tolerations.is_some());
        assert!(spec.containers[0].env.is_none() && pod.metadata.annotations.is_none());
        assert!(pod.metadata.labels.is_some());
        assert!(
            pod.status.as_ref().unwrap().conditions.is_some(),
            "FailedScheduling reads it"
        );
    }

    #[test]
    fn a_node_offer_is_parsed_again_when_the_node_changes() {
        let mut offers = Offers::default();
        let first = offers.info(&node("1", "2"));
        assert_eq!(first.offer().allocatable.milli_cpu, 2000);
        assert_eq!(first.offer().max_pods, 110);
        // The same version is served from the cache; a new one is parsed.
        assert_eq!(offers.info(&node("1", "8")).offer(), first.offer());
        assert_eq!(
            offers.info(&node("2", "8")).offer().allocatable.milli_cpu,
            8000
        );
        offers.retain(&[]);
        assert!(offers.0.is_empty(), "a node that is gone is forgotten");
    }
}
