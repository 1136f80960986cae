//! The disruption controller: keeps each PodDisruptionBudget's status (healthy, desired and
//! expected pods, disruptions allowed, evictions not yet seen through) in step with the pods it
//! selects, as `api::pdb::compute` computes it. Evictions (`pods/eviction`) read that status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, ObjectReference, Pod};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::reflector::Store;
use kube::ResourceExt;

/// Every budget is computed again this often, also without changes (evictions not seen through
/// expire from `disruptedPods`).
const RESYNC: Duration = Duration::from_secs(15);

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client) {
    let warned = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let api_client = client.clone();
    crate::informer::run::<PodDisruptionBudget, _, _>(client, RESYNC, move |pods, budgets| {
        let (client, warned) = (api_client.clone(), warned.clone());
        async move { sync_all(&client, &budgets, &pods, &warned).await }
    })
    .await;
}

/// Warnings already recorded: once per budget and reason, not every pass.
type Warned = std::sync::Mutex<std::collections::HashSet<(String, String, &'static str)>>;

async fn sync_all(
    client: &kube::Client,
    budgets: &Store<PodDisruptionBudget>,
    pods: &Store<Pod>,
    warned: &Warned,
) {
    let all_pods: Vec<Pod> = pods.state().iter().map(|p| Pod::clone(p)).collect();
    let now = k8s_openapi::jiff::Timestamp::now();
    for budget in budgets.state() {
        let computed = api::pdb::compute(&budget, &all_pods, now);
        for (reason, message) in &computed.warnings {
            // Once per budget and reason, not every pass.
            let key = (
                budget.namespace().unwrap_or_default(),
                budget.name_any(),
                *reason,
            );
            let first = warned.lock().map(|mut w| w.insert(key)).unwrap_or(false);
            if first {
                warn(client, &budget, reason, message).await;
            }
        }
        if same(budget.status.as_ref(), &computed.status) {
            continue;
        }
        write_status(client, &budget, computed.status).await;
    }
}

/// Whether two statuses say the same, whenever their conditions changed.
fn same(old: Option<&PodDisruptionBudgetStatus>, new: &PodDisruptionBudgetStatus) -> bool {
    let strip = |s: &PodDisruptionBudgetStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_transition_time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            );
        }
        s
    };
    old.is_some_and(|old| strip(old) == strip(new))
}

async fn write_status(
    client: &kube::Client,
    budget: &Arc<PodDisruptionBudget>,
    status: PodDisruptionBudgetStatus,
) {
    let namespace = budget.namespace().unwrap_or_default();
    let api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &namespace);
    let mut updated = PodDisruptionBudget::clone(budget);
    updated.status = Some(status);
    // A conflict means the budget changed: the watch brings it, and it is computed again.
    if let Err(err) = api
        .replace_status(&budget.name_any(), &PostParams::default(), &updated)
        .await
    {
        tracing::debug!(budget = %budget.name_any(), %namespace, %err, "writing a budget's status");
    }
}

/// A Warning event on the budget, as the disruption controller records them.
async fn warn(client: &kube::Client, budget: &PodDisruptionBudget, reason: &str, message: &str) {
    let namespace = budget.namespace().unwrap_or_default();
    let now = k8s_openapi::jiff::Timestamp::now();
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.", budget.name_any())),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("policy/v1".into()),
            kind: Some("PodDisruptionBudget".into()),
            name: budget.metadata.name.clone(),
            namespace: Some(namespace.clone()),
            uid: budget.metadata.uid.clone(),
            resource_version: budget.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some("Warning".into()),
        count: Some(1),
        first_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)),
        last_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)),
        source: Some(k8s_openapi::api::core::v1::EventSource {
            component: Some("controllermanager".into()),
            host: None,
        }),
        reporting_component: Some("controllermanager".into()),
        ..Default::default()
    };
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if let Err(err) = events.create(&PostParams::default(), &event).await {
        tracing::debug!(%err, "recording a budget's event");
    }
}
