//! Objects survive restarts, a `kill -9` in the middle of a burst of concurrent creates loses
//! no create the server acknowledged, and concurrent patches all land.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

async fn client(c: &Cluster) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&c.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "kuard", "image": "gcr.io/kuar-demo/kuard-amd64:1"}]}
    }))
    .unwrap()
}

#[test]
fn objects_survive_a_restart() {
    let mut c = Cluster::start();
    c.file("pod.yaml", KUARD_POD);
    c.kubectl(&["create", "-f", "pod.yaml"]).ok();
    let before = c
        .kubectl(&[
            "get",
            "pod",
            "kubernetes-up-and-running",
            "-o",
            "jsonpath={.metadata.uid} {.metadata.resourceVersion}",
        ])
        .ok()
        .to_string();
    c.restart();
    let after = c
        .kubectl(&[
            "get",
            "pod",
            "kubernetes-up-and-running",
            "-o",
            "jsonpath={.metadata.uid} {.metadata.resourceVersion}",
        ])
        .ok()
        .to_string();
    assert_eq!(before, after);
    // Writes go on from the stored revision.
    c.kubectl(&["label", "pod", "kubernetes-up-and-running", "after=restart"])
        .ok();
    let rv: i64 = c
        .kubectl(&[
            "get",
            "pod",
            "kubernetes-up-and-running",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .ok()
        .parse()
        .unwrap();
    assert!(rv > before.split(' ').nth(1).unwrap().parse::<i64>().unwrap());
    // The certificates are reused: the old kubeconfig still works.
    let ns = c.kubectl(&["get", "ns", "default", "-o", "name"]);
    assert_eq!(ns.ok().trim(), "namespace/default");
}

#[test]
fn kill_9_during_concurrent_creates_loses_no_acknowledged_write() {
    let mut c = Cluster::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    rt.block_on(async {
        let client = client(&c).await;
        let mut tasks = Vec::new();
        for worker in 0..32 {
            let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
            let acked = acknowledged.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let name = format!("burst-{worker}-{i}");
                    match pods.create(&PostParams::default(), &pod(&name)).await {
                        Ok(_) => {
                            acked.lock().unwrap().insert(name);
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        // Once a good number of creates were acknowledged, kill the server while more are in
        // flight (a count, not a time: the test is about durability, not speed).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while acknowledged.lock().unwrap().len() < 100 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the creators stalled before 100 acknowledged creates"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        c.kill9();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    });
    let acked = acknowledged.lock().unwrap().clone();
    c.restart();
    let stored: BTreeSet<String> = rt.block_on(async {
        let pods: Api<Pod> = Api::namespaced(client(&c).await, "default");
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect()
    });
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged creates were lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

#[test]
fn concurrent_patches_without_a_resource_version_all_land() {
    let c = Cluster::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pods: Api<Pod> = Api::namespaced(client(&c).await, "default");
        pods.create(&PostParams::default(), &pod("contended"))
            .await
            .unwrap();
        // Sixteen writers patch the same pod at once; a patch that names no resourceVersion is
        // applied again to the newer object instead of failing with a conflict.
        let writers = (0..16).map(|w| {
            let pods = pods.clone();
            tokio::spawn(async move {
                for i in 0..5 {
                    let patch = serde_json::json!({"metadata": {"labels": {format!("w{w}"): format!("{i}")}}});
                    pods.patch("contended", &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|e| format!("writer {w}, patch {i}: {e}"))?;
                }
                Ok::<(), String>(())
            })
        });
        for result in futures::future::join_all(writers).await {
            result.unwrap().unwrap();
        }
        let labels = pods.get("contended").await.unwrap().metadata.labels.unwrap();
        for w in 0..16 {
            assert_eq!(labels.get(&format!("w{w}")).map(String::as_str), Some("4"));
        }
    });
}
