//! Fake nodes, as kwok makes them: Nodes with chosen capacity whose leases are renewed and whose
//! pods are reported Running without any container. They let the scheduler be measured at
//! a thousand nodes, and let tests add "a node with room" in a second.
//!
//! **Boundary:** nothing here touches the machine; it is an API client only.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::json;

use crate::{host, Config, Error};

/// What the fake nodes are.
#[derive(Clone, Debug)]
pub struct FakeNodes {
    /// Node names are `<prefix>-0`, `<prefix>-1`, ….
    pub prefix: String,
    pub count: usize,
    pub cpus: usize,
    pub memory_kib: u64,
}

impl FakeNodes {
    pub fn names(&self) -> Vec<String> {
        (0..self.count)
            .map(|i| format!("{}-{i}", self.prefix))
            .collect()
    }

    fn host(&self, name: &str) -> host::Host {
        host::Host {
            hostname: name.to_string(),
            cpus: self.cpus,
            memory_kib: self.memory_kib,
            ephemeral_storage_kib: 100 << 20,
            kernel_version: "fake".into(),
            os_image: "kubelite fake node".into(),
            machine_id: name.to_string(),
            boot_id: name.to_string(),
            arch: "amd64",
            runtime_version: "fake://0".into(),
            internal_ip: Some("127.0.0.1".into()),
        }
    }
}

/// Registers the fake nodes, keeps their leases and runs their pods, until the process ends.
pub async fn run(client: kube::Client, config: Config, fake: FakeNodes) -> Result<(), Error> {
    let names = fake.names();
    for chunk in names.chunks(50) {
        let registrations = chunk.iter().map(|name| {
            let config = Config {
                node_name: name.clone(),
                ..config.clone()
            };
            let (client, host) = (client.clone(), fake.host(name));
            async move {
                // As the real agent does, a failed registration is tried again.
                let mut delay = std::time::Duration::from_millis(100);
                for _ in 0..5 {
                    match crate::register_as(&client, &config, &host).await {
                        Ok(()) => return Ok(()),
                        Err(err) => {
                            tracing::warn!(%err, "registering a fake node failed; retrying")
                        }
                    }
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                crate::register_as(&client, &config, &host).await
            }
        });
        for result in futures::future::join_all(registrations).await {
            result?;
        }
    }
    tracing::info!(count = names.len(), prefix = %fake.prefix, "fake nodes registered");
    // Real nodes do not renew their leases in step: spread the fake ones over the interval, so
    // a thousand renewals do not land in the same instant every ten seconds.
    let spacing = config.lease_interval / names.len().max(1) as u32;
    for (i, name) in names.iter().enumerate() {
        let config = Config {
            node_name: name.clone(),
            ..config.clone()
        };
        let (client, offset) = (client.clone(), spacing * i as u32);
        tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            crate::heartbeat(client, config).await
        });
    }
    run_pods(client, names.into_iter().collect()).await;
    Ok(())
}

/// Reports every pod bound to a fake node Running and Ready, and finishes their deletion.
async fn run_pods(client: kube::Client, nodes: HashSet<String>) {
    let nodes = Arc::new(nodes);
    let api: Api<Pod> = Api::all(client.clone());
    // Only pods bound to some node concern a node; the rest would be parsed for nothing.
    let stream = watcher(api, watcher::Config::default().fields("spec.nodeName!="))
        .default_backoff()
        .applied_objects();
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        let Ok(pod) = item else { continue };
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        if !node.is_some_and(|n| nodes.contains(&n)) {
            continue;
        }
        let client = client.clone();
        tokio::spawn(async move {
            let result = if pod.metadata.deletion_timestamp.is_some() {
                crate::kube_api::confirm_deletion(&client, &pod).await
            } else if pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running") {
                report_running(&client, &pod).await
            } else {
                Ok(())
            };
            if let Err(err) = result {
                tracing::debug!(pod = %pod.name_any(), %err, "fake pod update");
            }
        });
    }
}

async fn report_running(client: &kube::Client, pod: &Pod) -> Result<(), kube::Error> {
    let now = Time(Timestamp::now());
    let condition = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    let uid = pod.uid().unwrap_or_default();
    let containers: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| {
            json!({
                "name": c.name,
                "image": c.image,
                "imageID": "",
                "containerID": format!("fake://{uid}-{}", c.name),
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let status = json!({"status": {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "startTime": now,
        "conditions": [condition("PodReadyToStartContainers"), condition("Initialized"),
                       condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
        "containerStatuses": containers,
    }});
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    api.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .map(|_| ())
}
