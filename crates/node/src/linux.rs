//! The [`Machine`] pod workers drive on this host: sandboxes with CNI networking, the OCI image
//! store, containers run by crun under conmon, probes made inside the pod's network namespace.
//! Every call that can block runs on the blocking pool under a timeout.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use runtime::container::Runtime;
use runtime::image::ImageStore;
use runtime::oci;
use runtime::sandbox::{self, NetworkConfig, Sandbox};

use crate::in_cluster::{ApiAccess, Relay};
use crate::machine::{
    Exit, Instance, Machine, MachineError, MachineResult, PodSandbox, ProbeOutcome, ProbeTarget,
    Record, RunState, Signal,
};
use crate::security;
use crate::volumes::{Mount, Source};

/// How long a runtime query or signal may take (the OCI runtime's own commands time out first).
const CALL_TIMEOUT: Duration = Duration::from_secs(90);
/// How long making a sandbox, unpacking an image or pulling one may take.
const LONG_CALL_TIMEOUT: Duration = Duration::from_secs(600);

pub struct LinuxMachine {
    pub state_dir: PathBuf,
    pub runtime: Runtime,
    pub images: Arc<ImageStore>,
    pub network: NetworkConfig,
    /// The command that runs a pod's pause process.
    pub pause: Vec<String>,
    /// How pods reach the API server.
    pub api_access: Option<ApiAccess>,
    /// The node's address: a host-network pod's IP.
    pub host_ip: Option<String>,
    pub relay: Relay,
    /// Sandboxes being made at once. Making one is CPU-bound (the pause process, the CNI
    /// plugins); with more in flight than cores, every pod of a burst is ready only at the end of
    /// it, where with one per core the pods get ready in turn, the first ones early.
    pub makers: tokio::sync::Semaphore,
}

/// How long a pod waits for its turn to have its sandbox made.
const MAKER_WAIT: Duration = Duration::from_secs(5);

/// How many sandboxes the node makes at once: one per core.
pub fn makers() -> tokio::sync::Semaphore {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    tokio::sync::Semaphore::new(cores)
}

/// Runs blocking `work` on the blocking pool, giving up after `limit`.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &str,
    limit: Duration,
    work: impl FnOnce() -> MachineResult<T> + Send + 'static,
) -> MachineResult<T> {
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(MachineError::Other(format!("{what}: {join}"))),
        Err(_) => Err(MachineError::TimedOut {
            what: what.into(),
            after: limit,
        }),
    }
}

fn uid(pod: &Pod) -> String {
    pod.uid().unwrap_or_default()
}

impl LinuxMachine {
    fn pod_dir(&self, pod: &Pod) -> PathBuf {
        self.state_dir.join("pods").join(uid(pod))
    }

    /// `<logs>/<namespace>_<name>_<uid>`, as the kubelet lays out `/var/log/pods`.
    fn pod_logs_dir(&self, pod: &Pod) -> PathBuf {
        logs_dir(&self.state_dir).join(format!(
            "{}_{}_{}",
            pod.namespace().unwrap_or_default(),
            pod.name_any(),
            uid(pod)
        ))
    }

    fn log_path(&self, pod: &Pod, container: &str, restart: i32) -> PathBuf {
        self.pod_logs_dir(pod)
            .join(container)
            .join(format!("{restart}.log"))
    }

    fn sandbox_of(&self, pod: &Pod) -> Option<Sandbox> {
        pod_sandbox(&self.state_dir, &uid(pod))
    }

