//! Measures the API server as the issue asks and prints a table.
//!
//! Run with: `cargo run --release -p bench -- [--pods 10000] [--kubelite target/release/kubelite]`
//!
//! For each datastore (SQLite, then a real etcd started here) it starts the real `kubelite` binary
//! and reports: start → `/readyz` ok; pod creates per second with 1 and 32 concurrent clients; the
//! time to list N pods; watch delivery latency with 100 watchers; resident memory idle and with N
//! pods. On etcd it also measures etcd's own raw put rate in the same run, as the peer figure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams, WatchEvent, WatchParams};

mod cli;
mod pods;
mod scheduler;
mod streams;

pub(crate) struct Server {
    child: Child,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    url: String,
}

impl Server {
    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("bad VmRSS")?
        .parse()?)
}

pub(crate) async fn client(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// Starts kubelite and returns it with the time from spawn to the first `/readyz` "ok".
pub(crate) async fn start(
    binary: &Path,
    extra: &[String],
) -> Result<(Server, kube::Client, Duration)> {
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    let port = free_port()?;
    let started = Instant::now();
    let child = Command::new(binary)
        .args([
            "server",
            "--disable-agent",
            "--https-listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--write-kubeconfig")
        .arg(&kubeconfig)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let server = Server {
        child,
        dir,
        kubeconfig,
        url: format!("https://127.0.0.1:{port}"),
    };
    loop {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("kubelite did not become ready");
        }
        if server.kubeconfig.exists() {
            if let Ok(c) = client(&server.kubeconfig).await {
                let req = http::Request::get("/readyz").body(Vec::new())?;
                if let Ok(body) = c.request_text(req).await {
                    if body == "ok" {
                        return Ok((server, c, started.elapsed()));
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "kuard", "image": "gcr.io/kuar-demo/kuard-amd64:1"}]}
    }))
    .expect("valid pod")
}

