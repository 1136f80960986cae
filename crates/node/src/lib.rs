//! The node agent (the kubelet's job): registers this machine as a Node with its real capacity,
//! renews the node's Lease every few seconds, and watches only the pods bound to it.
//!
//! Start at [`run`]. [`host`] reads what the machine is (CPUs, memory, kernel, addresses).
//!
//! **Boundary:** the agent is an ordinary API client (kube-rs); it could run on another machine
//! unchanged, and it never touches storage.

pub mod downward;
pub mod env;
pub mod fake;
pub mod host;
pub mod in_cluster;
pub mod join;
pub mod kube_api;
pub mod lifecycle;
pub mod linux;
pub mod log_rotation;
pub mod logs;
pub mod machine;
pub mod pressure;
pub mod probe;
mod probe_net;
pub mod pull_secrets;
pub mod security;
pub mod server;
pub mod spdy;
pub mod status;
pub mod streams;
pub mod support;
pub mod volumes;
pub mod worker;
#[cfg(test)]
mod worker_tests;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::json;

/// The version this agent reports as its kubelet version.
pub const KUBELET_VERSION: &str = "v1.33.0+kubelite";

#[derive(Clone, Debug)]
pub struct Config {
    pub node_name: String,
    /// How often the lease is renewed (Kubernetes: 10 s).
    pub lease_interval: Duration,
    /// The agent's state: images, pods, logs, runtime state.
    pub state_dir: std::path::PathBuf,
    /// The pod network (bridge name unique per agent, subnet).
    pub network: runtime::sandbox::NetworkConfig,
    /// The command that runs a pod's pause process (this binary's `pause`).
    pub pause: Vec<String>,
    /// The preferred OCI runtime binary (`crun`).
    pub oci_runtime: String,
    /// The port of the node's HTTPS server (logs), 10250 by default.
    pub kubelet_port: u16,
    /// The cluster CA; only clients it signed may use the node's server.
    pub ca_pem: String,
    /// What the node keeps for its system daemons (`--system-reserved`): not allocatable to pods.
    pub system_reserved: api::resources::Resources,
    /// Where the agent reaches the API server (pods are told an address that leads there).
    pub api_server: Option<std::net::SocketAddr>,
    /// When container logs are rotated.
    pub log_rotation: log_rotation::Policy,
}

/// Memory the kubelet's default hard eviction threshold (`memory.available<100Mi`) keeps free.
const EVICTION_MEMORY: i64 = 100 << 20;
/// The share of the node's disk the default threshold `nodefs.available<10%` keeps free.
const EVICTION_DISK_PERCENT: i64 = 10;

/// What pods may request of this node: its capacity less the system reservation and the default
/// hard eviction thresholds, as the kubelet computes `status.allocatable`.
fn allocatable(host: &host::Host, reserved: &api::resources::Resources) -> serde_json::Value {
    let milli_cpu = (host.cpus as i64 * 1000 - reserved.milli_cpu).max(0);
    let cpu = if milli_cpu % 1000 == 0 {
        (milli_cpu / 1000).to_string()
    } else {
        format!("{milli_cpu}m")
    };
    let memory = (host.memory_kib as i64 * 1024 - reserved.memory - EVICTION_MEMORY).max(0);
    let disk = host.ephemeral_storage_kib as i64 * 1024;
    let disk = (disk - disk * EVICTION_DISK_PERCENT / 100 - reserved.ephemeral_storage).max(0);
    json!({
        "cpu": cpu,
        "memory": format!("{}Ki", memory / 1024),
        "pods": "110",
        "ephemeral-storage": disk.to_string(),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("preparing the container runtime: {0}")]
    Runtime(#[from] runtime::Error),
    #[error("registering node {node}: {source}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
}

fn node_object(name: &str, host: &host::Host, config: &Config) -> serde_json::Value {
    let mut addresses = vec![json!({"type": "Hostname", "address": host.hostname})];
    if let Some(ip) = &host.internal_ip {
        addresses.insert(0, json!({"type": "InternalIP", "address": ip}));
    }
    let capacity = json!({
        "cpu": host.cpus.to_string(),
        "memory": format!("{}Ki", host.memory_kib),
        "pods": "110",
        "ephemeral-storage": format!("{}Ki", host.ephemeral_storage_kib),
    });
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": host.arch,
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": host.arch,
            },
        },
        "status": {
            "capacity": capacity,
            "allocatable": allocatable(host, &config.system_reserved),
            "addresses": addresses,
            "conditions": node_conditions(pressure::Pressure::default()),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": config.kubelet_port}},
            "nodeInfo": {
                "machineID": host.machine_id,
                "systemUUID": host.machine_id,
                "bootID": host.boot_id,
                "kernelVersion": host.kernel_version,
                "osImage": host.os_image,
                "containerRuntimeVersion": host.runtime_version,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": host.arch,
            },
        },
    })
}