    /// The pod's running sandbox, or a new one in its own cgroup.
    async fn make_sandbox(&self, pod: &Pod) -> MachineResult<PodSandbox> {
        if let Some(s) = self.sandbox_of(pod).filter(Sandbox::alive) {
            return Ok(PodSandbox { ip: s.ip });
        }
        let dir = self.pod_dir(pod).join("sandbox");
        let (net, id, host, pause) = (
            self.network.clone(),
            uid(pod),
            pod.name_any(),
            self.pause.clone(),
        );
        let cgroup = cgroup_parent(pod);
        let sharing = sharing(pod);
        let host_ip = self.host_ip.clone();
        // A sandbox that hangs must not hold up every other: past a while, go without a turn.
        let _turn = tokio::time::timeout(MAKER_WAIT, self.makers.acquire()).await;
        let made = blocking("creating the pod sandbox", LONG_CALL_TIMEOUT, move || {
            let s = match (sharing.host_network, host_ip) {
                (false, _) => sandbox::create(&net, &id, &host, &dir, &pause, sharing)?,
                (true, Some(ip)) => {
                    sandbox::create_on_host_network(&id, &ip, &dir, &pause, sharing)?
                }
                (true, None) => {
                    return Err(MachineError::Other(
                        "the node has no address for a host-network pod".into(),
                    ))
                }
            };
            // The pod's cgroup holds its pause process as well as its containers.
            if let Err(err) = runtime::cgroups::enter(&cgroup, s.pause_pid) {
                tracing::warn!(%err, "moving the pause process into the pod cgroup failed");
            }
            Ok(s)
        })
        .await?;
        Ok(PodSandbox { ip: made.ip })
    }
}

/// Which of the node's namespaces the pod asks to use.
fn sharing(pod: &Pod) -> sandbox::Sharing {
    let spec = pod.spec.as_ref();
    let flag = |f: fn(&k8s_openapi::api::core::v1::PodSpec) -> Option<bool>| {
        spec.and_then(f) == Some(true)
    };
    sandbox::Sharing {
        host_network: flag(|s| s.host_network),
        host_pid: flag(|s| s.host_pid),
        host_ipc: flag(|s| s.host_ipc),
        shared_pid: flag(|s| s.share_process_namespace),
    }
}

/// The cgroup that holds a pod's pause process and its containers.
fn cgroup_parent(pod: &Pod) -> String {
    format!("/kubelite/pod{}", uid(pod))
}

/// The cgroup of container instance `id`, where its limits (and OOM-kill counter) are.
fn container_cgroup(pod: &Pod, id: &str) -> String {
    format!("{}/{id}", cgroup_parent(pod))
}

impl Machine for LinuxMachine {
    fn runtime_name(&self) -> String {
        self.runtime
            .oci_runtime
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("crun")
            .to_string()
    }

    fn service_env(&self) -> Vec<(String, String)> {
        self.api_access
            .as_ref()
            .map(ApiAccess::env)
            .unwrap_or_default()
    }

    async fn sandbox(&self, pod: &Pod) -> MachineResult<PodSandbox> {
        let made = self.make_sandbox(pod).await;
        // The bridge (and so the gateway address) exists once a sandbox does.
        if let Some((listen, server)) = self.api_access.as_ref().and_then(|a| a.relay) {
            if made.is_ok() {
                self.relay.ensure(listen, server);
            }
        }
        made
    }

    async fn has_image(&self, reference: &str) -> bool {
        let (images, wanted) = (self.images.clone(), reference.to_string());
        blocking("resolving an image", LONG_CALL_TIMEOUT, move || {
            Ok(images.resolve(&wanted)?)
        })
        .await
        .is_ok()
    }

