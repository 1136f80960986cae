//! What every namespace holds from its first moments, as Kubernetes' controllers make it: the
//! `default` ServiceAccount (the service-account controller) and the `kube-root-ca.crt`
//! ConfigMap with the cluster CA (the root-CA publisher), re-made when deleted and kept current.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;

pub const ROOT_CA: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";
/// How often every namespace is checked again (objects deleted by hand come back).
const RESYNC: Duration = Duration::from_secs(30);

/// Fills every namespace, now and as namespaces come, until the client's server goes away.
pub async fn run(client: kube::Client, ca_pem: String) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let stream = watcher(namespaces, watcher::Config::default())
        .default_backoff()
        .applied_objects();
    futures::pin_mut!(stream);
    let mut tick = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(ns)) => fill(&client, &ns, &ca_pem).await,
                Some(Err(err)) => tracing::debug!(%err, "namespace watch"),
                None => return,
            },
            _ = tick.tick() => {
                let all = Api::<Namespace>::all(client.clone()).list(&Default::default()).await;
                for ns in all.map(|l| l.items).unwrap_or_default() {
                    fill(&client, &ns, &ca_pem).await;
                }
            }
        }
    }
}

async fn fill(client: &kube::Client, ns: &Namespace, ca_pem: &str) {
    if ns.metadata.deletion_timestamp.is_some() {
        return;
    }
    let name = ns.name_any();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
    if let Ok(None) = accounts.get_opt("default").await {
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some("default".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        created(accounts.create(&PostParams::default(), &sa).await, &name);
    }
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    let wanted = BTreeMap::from([("ca.crt".to_string(), ca_pem.to_string())]);
    match maps.get_opt(ROOT_CA).await {
        Ok(None) => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(ROOT_CA.into()),
                    annotations: Some(BTreeMap::from([(
                        "kubernetes.io/description".to_string(),
                        DESCRIPTION.to_string(),
                    )])),
                    ..Default::default()
                },
                data: Some(wanted),
                ..Default::default()
            };
            created(maps.create(&PostParams::default(), &cm).await, &name);
        }
        Ok(Some(cm)) if cm.data.as_ref() != Some(&wanted) => {
            let patch = serde_json::json!({"data": wanted});
            let patched = maps
                .patch(ROOT_CA, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            if let Err(err) = patched {
                tracing::warn!(namespace = %name, %err, "updating the root CA config map failed");
            }
        }
        _ => {}
    }
}

fn created<T>(result: Result<T, kube::Error>, namespace: &str) {
    match result {
        Ok(_) => {}
        // Made meanwhile, or the namespace is going away.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 403 => {}
        Err(err) => tracing::warn!(%namespace, %err, "filling a namespace failed"),
    }
}
