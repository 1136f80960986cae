//! The resource quota controller: keeps each ResourceQuota's status (`hard` from its spec, `used`
//! from the pods and objects of its namespace, as `api::quota::usage_of` adds them up) current,
//! so that admission charges new objects against the right figures and deleted ones give their
//! share back.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, ResourceQuota, ResourceQuotaStatus};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::runtime::reflector::Store;
use kube::ResourceExt;

/// Every quota is computed again this often (objects other than pods are not watched).
const RESYNC: Duration = Duration::from_secs(10);

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client) {
    let api_client = client.clone();
    crate::informer::run::<ResourceQuota, _, _>(client, RESYNC, move |pods, quotas| {
        let client = api_client.clone();
        async move {
            for quota in quotas.state() {
                sync(&client, &quota, &pods).await;
            }
        }
    })
    .await;
}

async fn sync(client: &kube::Client, quota: &ResourceQuota, pods: &Store<Pod>) {
    let namespace = quota.namespace().unwrap_or_default();
    let hard_quantities = quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.clone())
        .unwrap_or_default();
    let hard = api::quota::parse_map(Some(&hard_quantities));
    let in_namespace: Vec<Pod> = pods
        .state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .map(|p| Pod::clone(p))
        .collect();
    let mut counts = BTreeMap::new();
    for (name, resource) in api::quota::counted(&hard) {
        match count(client, resource, &namespace).await {
            Some(n) => {
                counts.insert(name, n);
            }
            // Without a count the old figure stays rather than a wrong one.
            None => return,
        }
    }
    let used = api::quota::usage_of(&hard, &in_namespace, &counts);
    let status = ResourceQuotaStatus {
        hard: Some(hard_quantities),
        used: Some(api::quota::quantities(&used)),
    };
    if quota.status.as_ref() == Some(&status) {
        return;
    }
    let mut updated = quota.clone();
    updated.status = Some(status);
    let api: Api<ResourceQuota> = Api::namespaced(client.clone(), &namespace);
    // A conflict means the quota changed (or admission charged it): the watch brings it again.
    if let Err(err) = api
        .replace_status(&quota.name_any(), &PostParams::default(), &updated)
        .await
    {
        tracing::debug!(quota = %quota.name_any(), %namespace, %err, "writing a quota's status");
    }
}

/// How many objects of `resource` the namespace holds.
async fn count(
    client: &kube::Client,
    resource: &api::resource::Resource,
    namespace: &str,
) -> Option<i64> {
    let ar = ApiResource {
        group: resource.group.into(),
        version: resource.version.into(),
        api_version: resource.api_version(),
        kind: resource.kind.into(),
        plural: resource.plural.into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    match api.list(&ListParams::default()).await {
        Ok(list) => Some(list.items.len() as i64),
        Err(err) => {
            tracing::debug!(resource = resource.plural, %namespace, %err, "counting objects for a quota");
            None
        }
    }
}
