//! `kubelite-bench streams`: `kubectl exec POD -- true` round trips next to `crun exec` of the
//! same container (the floor), port-forward throughput next to a direct connection to the pod IP,
//! and how long a line takes from the container to `kubectl logs -f`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};

use crate::pods::{percentile, AgentCluster, Proc};
use crate::Row;

const KUBECTL: &str = "/usr/bin/kubectl";
/// What the bulk container serves per connection.
const BULK_BYTES: usize = 256 << 20;

fn pod() -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": "streams"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [
            {"name": "kuard", "image": "gcr.io/kuar-demo/kuard-amd64:1"},
            {"name": "bulk", "image": "gcr.io/kuar-demo/kuard-amd64:1", "command": ["sh", "-c",
                "while :; do dd if=/dev/zero bs=1M count=256 2>/dev/null | nc -l -p 9000; done"]},
            {"name": "ticker", "image": "gcr.io/kuar-demo/kuard-amd64:1", "command": ["sh", "-c",
                "while :; do echo tick; sleep 0.1; done"]},
        ]}
    }))?)
}

fn kubectl(cluster: &AgentCluster) -> Command {
    let mut cmd = Command::new(KUBECTL);
    cmd.env("KUBECONFIG", &cluster.server.kubeconfig)
        .env("KUBECACHEDIR", cluster.server.dir().join("kube-cache"))
        .stdin(Stdio::null());
    cmd
}

fn timed(mut cmd: Command, n: usize) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
        if !status.success() {
            bail!("{cmd:?} failed");
        }
        out.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}

/// MB/s reading everything one connection to `addr` serves.
fn drain(addr: &str) -> Result<f64> {
    let mut conn =
        std::net::TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let started = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0usize;
    loop {
        match conn.read(&mut buf)? {
            0 => break,
            n => total += n,
        }
    }
    if total < BULK_BYTES {
        bail!("{addr} served {total} bytes, not {BULK_BYTES}");
    }
    Ok(total as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64())
}

async fn wait_running(api: &Api<Pod>) -> Result<Pod> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pod = api.get("streams").await?;
        let running = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| cs.len() == 3 && cs.iter().all(|c| c.ready));
        if running {
            return Ok(pod);
        }
        if Instant::now() > deadline {
            bail!("the streams pod did not run");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn measure(binary: &Path, image: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let cluster = AgentCluster::start(binary, image, "10.253.4.0/24").await?;
    let client = crate::client(&cluster.server.kubeconfig).await?;
    let api: Api<Pod> = Api::namespaced(client, "default");
    tokio::time::sleep(Duration::from_secs(2)).await;
    api.create(&PostParams::default(), &pod()?).await?;
    let pod = wait_running(&api).await?;
    let status = pod.status.context("pod status")?;
    let pod_ip = status.pod_ip.context("pod IP")?;
    let kuard_id = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == "kuard")
        .and_then(|c| c.container_id.clone())
        .and_then(|id| id.split_once("://").map(|(_, id)| id.to_string()))
        .context("kuard's container ID")?;

    // exec round trips.
    let mut exec = kubectl(&cluster);
    exec.args(["exec", "streams", "-c", "kuard", "--", "true"]);
    let mut exec_ms = timed(exec, 30)?;
    let mut crun = Command::new("crun");
    crun.arg("--root")
        .arg(cluster.agent_dir.join("agent/run/oci"))
        .args(["exec", &kuard_id, "true"]);
    let mut crun_ms = timed(crun, 30)?;
    // kubectl itself: start-up, kubeconfig, TLS and one request, without any streaming.
    let mut raw = kubectl(&cluster);
    raw.args(["get", "--raw", "/readyz"]);
    let mut raw_ms = timed(raw, 30)?;
    let (exec50, crun50) = (percentile(&mut exec_ms, 0.5), percentile(&mut crun_ms, 0.5));
    rows.push(Row(
        "kubectl exec POD -- true, p50 / p99 (30)".into(),
        format!("{exec50:.0} / {:.0} ms", percentile(&mut exec_ms, 0.99)),
        "",
    ));
    rows.push(Row(
        "kubectl get --raw /readyz, p50 (kubectl's own cost)".into(),
        format!("{:.0} ms", percentile(&mut raw_ms, 0.5)),
        "",
    ));
    rows.push(Row(
        "crun exec of the same container, p50 (floor)".into(),
        format!("{crun50:.1} ms"),
        "floor",
    ));

    // port-forward throughput against a direct connection.
    let direct = drain(&format!("{pod_ip}:9000"))?;
    let local = crate::free_port()?;
    let mut forward = kubectl(&cluster);
    forward
        .args(["port-forward", "streams", &format!("{local}:9000")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Proc(forward.spawn()?);
    let stdout = child.0.stdout.take().context("port-forward output")?;
    let mut lines = BufReader::new(stdout).lines();
    match lines.next() {
        Some(Ok(line)) if line.starts_with("Forwarding from") => {}
        other => bail!("kubectl port-forward: {other:?}"),
    }
    let forwarded = drain(&format!("127.0.0.1:{local}"))?;
    drop(child);
    rows.push(Row(
        "port-forward throughput (256 MiB, one connection)".into(),
        format!("{forwarded:.0} MB/s"),
        "≥ 50% of direct",
    ));
    rows.push(Row(
        "direct connection to the pod IP (peer)".into(),
        format!("{direct:.0} MB/s ({:.0}%)", forwarded / direct * 100.0),
        "peer",
    ));

    // logs -f: conmon stamps each line when the container writes it; the delay is until
    // kubectl prints it.
    let mut follow = kubectl(&cluster);
    follow
        .args([
            "logs",
            "-f",
            "--timestamps",
            "--since=1s",
            "streams",
            "-c",
            "ticker",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let since = chrono::Utc::now();
    let mut child = Proc(follow.spawn()?);
    let stdout = child.0.stdout.take().context("logs output")?;
    let mut delays = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Some(stamp) = line.split_whitespace().next() else {
            continue;
        };
        let written: chrono::DateTime<chrono::Utc> = stamp.parse()?;
        // Lines written before the follow began are history, not delivery.
        if written < since {
            continue;
        }
        if delays.len() == 50 {
            break;
        }
        let delay = chrono::Utc::now().signed_duration_since(written);
        delays.push(delay.num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    drop(child);
    if delays.is_empty() {
        bail!("kubectl logs -f printed nothing");
    }
    rows.push(Row(
        "logs -f delivery, container write → kubectl, p50 / p99".into(),
        format!(
            "{:.0} / {:.0} ms",
            percentile(&mut delays, 0.5),
            percentile(&mut delays, 0.99)
        ),
        "",
    ));
    let _ = api.delete("streams", &Default::default()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(())
}
