//! `kubelite-bench pods`: pod create → Running latency with the image present, one at a time and
//! 20 at once, the node agent's memory with 50 pods, the per-pod cost of conmon + pause, and a bare
//! `crun` create+start of the same image's root filesystem as the floor, in the same run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};

use crate::Row;

pub(crate) struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "kuard", "image": "gcr.io/kuar-demo/kuard-amd64:1"}]}
    }))
    .expect("valid pod")
}

/// The tutorial's pod with kuard's readiness probe, probed every `period` seconds.
fn probed_pod(name: &str, period: i32) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "kuard", "image": "gcr.io/kuar-demo/kuard-amd64:1",
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": period},
        }]}
    }))
    .expect("valid pod")
}

/// CPU time (user + system) a process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

/// Create → Ready with an HTTP readiness probe, one at a time and 20 at once, and the agent's CPU
/// while 50 pods are probed every 10 s.
async fn measure_probed(cluster: &AgentCluster, api: &Api<Pod>, rows: &mut Vec<Row>) -> Result<()> {
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    tokio::spawn(running_times(api.clone(), seen.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut one = Vec::new();
    for i in 0..30 {
        let name = format!("probed-{i}");
        let started = Instant::now();
        api.create(&PostParams::default(), &probed_pod(&name, 1))
            .await?;
        let at = wait_running(&seen, &name).await?;
        one.push(at.duration_since(started).as_secs_f64() * 1000.0);
    }
    delete_all(api).await?;
    let mut batch = in_batches(api, &seen, "probed-par", 3, |n| probed_pod(n, 1)).await?;
    let names: Vec<String> = (0..50).map(|i| format!("idle-{i}")).collect();
    for n in &names {
        api.create(&PostParams::default(), &probed_pod(n, 10))
            .await?;
    }
    for n in &names {
        wait_running(&seen, n).await?;
    }
    // Let start-up work settle, then count the agent's CPU over a minute of probing.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let window = Duration::from_secs(60);
    let before = cpu_seconds(cluster.agent_pid());
    tokio::time::sleep(window).await;
    let used = cpu_seconds(cluster.agent_pid()) - before;
    delete_all(api).await?;
    rows.push(Row(
        "pods with an HTTP readiness probe (1 s): create → Ready, one at a time, p50 / p99 (30)"
            .into(),
        p50_p99(&mut one),
        "",
    ));
    rows.push(Row(
        "pods with an HTTP readiness probe: create → Ready, 20 at once, p50 / p99 (3 × 20)".into(),
        p50_p99(&mut batch),
        "",
    ));
    rows.push(Row(
        "node agent CPU, 50 pods probed every 10 s (60 s window)".into(),
        format!("{:.2} % of a core", used / window.as_secs_f64() * 100.0),
        "< 2 %",
    ));
    Ok(())
}

/// `rounds` batches of 20 pods created at once (`make` names them from `prefix`): milliseconds
/// from each batch's start to each pod's Ready.
async fn in_batches(
    api: &Api<Pod>,
    seen: &Arc<Mutex<HashMap<String, Instant>>>,
    prefix: &str,
    rounds: usize,
    make: impl Fn(&str) -> Pod,
) -> Result<Vec<f64>> {
    let mut times = Vec::new();
    for b in 0..rounds {
        let started = Instant::now();
        let names: Vec<String> = (0..20).map(|i| format!("{prefix}-{b}-{i}")).collect();
        futures::future::try_join_all(names.iter().map(|n| {
            let (api, p) = (api.clone(), make(n));
            async move { api.create(&PostParams::default(), &p).await }
        }))
        .await?;
        for n in &names {
            let at = wait_running(seen, n).await?;
            times.push(at.duration_since(started).as_secs_f64() * 1000.0);
        }
        delete_all(api).await?;
    }
    Ok(times)
}

/// `p50 / p99 ms`.
fn p50_p99(samples: &mut [f64]) -> String {
    format!(
        "{:.0} / {:.0} ms",
        percentile(samples, 0.5),
        percentile(samples, 0.99)
    )
}

pub(crate) fn percentile(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() as f64 - 1.0) * q).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Proportional set size: shared pages (the binary, libc) divided among the processes sharing them,
/// so N identical processes add up to what they really cost.
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// (count, RSS, PSS) of every process whose command line contains all of `needles`.
fn rss_of(needles: &[&str]) -> (usize, u64, u64) {
    let mut count = 0;
    let mut total = 0;
    let mut pss = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if needles.iter().all(|n| cmd.contains(n)) {
            count += 1;
            total += rss_kib(pid);
            pss += pss_kib(pid);
        }
    }
    (count, total, pss)
}