    async fn pull(
        &self,
        reference: &str,
        credentials: &[runtime::image::pull::Credential],
    ) -> MachineResult<String> {
        let started = Instant::now();
        let tmp = self.state_dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| runtime::Error::io(&tmp, e))?;
        let archive = tmp.join(format!(
            "pull-{}-{}.tar",
            std::process::id(),
            started.elapsed().as_nanos()
        ));
        let result = async {
            let download = runtime::image::pull::pull_to_archive(reference, &archive, credentials);
            tokio::time::timeout(LONG_CALL_TIMEOUT, download)
                .await
                .map_err(|_| MachineError::TimedOut {
                    what: "pulling".into(),
                    after: LONG_CALL_TIMEOUT,
                })??;
            let (images, path) = (self.images.clone(), archive.clone());
            blocking("importing an image", LONG_CALL_TIMEOUT, move || {
                Ok(images.import_archive(&path)?)
            })
            .await
        }
        .await;
        let _ = std::fs::remove_file(&archive);
        let size: u64 = result?.iter().map(|i| i.size).sum();
        let secs = started.elapsed().as_secs_f64();
        Ok(format!("Successfully pulled image \"{reference}\" in {secs:.3}s ({secs:.3}s including waiting). Image size: {size} bytes."))
    }

    async fn volume(&self, pod: &Pod, name: &str, source: &Source) -> MachineResult<PathBuf> {
        let dir = self.pod_dir(pod).join("volumes").join(name);
        let source = source.clone();
        blocking("making a volume", CALL_TIMEOUT, move || {
            make_volume(&dir, &source)
        })
        .await
    }

    async fn start(
        &self,
        pod: &Pod,
        c: &Container,
        id: &str,
        restart: i32,
        mounts: &[Mount],
    ) -> MachineResult<String> {
        let sb = self
            .sandbox_of(pod)
            .ok_or_else(|| MachineError::Other("the pod sandbox is gone".into()))?;
        let bundle = self.pod_dir(pod).join(id);
        let log_path = self.log_path(pod, &c.name, restart);
        let (rt, images, c, id) = (
            self.runtime.clone(),
            self.images.clone(),
            c.clone(),
            id.to_string(),
        );
        let cgroup = container_cgroup(pod, &id);
        let mounts: Vec<(String, PathBuf, bool)> = mounts
            .iter()
            .map(|m| (m.container_path.clone(), m.host_path.clone(), m.read_only))
            .collect();
        let (plan, pod) = (security::plan(pod, &c), pod.clone());
        let message_path = c
            .termination_message_path
            .clone()
            .unwrap_or_else(|| "/dev/termination-log".into());
        let started = blocking("starting the container", LONG_CALL_TIMEOUT, move || {
            // An instance made before the agent died and never recorded: nobody tracks it, and
            // its name is this one's. It goes, so that this start does not fail for good.
            if rt.root.join(&id).exists() {
                tracing::info!(%id, "removing an unrecorded container of the same name");
                let _ = rt.delete(&id);
                oci::remove_rootfs(&bundle)?;
            }
            let image = images.resolve(c.image.as_deref().unwrap_or(""))?;
            let rootfs = oci::mount_rootfs(&image.layers, &bundle)?;
            // The container writes its termination message to a file the node reads after.
            let message_file = bundle.join(TERMINATION_LOG);
            std::fs::write(&message_file, b"").map_err(|e| runtime::Error::io(&message_file, e))?;
            std::fs::set_permissions(&message_file, std::fs::Permissions::from_mode(0o666))
                .map_err(|e| runtime::Error::io(&message_file, e))?;
            let mut mounts: Vec<(String, PathBuf, bool)> = mounts;
            mounts.push((message_path, message_file, false));
            let user = image.config.user.clone().unwrap_or_default();
            let resolved = oci::resolve_user(&rootfs, &user);
            let security = security::finish(&plan, &pod, &c.name, &user, resolved)
                .map_err(MachineError::Config)?;
            let mut spec = bundle_spec(&c, &image.config, &rootfs, &sb, cgroup);
            spec.security = security;
            spec.mounts = mounts;
            oci::write_config(&bundle, &spec)?;
            let stdin = runtime::container::Stdin::from_spec(
                c.stdin.unwrap_or(false),
                c.stdin_once.unwrap_or(false),
            );
            let made = rt
                .create(&id, &c.name, &bundle, &log_path, stdin)
                .and_then(|_| rt.start(&id));
            if let Err(err) = made {
                let _ = rt.delete(&id);
                return Err(err.into());
            }
            Ok(image.id)
        })
        .await?;
        Ok(started)
    }

    fn has_exited(&self, id: &str) -> bool {
        // Without its conmon a container's end is never written down: ask the runtime.
        self.runtime.has_exited(id) || !self.runtime.monitor_alive(id)
    }

    async fn state(&self, id: &str) -> MachineResult<Option<RunState>> {
        let (rt, id) = (self.runtime.clone(), id.to_string());
        let state = blocking("asking the container's state", CALL_TIMEOUT, move || {
            Ok(rt.state(&id)?)
        })
        .await?;
        Ok(state.map(|s| match s.status.as_str() {
            "running" => RunState::Running,
            "created" => RunState::Created,
            _ => RunState::Stopped,
        }))
    }

    async fn exit(&self, pod: &Pod, c: &Container, inst: &Instance) -> Exit {
        let bundle = self.pod_dir(pod).join(&inst.id);
        // conmon's marker can miss an OOM kill that races the exit; the kernel's counter in the
        // container's cgroup (where its limit is) cannot. The cgroup lasts until `remove`.
        let cgroup = container_cgroup(pod, &inst.id);
        let log = self.log_path(pod, &c.name, inst.restart);
        let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
        let (rt, id) = (self.runtime.clone(), inst.id.clone());
        blocking("reading the exit", CALL_TIMEOUT, move || {
            let code = rt.exit_code(&id);
            let failed = code.is_some_and(|c| c != 0);
            Ok(Exit {
                code,
                oom_killed: Runtime::oom_killed(&bundle)
                    || runtime::cgroups::oom_kills(&cgroup).is_some_and(|n| n > 0),
                message: termination_message(&bundle, &log, fallback && failed),
            })
        })
        .await
        .unwrap_or_default()
    }

    async fn exec(
        &self,
        id: &str,
        command: Vec<String>,
        timeout: Duration,
    ) -> MachineResult<(i32, String)> {
        crate::probe::run_command(&self.runtime, id, command, timeout).await
    }

    async fn kill(&self, id: &str, signal: Signal) -> MachineResult<()> {
        let (rt, id) = (self.runtime.clone(), id.to_string());
        let name = match signal {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
        };
        blocking("signalling the container", CALL_TIMEOUT, move || {
            Ok(rt.kill(&id, name)?)
        })
        .await
    }

    async fn remove(&self, id: &str) {
        let (rt, id) = (self.runtime.clone(), id.to_string());
        let removed = blocking("removing the container", CALL_TIMEOUT, move || {
            Ok(rt.delete(&id)?)
        })
        .await;
        if let Err(err) = removed {
            tracing::warn!(%err, "removing a container failed");
        }
    }

    async fn teardown(&self, pod: &Pod) {
        let dir = self.pod_dir(pod);
        let (rt, net, cgroup) = (
            self.runtime.clone(),
            self.network.clone(),
            cgroup_parent(pod),
        );
        // The pod's logs go with it, as the kubelet removes them with its containers.
        let logs = self.pod_logs_dir(pod);
        let done = blocking("tearing down the pod", LONG_CALL_TIMEOUT, move || {
            teardown_dir(&rt, &net, &dir, &cgroup);
            let _ = std::fs::remove_dir_all(logs);
            Ok(())
        })
        .await;
        if let Err(err) = done {
            tracing::warn!(%err, "tearing down a pod failed");
        }
    }

    async fn probe(&self, target: ProbeTarget<'_>, probe: &Probe) -> ProbeOutcome {
        let netns = self.sandbox_of(target.pod).map(|s| s.netns_path());
        crate::probe::run(&self.runtime, netns, target, probe).await
    }

    fn save(&self, pod: &Pod, container: &str, record: &Record) {
        let path = self.pod_dir(pod).join(format!("{container}.json"));
        if let Ok(bytes) = serde_json::to_vec(record) {
            let tmp = path.with_extension("json.tmp");
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    }

    fn load(&self, pod: &Pod, container: &str) -> Option<Record> {
        load_record(&self.state_dir, &uid(pod), container)
    }
}