/// Creates the Node (or refreshes its status if it exists) with the host's real figures.
pub async fn register(client: &kube::Client, config: &Config) -> Result<(), Error> {
    register_as(client, config, &host::Host::read()).await
}

/// Creates the Node (or refreshes its status if it exists) with the figures of `host`.
pub async fn register_as(
    client: &kube::Client,
    config: &Config,
    host: &host::Host,
) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client.clone());
    let object = node_object(&config.node_name, host, config);
    let err = |source| Error::Register {
        node: config.node_name.clone(),
        source,
    };
    let node: Node =
        serde_json::from_value(object.clone()).map_err(|e| err(kube::Error::SerdeError(e)))?;
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let labels = json!({"metadata": {"labels": object["metadata"]["labels"]}});
            api.patch(
                &config.node_name,
                &PatchParams::default(),
                &Patch::Merge(&labels),
            )
            .await
            .map_err(err)?;
        }
        Err(e) => return Err(err(e)),
    }
    // Status is a subresource: the create above ignored it.
    let status = json!({"status": object["status"]});
    api.patch_status(
        &config.node_name,
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .map_err(err)?;
    tracing::info!(node = %config.node_name, cpus = host.cpus, memory_kib = host.memory_kib, "node registered");
    Ok(())
}

/// Renews the node's lease in `kube-node-lease` every `interval`, forever.
pub async fn heartbeat(client: kube::Client, config: Config) {
    let nodes: Api<Node> = Api::all(client.clone());
    let api: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let name = config.node_name.clone();
    let mut posted = None;
    loop {
        let now = MicroTime(Timestamp::now());
        let patch = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now},
        });
        let result = match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Err(kube::Error::Api(status)) if status.code == 404 => {
                let lease: Result<Lease, _> = serde_json::from_value(patch.clone());
                match lease {
                    Ok(lease) => api.create(&PostParams::default(), &lease).await.map(|_| ()),
                    Err(e) => Err(kube::Error::SerdeError(e)),
                }
            }
            other => other.map(|_| ()),
        };
        if let Err(err) = result {
            tracing::warn!(%err, node = %name, "renewing the node lease failed");
        }
        // The host's pressures as they are now; and if the control plane marked the node lost
        // while we were away, say we are back.
        let now = pressure::pressure(&pressure::Signals::read(&config.state_dir));
        match post_conditions(&nodes, &name, now, posted).await {
            Ok(p) => posted = Some(p),
            Err(err) => tracing::debug!(%err, node = %name, "posting the node's conditions failed"),
        }
        tokio::time::sleep(config.lease_interval).await;
    }
}

/// The node's four conditions: the pressures it is under, and Ready.
fn node_conditions(p: pressure::Pressure) -> Vec<serde_json::Value> {
    let now = json!(Time(Timestamp::now()));
    let mut conditions = pressure::conditions(p, &now);
    conditions.push(json!({
        "type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
        "lastHeartbeatTime": now, "lastTransitionTime": now,
    }));
    conditions
}

