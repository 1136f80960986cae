//! `kubelite-bench scheduler`: pods bound per second with 100 and 1,000 fake nodes (kubelite's
//! own `agent --fake-nodes`), counted from the first create to the last binding the pod watch
//! reports.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};

use crate::pods::Proc;
use crate::Row;

fn pod(name: &str) -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "gcr.io/kuar-demo/kuard-amd64:1",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}
    }))?)
}

/// Waits until `count` nodes report Ready without the not-ready taint.
async fn nodes_ready(client: &kube::Client, count: usize) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|n| {
                n.spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_none_or(|t| t.is_empty())
            })
            .count();
        if ready >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{ready} of {count} fake nodes became ready");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates `total` pods with 32 concurrent clients and returns pods bound per second.
async fn bind_rate(client: &kube::Client, ns: &str, total: usize) -> Result<f64> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = api.list(&ListParams::default()).await?;
    let rv = list.metadata.resource_version.unwrap_or_default();
    let watcher = api.clone();
    let counter = tokio::spawn(async move {
        let mut bound = HashSet::new();
        let stream = watcher.watch(&WatchParams::default(), &rv).await?;
        futures::pin_mut!(stream);
        while let Some(ev) = stream.try_next().await? {
            if let WatchEvent::Modified(p) | WatchEvent::Added(p) = ev {
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                    bound.insert(p.metadata.name.unwrap_or_default());
                    if bound.len() == total {
                        return Ok::<Instant, anyhow::Error>(Instant::now());
                    }
                }
            }
        }
        bail!("the watch ended with {} bound", bound.len())
    });
    let started = Instant::now();
    futures::stream::iter(0..total)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &pod(&format!("p-{i}"))?)
                    .await
                    .map_err(anyhow::Error::from)
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let done = tokio::time::timeout(Duration::from_secs(300), counter).await???;
    Ok(total as f64 / done.duration_since(started).as_secs_f64())
}

/// How many fresh clusters each size is measured on: the machine's speed varies from run to run
/// by a quarter or more, so one run says little.
const ROUNDS: usize = 3;

/// One fresh server and fake-node agent with `nodes` nodes; returns pods bound per second.
async fn one_round(binary: &Path, nodes: usize, pods: usize) -> Result<f64> {
    let (server, client, _) = crate::start(binary, &[]).await?;
    let token = server.dir().join("data/server/tls/node-token");
    let _fake = Proc(
        Command::new(binary)
            .args(["agent", "--server", &server.url, "--token-file"])
            .arg(&token)
            .args(["--node-name", "fake", "--fake-nodes", &nodes.to_string()])
            .arg("--data-dir")
            .arg(server.dir().join("fake"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(server.dir().join("fake.log"))?)
            .spawn()?,
    );
    if let Err(err) = nodes_ready(&client, nodes).await {
        let log = std::fs::read_to_string(server.dir().join("fake.log")).unwrap_or_default();
        bail!(
            "{err}; the fake nodes' log ends:\n{}",
            log.lines().rev().take(5).collect::<Vec<_>>().join("\n")
        );
    }
    crate::namespace(&client, "sched").await?;
    bind_rate(&client, "sched", pods).await
}

pub async fn measure(binary: &Path, rows: &mut Vec<Row>) -> Result<()> {
    for (nodes, pods) in [(100usize, 2000usize), (1000, 5000)] {
        let mut rates = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            rates.push(one_round(binary, nodes, pods).await?);
        }
        rates.sort_by(f64::total_cmp);
        rows.push(Row(
            format!("scheduler: {pods} pods bound/s, {nodes} fake nodes, median ({ROUNDS} runs)"),
            format!(
                "{:.0} ({:.0}–{:.0})",
                rates[ROUNDS / 2],
                rates[0],
                rates[ROUNDS - 1]
            ),
            if nodes == 1000 { "≥ 1,000" } else { "" },
        ));
    }
    Ok(())
}