/// The most of a termination message that is kept (the kubelet's limit).
const MESSAGE_LIMIT: usize = 4096;
/// What a failed container's log gives when it left no message (`FallbackToLogsOnError`).
const FALLBACK_LINES: usize = 80;
const FALLBACK_BYTES: usize = 2048;

/// What the container wrote to its termination-message file, or, when `from_log` and it wrote
/// nothing, the end of its log.
fn termination_message(bundle: &Path, log: &Path, from_log: bool) -> Option<String> {
    let written = std::fs::read(bundle.join(TERMINATION_LOG)).unwrap_or_default();
    let written =
        String::from_utf8_lossy(&written[..written.len().min(MESSAGE_LIMIT)]).into_owned();
    if !written.is_empty() || !from_log {
        return Some(written).filter(|m| !m.is_empty());
    }
    let options = crate::logs::Options {
        tail_lines: Some(FALLBACK_LINES),
        ..Default::default()
    };
    let rendered = crate::logs::render(&std::fs::read_to_string(log).ok()?, &options);
    let tail = rendered.strip_suffix('\n').unwrap_or(&rendered);
    let start = tail.len().saturating_sub(FALLBACK_BYTES);
    let start = (start..tail.len())
        .find(|i| tail.is_char_boundary(*i))
        .unwrap_or(tail.len());
    Some(tail[start..].to_string()).filter(|m| !m.is_empty())
}