/// Posts the node's conditions when the host's pressures changed since `last`, or Ready again
/// when the node lifecycle controller marked the node unknown; returns what was posted.
async fn post_conditions(
    nodes: &Api<Node>,
    name: &str,
    now: pressure::Pressure,
    last: Option<pressure::Pressure>,
) -> Result<pressure::Pressure, kube::Error> {
    let node = nodes.get_status(name).await?;
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone());
    if ready.as_deref() == Some("True") && last == Some(now) {
        return Ok(now);
    }
    let patch = json!({"status": {"conditions": node_conditions(now)}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    Ok(now)
}

/// What every pod worker of this node shares.
pub struct PodWorkers {
    pub client: kube::Client,
    pub node_name: String,
    pub host_ip: Option<String>,
    pub machine: std::sync::Arc<linux::LinuxMachine>,
    pub api: std::sync::Arc<kube_api::KubeApi>,
}

/// Watches the pods bound to this node and keeps one worker per pod.
pub async fn run_pods(node: PodWorkers) {
    use std::collections::HashMap;
    use tokio::sync::watch;
    use tracing::Instrument;
    let api: Api<Pod> = Api::all(node.client.clone());
    let selector = format!("spec.nodeName={}", node.node_name);
    let stream = watcher(api, watcher::Config::default().fields(&selector)).default_backoff();
    futures::pin_mut!(stream);
    let mut workers: HashMap<String, watch::Sender<Pod>> = HashMap::new();
    // The pods of the list under way, and when it began (for housekeeping after it).
    let mut listing: (std::collections::HashSet<String>, std::time::SystemTime) =
        (Default::default(), std::time::SystemTime::now());
    let dispatch = |pod: Pod, workers: &mut HashMap<String, watch::Sender<Pod>>| {
        let uid = pod.uid().unwrap_or_default();
        workers.retain(|_, tx| !tx.is_closed());
        match workers.get(&uid) {
            Some(tx) => {
                let _ = tx.send(pod);
            }
            None => {
                let span = tracing::info_span!(
                    "pod",
                    pod = %format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
                );
                let (tx, rx) = watch::channel(pod);
                let w = worker::PodWorker::new(
                    node.machine.clone(),
                    node.api.clone(),
                    node.host_ip.clone(),
                );
                tokio::spawn(worker::run(w, rx).instrument(span));
                workers.insert(uid, tx);
            }
        }
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(watcher::Event::Init) => {
                listing = (Default::default(), std::time::SystemTime::now());
            }
            Ok(watcher::Event::InitApply(pod)) => {
                listing.0.insert(pod.uid().unwrap_or_default());
                dispatch(pod, &mut workers)
            }
            Ok(watcher::Event::InitDone) => {
                // What runs here and no bound pod accounts for (force-deleted while the agent
                // was away, or never recorded) goes.
                workers.retain(|_, tx| !tx.is_closed());
                let mut known = std::mem::take(&mut listing.0);
                known.extend(workers.keys().cloned());
                let machine = node.machine.clone();
                let listed = listing.1;
                tokio::spawn(async move { machine.clean_up_orphans(known, listed).await });
            }
            Ok(watcher::Event::Apply(pod)) => dispatch(pod, &mut workers),
            Ok(watcher::Event::Delete(mut pod)) => {
                // Removed without our clean-up (e.g. forced): tear down what runs.
                if pod.metadata.deletion_timestamp.is_none() {
                    pod.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
                    pod.metadata.deletion_grace_period_seconds = Some(0);
                }
                dispatch(pod, &mut workers);
            }
            Err(err) => tracing::debug!(%err, "pod watch"),
        }
    }
}

/// Imports every image archive in `dir` not imported yet (air-gapped installs and
/// `kubelite images import` drop archives there); `seen` remembers (name, size, mtime).
fn import_images(
    images: &runtime::image::ImageStore,
    dir: &std::path::Path,
    seen: &mut std::collections::HashSet<(String, u64, u64)>,
) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || path.extension().is_some_and(|e| e == "partial") {
            continue;
        }
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let key = (
            entry.file_name().to_string_lossy().into_owned(),
            meta.len(),
            mtime,
        );
        if !seen.insert(key) {
            continue;
        }
        match images.import_archive(&path) {
            Ok(imported) => {
                tracing::info!(archive = %path.display(), images = imported.len(), "imported images")
            }
            Err(err) => {
                tracing::warn!(archive = %path.display(), %err, "importing an image archive failed")
            }
        }
    }
}