/// Watches `api` and records, per pod name, when it was first seen Running and Ready.
pub(crate) async fn running_times(
    api: Api<Pod>,
    seen: Arc<Mutex<HashMap<String, Instant>>>,
) -> Result<()> {
    let mut stream = api
        .watch(&WatchParams::default().timeout(290), "0")
        .await?
        .boxed();
    while let Some(ev) = stream.try_next().await? {
        if let WatchEvent::Added(p) | WatchEvent::Modified(p) = ev {
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready {
                let name = p.metadata.name.unwrap_or_default();
                seen.lock()
                    .expect("lock")
                    .entry(name)
                    .or_insert_with(Instant::now);
            }
        }
    }
    Ok(())
}

pub(crate) async fn wait_running(
    seen: &Arc<Mutex<HashMap<String, Instant>>>,
    name: &str,
) -> Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(t) = seen.lock().expect("lock").get(name).copied() {
            return Ok(t);
        }
        if Instant::now() > deadline {
            bail!("pod {name} did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub(crate) async fn delete_all(api: &Api<Pod>) -> Result<()> {
    let _ = api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    for _ in 0..600 {
        if api.list(&ListParams::default()).await?.items.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("pods were not deleted")
}

/// A bare `crun` create+start of `rootfs` running /kuard, `n` times: the runtime's floor.
fn crun_floor(rootfs: &Path, n: usize) -> Result<Vec<f64>> {
    let dir = tempfile::tempdir()?;
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle)?;
    let status = Command::new("crun")
        .arg("spec")
        .current_dir(&bundle)
        .status()?;
    if !status.success() {
        bail!("crun spec failed");
    }
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    spec["root"] = serde_json::json!({"path": rootfs, "readonly": true});
    spec["process"]["args"] = serde_json::json!(["/kuard"]);
    spec["process"]["terminal"] = serde_json::json!(false);
    std::fs::write(&path, serde_json::to_vec(&spec)?)?;
    let root = dir.path().join("state");
    let mut out = Vec::new();
    for i in 0..n {
        let id = format!("floor-{}-{i}", std::process::id());
        let started = Instant::now();
        let create = Command::new("crun")
            .arg("--root")
            .arg(&root)
            .args(["create", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        let start = Command::new("crun")
            .arg("--root")
            .arg(&root)
            .args(["start", &id])
            .status()?;
        out.push(started.elapsed().as_secs_f64() * 1000.0);
        let _ = Command::new("crun")
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", &id])
            .status();
        if !create.success() || !start.success() {
            bail!("crun create/start failed");
        }
    }
    Ok(out)
}

/// The same pod through `podman kube play` (image loaded locally), `n` times: play until the
/// container reports running, then `kube down`. Podman's state lives in a temporary directory.
fn podman_play(image: &Path, n: usize) -> Result<Vec<f64>> {
    let dir = tempfile::tempdir()?;
    let p = dir.path();
    std::fs::write(
        p.join("containers.conf"),
        format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = \"{0}/events.log\"\nruntime = \"crun\"\ntmp_dir = \"{0}/tmp\"\n[network]\nnetwork_backend = \"netavark\"\nnetwork_config_dir = \"{0}/networks\"\n",
            p.display()
        ),
    )?;
    std::fs::write(
        p.join("storage.conf"),
        format!("[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/runroot\"\n", p.display()),
    )?;
    let yaml = p.join("pod.yaml");
    std::fs::write(&yaml, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kuardbench\nspec:\n  containers:\n  - name: kuard\n    image: gcr.io/kuar-demo/kuard-amd64:1\n    imagePullPolicy: Never\n")?;
    let podman = |args: &[&str]| {
        Command::new("podman")
            .args(args)
            .env("CONTAINERS_CONF", p.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", p.join("storage.conf"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()
    };
    let loaded = podman(&["load", "-i", image.to_str().unwrap_or_default()])?;
    if !loaded.status.success() {
        bail!("podman load failed");
    }
    let yaml = yaml.to_str().unwrap_or_default().to_string();
    let mut out = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let play = podman(&["kube", "play", &yaml])?;
        if !play.status.success() {
            bail!("podman kube play failed");
        }
        loop {
            let running = podman(&[
                "inspect",
                "--format",
                "{{.State.Running}}",
                "kuardbench-kuard",
            ])?;
            if String::from_utf8_lossy(&running.stdout).trim() == "true" {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("podman's pod did not start");
            }
        }
        out.push(started.elapsed().as_secs_f64() * 1000.0);
        podman(&["kube", "down", &yaml])?;
    }
    let _ = podman(&["system", "reset", "-f"]);
    // netavark leaves its firewall chains behind (seen on this machine kind): drop them.
    let _ = Command::new("sh")
        .args(["-c", "iptables-save | grep -v NETAVARK | iptables-restore"])
        .status();
    Ok(out)
}

/// A server and a standalone agent that runs real pods, on temporary directories.
pub(crate) struct AgentCluster {
    pub server: crate::Server,
    pub agent_dir: PathBuf,
    pub bridge: String,
    agent: Proc,
}

impl AgentCluster {
    /// Starts `binary` as a server, then as an agent joined with the token file, with `image`
    /// ready to import. `cidr` keeps concurrent benches' pod networks apart.
    pub(crate) async fn start(binary: &Path, image: &Path, cidr: &str) -> Result<AgentCluster> {
        let (server, _, _) = crate::start(binary, &[]).await?;
        let token_file = server.dir().join("data/server/tls/node-token");
        let agent_dir = server.dir().join("agent-data");
        let images = agent_dir.join("agent").join("images");
        std::fs::create_dir_all(&images)?;
        std::fs::copy(image, images.join("kuard.tar")).context("copying the demo image")?;
        let bridge = format!("kb{}", std::process::id() % 100000);
        let agent = Proc(
            Command::new(binary)
                .args(["agent", "--server", &server.url, "--token-file"])
                .arg(&token_file)
                .args(["--node-name", "bench"])
                .args([
                    "--pod-bridge",
                    &bridge,
                    "--pod-cidr",
                    cidr,
                    "--kubelet-port",
                    &crate::free_port()?.to_string(),
                ])
                .arg("--data-dir")
                .arg(&agent_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        Ok(AgentCluster {
            server,
            agent_dir,
            bridge,
            agent,
        })
    }

    pub(crate) fn agent_pid(&self) -> u32 {
        self.agent.0.id()
    }
}

impl Drop for AgentCluster {
    fn drop(&mut self) {
        let _ = self.agent.0.kill();
        let _ = self.agent.0.wait();
        let _ = Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .stderr(Stdio::null())
            .status();
        // The agent's runtime state is a tmpfs: unmounted, the directory can go.
        runtime::volume::unmount_below(&self.agent_dir);
    }
}

pub async fn measure(binary: &Path, image: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let cluster = AgentCluster::start(binary, image, "10.253.0.0/23").await?;
    let (kubeconfig, agent_dir) = (cluster.server.kubeconfig.clone(), cluster.agent_dir.clone());
    let client = crate::client(&kubeconfig).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    tokio::spawn(running_times(api.clone(), seen.clone()));
    // Warm up: the first pod unpacks the image and creates the bridge.
    tokio::time::sleep(Duration::from_secs(2)).await;
    api.create(&PostParams::default(), &pod("warmup")).await?;
    wait_running(&seen, "warmup").await?;
    delete_all(&api).await?;

    let mut one = Vec::new();
    let mut agent_rss_50 = 0;
    let mut per_pod_kib = 0.0;
    let mut per_pod_pss_kib = 0.0;
    for i in 0..100 {
        let name = format!("seq-{i}");
        let started = Instant::now();
        api.create(&PostParams::default(), &pod(&name)).await?;
        let at = wait_running(&seen, &name).await?;
        one.push(at.duration_since(started).as_secs_f64() * 1000.0);
        if i == 49 {
            agent_rss_50 = rss_kib(cluster.agent_pid());
            let (_, conmon_kib, conmon_pss) =
                rss_of(&["conmon", agent_dir.to_str().unwrap_or_default()]);
            let (_, pause_kib, pause_pss) = rss_of(&["catatonit", "-P"]);
            per_pod_kib = (conmon_kib + pause_kib) as f64 / 50.0;
            per_pod_pss_kib = (conmon_pss + pause_pss) as f64 / 50.0;
        }
    }
    delete_all(&api).await?;
    let mut batch = in_batches(&api, &seen, "par", 5, pod).await?;
    // The floor: the same root filesystem through a bare crun.
    let layers = std::fs::read_dir(agent_dir.join("agent/store/layers"))?
        .flatten()
        .map(|e| e.path())
        .collect::<Vec<PathBuf>>();
    let rootfs = layers.first().context("no unpacked layer")?;
    let mut floor = crun_floor(rootfs, 100)?;
    let mut podman = podman_play(image, 10)?;
    let podman50 = percentile(&mut podman, 0.5);
    let p50 = percentile(&mut one, 0.5);
    let floor50 = percentile(&mut floor, 0.5);
    rows.push(Row(
        "pods: create → Ready, one at a time, p50 / p99 (100 pods)".into(),
        format!("{p50:.0} / {:.0} ms", percentile(&mut one, 0.99)),
        "< 100 / < 300 ms",
    ));
    rows.push(Row(
        "pods: create → Ready, 20 at once, p50 / p99 (5 × 20 pods)".into(),
        p50_p99(&mut batch),
        "",
    ));
    rows.push(Row(
        "bare crun create+start of the same rootfs, p50 / p99".into(),
        format!("{floor50:.1} / {:.1} ms", percentile(&mut floor, 0.99)),
        "floor",
    ));
    rows.push(Row(
        "podman kube play of the same pod → running, p50 / p99 (10)".into(),
        format!("{podman50:.0} / {:.0} ms", percentile(&mut podman, 0.99)),
        "peer",
    ));
    rows.push(Row(
        "pods: p50 as a fraction of podman's".into(),
        format!("{:.2}×", p50 / podman50),
        "< 1×",
    ));
    rows.push(Row(
        "pods: p50 as a multiple of bare crun".into(),
        format!("{:.1}×", p50 / floor50),
        "",
    ));
    rows.push(Row(
        "node agent resident memory with 50 pods".into(),
        format!("{:.1} MB", agent_rss_50 as f64 / 1024.0),
        "< 40 MB",
    ));
    rows.push(Row(
        "per-pod conmon + pause memory, PSS (RSS)".into(),
        format!(
            "{:.2} ({:.2}) MB",
            per_pod_pss_kib / 1024.0,
            per_pod_kib / 1024.0
        ),
        "< 2 MB",
    ));
    delete_all(&api).await?;
    measure_probed(&cluster, &api, rows).await?;
    drop(cluster);
    Ok(())
}