/// The host file behind a container's `terminationMessagePath`, in its bundle.
const TERMINATION_LOG: &str = "termination-log";

/// Makes one volume real under `dir` (or checks the host path it names); returns its place.
fn make_volume(dir: &Path, source: &Source) -> MachineResult<PathBuf> {
    match source {
        Source::EmptyDir {
            memory,
            size_limit,
            fs_group,
        } => {
            std::fs::create_dir_all(dir).map_err(|e| runtime::Error::io(dir, e))?;
            if *memory {
                runtime::volume::mount_tmpfs(dir, *size_limit)?;
            }
            // With an fsGroup the volume belongs to that group, and what is made in it too.
            let mode = if fs_group.is_some() { 0o2777 } else { 0o777 };
            if let Some(gid) = fs_group {
                std::os::unix::fs::chown(dir, None, Some(*gid))
                    .map_err(|e| runtime::Error::io(dir, e))?;
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
                .map_err(|e| runtime::Error::io(dir, e))?;
            Ok(dir.to_path_buf())
        }
        Source::HostPath { path, kind } => {
            runtime::volume::check_host_path(path, kind).map_err(MachineError::Other)?;
            Ok(path.clone())
        }
        Source::Files {
            files,
            memory,
            fs_group,
        } => {
            if *memory {
                runtime::volume::mount_tmpfs(dir, None)?;
            }
            runtime::volume::write_atomic(dir, files, *fs_group)?;
            Ok(dir.to_path_buf())
        }
    }
}

impl LinuxMachine {
    /// Housekeeping, as the kubelet does it: tears down every pod this node holds that none of
    /// `known` (the pods bound to it, and those with a worker) accounts for — e.g. one
    /// force-deleted while the agent was down — and deletes runtime containers of no pod. Pods
    /// made after `listed` (the moment the bound pods were listed) are left alone.
    pub async fn clean_up_orphans(
        &self,
        known: std::collections::HashSet<String>,
        listed: std::time::SystemTime,
    ) {
        let (state, rt, net) = (
            self.state_dir.clone(),
            self.runtime.clone(),
            self.network.clone(),
        );
        let done = blocking("cleaning up orphans", LONG_CALL_TIMEOUT, move || {
            remove_orphans(&state, &rt, &net, &known, listed);
            Ok(())
        })
        .await;
        if let Err(err) = done {
            tracing::warn!(%err, "cleaning up orphaned pods failed");
        }
    }
}

fn remove_orphans(
    state: &Path,
    rt: &Runtime,
    net: &NetworkConfig,
    known: &std::collections::HashSet<String>,
    listed: std::time::SystemTime,
) {
    for entry in std::fs::read_dir(state.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let uid = entry.file_name().to_string_lossy().into_owned();
        let older = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < listed);
        if known.contains(&uid) || !older {
            continue;
        }
        tracing::info!(%uid, "tearing down a pod no longer bound to this node");
        teardown_dir(rt, net, &entry.path(), &format!("/kubelite/pod{uid}"));
        let suffix = format!("_{uid}");
        for logs in std::fs::read_dir(logs_dir(state))
            .into_iter()
            .flatten()
            .flatten()
        {
            if logs.file_name().to_string_lossy().ends_with(&suffix) {
                let _ = std::fs::remove_dir_all(logs.path());
            }
        }
    }
    // Containers are named after their pod's uid (its first 8 characters); a pod still here
    // (known, or newer than the list) keeps its own.
    let remaining = std::fs::read_dir(state.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned());
    let owners: std::collections::HashSet<String> = known
        .iter()
        .cloned()
        .chain(remaining)
        .map(|u| u.chars().take(8).collect())
        .collect();
    for id in rt.list() {
        let owner = id.split('-').next().unwrap_or_default();
        if !owners.contains(owner) {
            tracing::info!(%id, "deleting a container of no pod");
            let _ = rt.delete(&id);
        }
    }
    rt.sweep_leftovers();
}

