//! `kubelite-bench cli`: whole-process time of kubelite's kubectl (the release binary called as
//! `kubectl` through a link) against the real kubectl, same server, same commands, alternating.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};

use crate::pods::percentile;
use crate::Row;

const KUBECTL: &str = "/usr/bin/kubectl";
const RUNS: usize = 30;

fn pod(name: &str) -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "kuard", "image": "gcr.io/kuar-demo/kuard-amd64:1"}]}
    }))?)
}

async fn fill(client: &kube::Client, ns: &str, count: usize) -> Result<()> {
    crate::namespace(client, ns).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &pod(&format!("pod-{i}"))?)
                    .await
                    .map_err(anyhow::Error::from)
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Median milliseconds of `RUNS` runs of `args` through `binary`.
fn median_ms(binary: &Path, kubeconfig: &Path, cache: &Path, args: &[&str]) -> Result<f64> {
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let status = Command::new(binary)
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", cache)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("{} {} failed", binary.display(), args.join(" "));
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(percentile(&mut samples, 0.5))
}

pub async fn measure(binary: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let (server, client, _) = crate::start(binary, &[]).await?;
    fill(&client, "ten", 10).await?;
    fill(&client, "thousand", 1000).await?;
    let links = tempfile::tempdir()?;
    let ours: PathBuf = links.path().join("kubectl");
    std::os::unix::fs::symlink(std::fs::canonicalize(binary)?, &ours)?;
    let kubeconfig = server.kubeconfig.clone();
    // kubectl keeps discovery in a disk cache; warm it as a user's would be.
    let cache = server.dir().join("kube-cache");
    median_ms(
        Path::new(KUBECTL),
        &kubeconfig,
        &cache,
        &["get", "pods", "-n", "ten"],
    )?;
    let commands: [(&str, &[&str]); 4] = [
        ("version --client", &["version", "--client"]),
        ("get pods (10 pods)", &["get", "pods", "-n", "ten"]),
        ("get pods (1,000 pods)", &["get", "pods", "-n", "thousand"]),
        (
            "get pod NAME -o yaml",
            &["get", "pod", "pod-1", "-n", "ten", "-o", "yaml"],
        ),
    ];
    for (label, args) in commands {
        let theirs = median_ms(Path::new(KUBECTL), &kubeconfig, &cache, args)?;
        let mine = median_ms(&ours, &kubeconfig, &cache, args)?;
        rows.push(Row(
            format!("kubelite kubectl {label}, p50 ({RUNS} runs)"),
            format!("{mine:.1} ms ({:.1}× faster)", theirs / mine),
            "≥ 5× faster",
        ));
        rows.push(Row(
            format!("kubectl {label}, p50 (peer)"),
            format!("{theirs:.1} ms"),
            "peer",
        ));
    }
    Ok(())
}