async fn namespace(c: &kube::Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
    Api::<Namespace>::all(c.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

/// Creates `total` pods in `ns` with `clients` concurrent connections; returns creates per second.
async fn create_rate(
    kubeconfig: &Path,
    ns: &str,
    prefix: &str,
    total: usize,
    clients: usize,
) -> Result<f64> {
    let mut apis = Vec::new();
    for _ in 0..clients {
        // One client (one connection pool) per worker, like independent clients.
        apis.push(Api::<Pod>::namespaced(client(kubeconfig).await?, ns));
    }
    let started = Instant::now();
    let per = total / clients;
    let tasks: Vec<_> = apis
        .into_iter()
        .enumerate()
        .map(|(w, api)| {
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                for i in 0..per {
                    api.create(&PostParams::default(), &pod(&format!("{prefix}-{w}-{i}")))
                        .await?;
                }
                Ok::<_, kube::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((per * clients) as f64 / started.elapsed().as_secs_f64())
}

async fn list_ms(c: &kube::Client, ns: &str, expect: usize) -> Result<f64> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let req = http::Request::get(format!("/api/v1/namespaces/{ns}/pods")).body(Vec::new())?;
        let body = c.request_text(req).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let v: serde_json::Value = serde_json::from_str(&body)?;
        let n = v["items"].as_array().map_or(0, Vec::len);
        if n != expect {
            bail!("listed {n} pods, expected {expect}");
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Watch latency: 100 watchers on one namespace; pods created one by one; time from the create
/// request to each watcher's ADDED event. Returns (p50, p99) in ms.
async fn watch_latency(
    c: &kube::Client,
    ns: &str,
    watchers: usize,
    pods: usize,
) -> Result<(f64, f64)> {
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let samples: Arc<Mutex<Vec<f64>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let api = Api::<Pod>::namespaced(c.clone(), ns);
        let stream = api.watch(&WatchParams::default().timeout(120), "0").await?;
        let sent = sent.clone();
        let samples = samples.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = stream.boxed();
            let mut seen = 0;
            while let Ok(Some(ev)) = stream.try_next().await {
                if let WatchEvent::Added(p) = ev {
                    let name = p.metadata.name.unwrap_or_default();
                    let at = sent.lock().expect("lock").get(&name).copied();
                    if let Some(at) = at {
                        samples
                            .lock()
                            .expect("lock")
                            .push(at.elapsed().as_secs_f64() * 1000.0);
                    }
                    seen += 1;
                    if seen == pods {
                        return;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let api = Api::<Pod>::namespaced(c.clone(), ns);
    for i in 0..pods {
        let name = format!("w-{i}");
        sent.lock()
            .expect("lock")
            .insert(name.clone(), Instant::now());
        api.create(&PostParams::default(), &pod(&name)).await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    let mut s = samples.lock().expect("lock").clone();
    if s.is_empty() {
        bail!("no watch events arrived");
    }
    s.sort_by(f64::total_cmp);
    let p = |q: f64| s[((s.len() as f64 - 1.0) * q) as usize];
    Ok((p(0.5), p(0.99)))
}

async fn etcd_put_rate(endpoint: &str, total: usize, clients: usize) -> Result<f64> {
    let client = etcd_client::Client::connect([endpoint], None).await?;
    let started = Instant::now();
    let per = total / clients;
    let tasks: Vec<_> = (0..clients)
        .map(|w| {
            let mut c = client.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    c.put(format!("/raw/{w}/{i}"), vec![b'x'; 2048], None)
                        .await?;
                }
                Ok::<_, etcd_client::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((per * clients) as f64 / started.elapsed().as_secs_f64())
}

pub(crate) struct Row(String, String, &'static str);

async fn measure(
    binary: &Path,
    label: &str,
    extra: &[String],
    pods: usize,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let (server, c, ready) = start(binary, extra).await?;
    let pid = server.child.id();
    rows.push(Row(
        format!("{label}: start → /readyz ok"),
        format!("{:.0} ms", ready.as_secs_f64() * 1000.0),
        "< 300 ms",
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    rows.push(Row(
        format!("{label}: resident memory, idle"),
        format!("{:.1} MB", rss_kib(pid)? as f64 / 1024.0),
        "",
    ));
    namespace(&c, "one").await?;
    namespace(&c, "bench").await?;
    namespace(&c, "watch").await?;
    let one = create_rate(&server.kubeconfig, "one", "p", 1000.min(pods), 1).await?;
    rows.push(Row(
        format!("{label}: pod creates/s, 1 client"),
        format!("{one:.0}"),
        "",
    ));
    let many = create_rate(&server.kubeconfig, "bench", "p", pods, 32).await?;
    rows.push(Row(
        format!("{label}: pod creates/s, 32 clients"),
        format!("{many:.0}"),
        "≥ 3,000",
    ));
    let list = list_ms(&c, "bench", pods / 32 * 32).await?;
    rows.push(Row(
        format!("{label}: list {} pods (median of 5)", pods / 32 * 32),
        format!("{list:.0} ms"),
        "< 100 ms",
    ));
    let (p50, p99) = watch_latency(&c, "watch", 100, 100).await?;
    rows.push(Row(
        format!("{label}: watch delivery, 100 watchers, p50 / p99"),
        format!("{p50:.1} / {p99:.1} ms"),
        "",
    ));
    rows.push(Row(
        format!(
            "{label}: resident memory with {} pods",
            pods / 32 * 32 + 1000.min(pods) + 100
        ),
        format!("{:.1} MB", rss_kib(pid)? as f64 / 1024.0),
        "< 100 MB",
    ));
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let mode = match args.peek().map(String::as_str) {
        Some(m @ ("pods" | "streams" | "scheduler" | "cli")) => m.to_string(),
        _ => "api".to_string(),
    };
    if mode != "api" {
        args.next();
    }
    let mut pods = 10_000usize;
    let mut binary = PathBuf::from("target/release/kubelite");
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pods" => pods = args.next().context("--pods N")?.parse()?,
            "--kubelite" => binary = PathBuf::from(args.next().context("--kubelite PATH")?),
            other => bail!("unknown argument {other}"),
        }
    }
    let mut rows = Vec::new();
    let image = Path::new("target/images/kuard-amd64-1.tar");
    match mode.as_str() {
        "pods" => pods::measure(&binary, image, &mut rows).await?,
        "streams" => streams::measure(&binary, image, &mut rows).await?,
        "scheduler" => scheduler::measure(&binary, &mut rows).await?,
        "cli" => cli::measure(&binary, &mut rows).await?,
        _ => {
            api_measures(&binary, pods, &mut rows).await?;
        }
    }
    print_table(rows);
    Ok(())
}

/// The API server on SQLite, then on a real etcd with etcd's own put rate beside it.
async fn api_measures(binary: &Path, pods: usize, rows: &mut Vec<Row>) -> Result<()> {
    measure(binary, "sqlite", &[], pods, rows).await?;
    let etcd =
        store::conformance::EtcdServer::start().context("starting etcd (install etcd-server)")?;
    let extra = vec![
        "--datastore".to_string(),
        "etcd".to_string(),
        "--etcd-endpoints".to_string(),
        etcd.endpoint.clone(),
    ];
    measure(binary, "etcd", &extra, pods, rows).await?;
    let raw1 = etcd_put_rate(&etcd.endpoint, 1000, 1).await?;
    rows.push(Row(
        "etcd itself: raw 2 KiB puts/s, 1 client".into(),
        format!("{raw1:.0}"),
        "peer",
    ));
    let raw32 = etcd_put_rate(&etcd.endpoint, pods, 32).await?;
    rows.push(Row(
        "etcd itself: raw 2 KiB puts/s, 32 clients".into(),
        format!("{raw32:.0}"),
        "peer",
    ));
    Ok(())
}

fn print_table(rows: Vec<Row>) {
    let w = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(10);
    println!("| {:w$} | {:>18} | {:>16} |", "measure", "result", "target");
    println!(
        "|{}|{}|{}|",
        "-".repeat(w + 2),
        "-".repeat(20),
        "-".repeat(18)
    );
    for Row(m, r, t) in rows {
        println!("| {m:w$} | {r:>18} | {t:>16} |");
    }
}