/// Stops every container the pod directory holds (earlier instances too), removes their root
/// filesystems, unmounts its volumes, removes the sandbox and the cgroup, then the directory.
fn teardown_dir(rt: &Runtime, net: &NetworkConfig, dir: &Path, cgroup: &str) {
    let sandbox_dir = dir.join("sandbox");
    let volumes_dir = dir.join("volumes");
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path == sandbox_dir || path == volumes_dir || !path.is_dir() {
            continue;
        }
        if let Some(id) = path.file_name().and_then(|n| n.to_str()) {
            // A forced delete kills what still runs.
            let _ = rt.delete(id);
        }
        let _ = oci::remove_rootfs(&path);
    }
    if let Ok(Some(s)) = Sandbox::load(&sandbox_dir) {
        if let Err(err) = sandbox::destroy(net, &s) {
            tracing::warn!(%err, "tearing down the pod sandbox failed");
        }
    }
    let _ = runtime::cgroups::remove(cgroup);
    // Memory volumes are mounts: gone before their directories are removed.
    runtime::volume::unmount_below(&volumes_dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// A container's `config.json` contents: the process from image and spec, its limits.
fn bundle_spec<'a>(
    c: &Container,
    image: &runtime::image::ImageConfig,
    rootfs: &'a Path,
    sb: &'a Sandbox,
    cgroups_path: String,
) -> oci::BundleSpec<'a> {
    let args = oci::merge_command(
        &image.entrypoint,
        &image.cmd,
        c.command.as_deref(),
        c.args.as_deref(),
    );
    // The worker has resolved every variable to a value (`env::applied`).
    let env_pairs: Vec<(String, String)> = c
        .env
        .iter()
        .flatten()
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect();
    let resources = c.resources.as_ref();
    let requests = resources.and_then(|r| r.requests.as_ref());
    let limits = resources.and_then(|r| r.limits.as_ref());
    oci::BundleSpec {
        rootfs,
        args,
        env: oci::merge_env(&image.env, &env_pairs),
        cwd: c
            .working_dir
            .clone()
            .or_else(|| image.working_dir.clone())
            .unwrap_or_else(|| "/".into()),
        security: oci::Security::default(),
        sandbox: sb,
        cgroups_path,
        limits: oci::Limits::from_resources(
            quantity(requests, "cpu").map(api::quantity::to_milli),
            quantity(limits, "cpu").map(api::quantity::to_milli),
            quantity(limits, "memory").map(api::quantity::to_units),
        ),
        mounts: vec![],
    }
}

fn quantity(
    map: Option<&std::collections::BTreeMap<String, Quantity>>,
    key: &str,
) -> Option<api::quantity::Nanos> {
    map.and_then(|m| m.get(key))
        .and_then(|q| api::quantity::parse(&q.0))
}

fn load_record(state_dir: &Path, uid: &str, container: &str) -> Option<Record> {
    let path = state_dir
        .join("pods")
        .join(uid)
        .join(format!("{container}.json"));
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The ID of the latest instance of `container` in the pod with `uid`, as its worker recorded
/// it (whether it still runs is the runtime's to say).
pub fn latest_instance(state_dir: &Path, uid: &str, container: &str) -> Option<String> {
    load_record(state_dir, uid, container).map(|r| r.instance.id)
}

/// The sandbox of the pod with `uid`, while it exists.
pub fn pod_sandbox(state_dir: &Path, uid: &str) -> Option<Sandbox> {
    Sandbox::load(&state_dir.join("pods").join(uid).join("sandbox"))
        .ok()
        .flatten()
}

/// Where container log files live under the agent's state (the log server reads them here).
pub fn logs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_container_without_a_message_gets_the_end_of_its_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        let mut lines: Vec<String> = (0..100)
            .map(|i| format!("2026-12-01T00:00:00Z stdout F line {i}"))
            .collect();
        lines.push("2026-12-01T00:00:01Z stderr P last ".into());
        lines.push("2026-12-01T00:00:01Z stderr F words".into());
        std::fs::write(&log, lines.join("\n") + "\n").expect("log");
        let message = termination_message(dir.path(), &log, true).expect("a message");
        let kept: Vec<&str> = message.lines().collect();
        assert_eq!(kept.len(), FALLBACK_LINES);
        assert_eq!(kept[0], "line 21");
        assert_eq!(kept.last(), Some(&"last words"), "partial lines are joined");
        assert_eq!(termination_message(dir.path(), &log, false), None);
        std::fs::write(dir.path().join(TERMINATION_LOG), "database unreachable").expect("file");
        assert_eq!(
            termination_message(dir.path(), &log, true).as_deref(),
            Some("database unreachable"),
            "what the container wrote comes first"
        );
    }
}