/// Imports the archives in `dir` now and whenever one is written or moved there, until the
/// process ends. The folder is watched with inotify: nothing polls, and nothing blocks shutdown.
async fn follow_imports(
    images: std::sync::Arc<runtime::image::ImageStore>,
    dir: std::path::PathBuf,
) {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
    use notify::Watcher;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // An archive is complete when its writer closes it, or when it is renamed into the folder
    // (`kubelite images import` writes `NAME.partial`, then renames it).
    let handler = move |event: notify::Result<notify::Event>| {
        let complete = event.is_ok_and(|e| {
            matches!(
                e.kind,
                EventKind::Access(AccessKind::Close(AccessMode::Write))
                    | EventKind::Modify(ModifyKind::Name(_))
            )
        });
        if complete {
            let _ = tx.send(());
        }
    };
    if let Err(err) = std::fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), %err, "creating the image import folder failed");
    }
    let watcher = notify::recommended_watcher(handler).and_then(|mut w| {
        w.watch(&dir, notify::RecursiveMode::NonRecursive)
            .map(|()| w)
    });
    if let Err(err) = &watcher {
        tracing::warn!(dir = %dir.display(), %err, "watching the image import folder failed; importing only at start");
    }
    let mut seen = std::collections::HashSet::new();
    loop {
        let (store, folder) = (images.clone(), dir.clone());
        seen = match tokio::task::spawn_blocking(move || {
            import_images(&store, &folder, &mut seen);
            seen
        })
        .await
        {
            Ok(seen) => seen,
            Err(_) => return,
        };
        if watcher.is_err() || rx.recv().await.is_none() {
            return;
        }
        // Several events for one archive make one scan.
        while rx.try_recv().is_ok() {}
    }
}

/// Registers the node, then heartbeats and follows its pods until the process ends.
pub async fn run(client: kube::Client, config: Config) -> Result<(), Error> {
    let mut delay = Duration::from_millis(100);
    loop {
        match register(&client, &config).await {
            Ok(()) => break,
            Err(err) => {
                tracing::warn!(%err, "node registration failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    tokio::spawn(heartbeat(client.clone(), config.clone()));
    for change in runtime::cgroups::prepare()? {
        tracing::warn!("{change}");
    }
    // The runtime's state (containers, exit codes, sockets) lives on a tmpfs: it describes
    // processes that a reboot ends, and is written for every container start.
    let run_dir = config.state_dir.join("run");
    runtime::volume::mount_private_tmpfs(&run_dir)?;
    let rt = runtime::container::Runtime::new(&run_dir, &config.oci_runtime)?;
    let images = std::sync::Arc::new(runtime::image::ImageStore::open(
        &config.state_dir.join("store"),
    )?);
    tokio::spawn(follow_imports(
        images.clone(),
        config.state_dir.join("images"),
    ));
    let recorder = kube::runtime::events::Recorder::new(
        client.clone(),
        kube::runtime::events::Reporter {
            controller: "kubelet".into(),
            instance: Some(config.node_name.clone()),
        },
    );
    tokio::spawn(log_rotation::run(
        config.state_dir.clone(),
        rt.exits.clone(),
        config.log_rotation,
    ));
    let server = std::sync::Arc::new(server::NodeServer {
        logs_dir: linux::logs_dir(&config.state_dir),
        exits_dir: rt.exits.clone(),
        streams: std::sync::Arc::new(streams::Streams {
            state_dir: config.state_dir.clone(),
            runtime: rt.clone(),
        }),
    });
    let node = PodWorkers {
        client: client.clone(),
        node_name: config.node_name.clone(),
        host_ip: host::Host::read().internal_ip,
        machine: std::sync::Arc::new(linux::LinuxMachine {
            state_dir: config.state_dir.clone(),
            runtime: rt,
            images,
            network: config.network.clone(),
            pause: config.pause.clone(),
            api_access: config
                .api_server
                .and_then(|s| in_cluster::ApiAccess::new(s, &config.network.subnet)),
            relay: in_cluster::Relay::default(),
            makers: linux::makers(),
            host_ip: host::Host::read().internal_ip,
        }),
        api: std::sync::Arc::new(kube_api::KubeApi { client, recorder }),
    };
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], config.kubelet_port));
    let (name, ca) = (config.node_name.clone(), config.ca_pem.clone());
    tokio::spawn(async move {
        if let Err(err) = server::serve(addr, name, ca, server).await {
            tracing::error!(%err, "the node server stopped");
        }
    });
    run_pods(node).await;
    Ok(())
}
