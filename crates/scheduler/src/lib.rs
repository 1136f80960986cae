//! The scheduler: watches pods that no node runs yet and binds each to a node through the
//! `pods/binding` subresource, as kube-scheduler does.
//!
//! Start at [`run`]. A pass takes every pending pod, runs the [`plugins::Filter`]s over every node,
//! scores the nodes that pass, binds to the best, and records `Scheduled` or `FailedScheduling`
//! events worded as Kubernetes words them. Pods that fit nowhere are retried when nodes or pods
//! change, and with a back-off otherwise.
//!
//! **Boundary:** the scheduler is an ordinary API client; it never touches storage.

pub mod plugins;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
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

/// Per-pod retry state for pods that did not fit.
struct Backoff {
    next: Instant,
    delay: Duration,
}

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Runs the scheduler until the process ends.
pub async fn run(client: kube::Client) {
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (nodes, node_writer) = reflector::store::<Node>();
    let changed = Arc::new(Notify::new());

    let notify = changed.clone();
    let pod_stream = reflector::reflector(
        pod_writer,
        watcher(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().fields("spec.nodeName="),
        ),
    )
    .default_backoff()
    .touched_objects();
    tokio::spawn(async move {
        futures::pin_mut!(pod_stream);
        while let Some(ev) = pod_stream.next().await {
            if let Err(err) = ev {
                tracing::debug!(%err, "pod watch");
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
    let mut seen_node_changes = 0;
    loop {
        // A node change may make any waiting pod fit: retry them all now.
        let now_changes = node_changes.load(std::sync::atomic::Ordering::Relaxed);
        if now_changes != seen_node_changes {
            seen_node_changes = now_changes;
            backoff.clear();
        }
        let next_retry = schedule_pass(&client, &recorder, &pods, &nodes, &mut backoff).await;
        let wait = next_retry
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(60));
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass over the pending pods; returns when the next back-off expires.
async fn schedule_pass(
    client: &kube::Client,
    recorder: &Recorder,
    pods: &Store<Pod>,
    nodes: &Store<Node>,
    backoff: &mut HashMap<String, Backoff>,
) -> Option<Instant> {
    let now = Instant::now();
    let mut pending: Vec<Arc<Pod>> = pods.state().into_iter().filter(|p| is_pending(p)).collect();
    pending.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    let keys: std::collections::HashSet<String> = pending.iter().map(|p| key(p)).collect();
    backoff.retain(|k, _| keys.contains(k));
    let nodes: Vec<Arc<Node>> = nodes.state();
    let mut bound_counts = plugins::pods_per_node(&pods.state());
    for pod in pending {
        let k = key(&pod);
        if backoff.get(&k).is_some_and(|b| b.next > now) {
            continue;
        }
        match plugins::select(&pod, &nodes, &bound_counts) {
            Ok(node) => match bind(client, recorder, &pod, &node).await {
                Ok(()) => {
                    backoff.remove(&k);
                    *bound_counts.entry(node).or_default() += 1;
                }
                Err(err) => tracing::warn!(pod = %k, %err, "binding failed"),
            },
            Err(message) => {
                let b = backoff.entry(k.clone()).or_insert(Backoff {
                    next: now,
                    delay: INITIAL_BACKOFF,
                });
                b.next = now + b.delay;
                b.delay = (b.delay * 2).min(MAX_BACKOFF);
                if let Err(err) = unschedulable(client, recorder, &pod, &message).await {
                    tracing::warn!(pod = %k, %err, "recording FailedScheduling failed");
                }
            }
        }
    }
    backoff.values().map(|b| b.next).min()
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
    if let Err(err) = recorder.publish(&event, &pod.object_ref(&())).await {
        tracing::warn!(%err, "recording the Scheduled event failed");
    }
    tracing::info!(pod = %format!("{ns}/{name}"), node, "scheduled");
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
