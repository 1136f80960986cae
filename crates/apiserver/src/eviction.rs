//! `pods/eviction` (policy/v1 Eviction): a pod deleted only as its PodDisruptionBudget allows, the
//! budget charged for it first, as kube-apiserver's eviction subresource does; the checks
//! themselves are [`api::pdb::check_eviction`].

use std::sync::Arc;

use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::{json, Value};

use api::meta;
use api::pdb::Eviction;
use api::registry::typed;
use api::ApiError;

use axum::response::Response;

use crate::http::Query;
use crate::rest::{self, DeleteOptions, Result, Target, Written};
use crate::Server;

/// How often an eviction reads again when the pod or its budget changed under it.
const TRIES: usize = 20;

/// POST `pods/NAME/eviction`.
pub async fn create(
    server: &Arc<Server>,
    target: &Target,
    q: &Query,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Response> {
    let eviction = rest::subresource_body(content_type, body, target.resource, "Eviction")?;
    if meta::name(&eviction) != target.name() {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let options = match eviction.get("deleteOptions") {
        Some(o) if o.is_object() => Bytes::from(serde_json::to_vec(o).unwrap_or_default()),
        _ => Bytes::new(),
    };
    let opts = DeleteOptions::parse(q, Some("application/json"), options, target.resource)?;
    for _ in 0..TRIES {
        match evict_once(server, target, &opts).await {
            Err(Retry::Again) => continue,
            Err(Retry::Fail(e)) => return Err(e),
            Ok(()) => return Ok(rest::created()),
        }
    }
    Err(still_processing())
}

enum Retry {
    /// The pod or the budget changed between reading and writing: read again.
    Again,
    Fail(ApiError),
}

impl From<ApiError> for Retry {
    fn from(e: ApiError) -> Self {
        Retry::Fail(e)
    }
}

/// The 429 of an eviction whose budget could not be charged in time.
fn still_processing() -> ApiError {
    let mut err = ApiError::new(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
    );
    err.retry_after = Some(10);
    err
}

/// One try: the checks against the pod and its budget as they are now, the budget charged,
/// then the pod marked and deleted. Only a change before the charge tries again: once charged,
/// the pod is marked on its latest version (or, pinned, refused).
async fn evict_once(
    server: &Arc<Server>,
    target: &Target,
    client: &DeleteOptions,
) -> std::result::Result<(), Retry> {
    let mut opts = client.clone();
    let (pod_value, pod_revision) = rest::read(server, target).await?;
    let pod: Pod = typed(&pod_value)?;
    let budgets = budgets_of(server, target).await?;
    let pinned =
        match api::pdb::check_eviction(&pod, &budgets, k8s_openapi::jiff::Timestamp::now())? {
            Eviction::Delete { pinned } => pinned,
            Eviction::DeleteCharging { budget, status } => {
                if !opts.dry_run {
                    charge(server, target, &budget, &budgets, &status).await?;
                }
                false
            }
        };
    if pinned && opts.resource_version.is_none() {
        opts.resource_version = Some(pod_revision.to_string());
    }
    if !opts.dry_run {
        let pinned_at = pinned.then_some(pod_revision);
        let revision = mark_disruption_target(server, target, pinned_at).await?;
        if pinned && client.resource_version.is_none() {
            opts.resource_version = Some(revision.to_string());
        }
    }
    match rest::delete_object(server, target, &opts).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 && pinned => Err(Retry::Fail(still_processing())),
        Err(e) => Err(Retry::Fail(e)),
    }
}

fn pdb_target(target: &Target, name: Option<&str>) -> Target {
    Target {
        resource: api::resource::find("policy", "v1", "poddisruptionbudgets")
            .expect("poddisruptionbudgets are served"),
        namespace: target.namespace.clone(),
        name: name.map(str::to_string),
        subresource: None,
    }
}

/// The budgets of the pod's namespace, as stored now.
async fn budgets_of(
    server: &Arc<Server>,
    target: &Target,
) -> std::result::Result<Vec<PodDisruptionBudget>, ApiError> {
    let pdbs = pdb_target(target, None);
    let listed = rest::read_all(server, &pdbs).await?;
    listed.iter().map(|(v, _)| typed(v)).collect()
}

/// Writes the charged status to budget `name`, unless it changed since it was read.
async fn charge(
    server: &Arc<Server>,
    target: &Target,
    name: &str,
    budgets: &[PodDisruptionBudget],
    status: &k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus,
) -> std::result::Result<(), Retry> {
    let read = budgets
        .iter()
        .find(|b| b.metadata.name.as_deref() == Some(name))
        .and_then(|b| b.metadata.resource_version.clone())
        .and_then(|rv| rv.parse::<i64>().ok())
        .ok_or_else(|| Retry::Fail(ApiError::internal("the budget has no resourceVersion")))?;
    let pdb = pdb_target(target, Some(name));
    let (mut current, revision) = rest::read(server, &pdb).await?;
    if revision != read {
        return Err(Retry::Again);
    }
    current["status"] =
        serde_json::to_value(status).map_err(|e| Retry::Fail(ApiError::internal(e.to_string())))?;
    match rest::write(server, &pdb, &current, revision).await? {
        Written::At(_) => Ok(()),
        Written::Conflict => Err(Retry::Again),
    }
}

/// Adds the `DisruptionTarget` condition to the latest version of the pod's status; the pod's
/// new revision. A pod `pinned_at` a revision may not have changed since (429 otherwise).
async fn mark_disruption_target(
    server: &Arc<Server>,
    target: &Target,
    pinned_at: Option<i64>,
) -> std::result::Result<i64, Retry> {
    for _ in 0..TRIES {
        let (mut pod, revision) = rest::read(server, target).await?;
        if pinned_at.is_some_and(|at| at != revision) {
            return Err(Retry::Fail(still_processing()));
        }
        let mut conditions: Vec<Value> = pod["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions.retain(|c| c["type"] != "DisruptionTarget");
        conditions.push(json!({
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
            "lastProbeTime": null,
            "lastTransitionTime": meta::now(),
        }));
        pod["status"]["conditions"] = Value::Array(conditions);
        if let Written::At(rev) = rest::write(server, target, &pod, revision).await? {
            return Ok(rev);
        }
    }
    Err(Retry::Fail(still_processing()))
}
