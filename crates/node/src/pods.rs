//! Pod workers: one task per pod bound to this node drives it from sandbox to running
//! containers and keeps it there as its restart policy says, reports status only when it changes,
//! and tears everything down when the pod is deleted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use runtime::container::Runtime;
use runtime::image::ImageStore;
use runtime::oci;
use runtime::sandbox::{self, NetworkConfig, Sandbox};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::lifecycle::{self, CrashBackoff, RestartPolicy};

/// How long a stopped container's exit code may take to appear in conmon's exit file.
const EXIT_FILE_WAIT: Duration = Duration::from_secs(2);

/// What every pod worker shares.
pub struct Node {
    pub client: kube::Client,
    pub node_name: String,
    pub node_ip: Option<String>,
    pub state_dir: PathBuf,
    pub runtime: Runtime,
    pub images: Arc<ImageStore>,
    pub network: NetworkConfig,
    pub pause: Vec<String>,
    pub recorder: Recorder,
}

/// One container instance the worker started.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Instance {
    id: String,
    restart: i32,
    started_at: String,
    image_id: String,
    /// The image as the spec named it when this instance started.
    #[serde(default)]
    image: String,
}

/// What the worker knows of one container of the pod.
#[derive(Clone, Debug, Default)]
struct ContainerTrack {
    current: Option<Instance>,
    /// The terminated state of the last instance (`lastState` / `state.terminated`).
    last_terminated: Option<Value>,
    restarts: i32,
    backoff: CrashBackoff,
    retry_at: Option<Instant>,
    /// The wait before the pending restart.
    delay: Duration,
    running_since: Option<Instant>,
    waiting: Option<(String, String)>,
    /// Back-off for failures before the container runs (image missing, create failed).
    start_retry_at: Option<Instant>,
    start_backoff: Option<Duration>,
    /// The instance is being stopped to run a changed spec (a new image): restart it at once.
    replacing: bool,
    /// When the current instance was first seen stopped without its exit file.
    exit_seen: Option<Instant>,
}

impl ContainerTrack {
    /// Schedules the next start attempt after a failure: 10 s doubling to 5 min.
    fn start_failed(&mut self) {
        let next = lifecycle::doubled(self.start_backoff);
        self.start_backoff = Some(next);
        self.start_retry_at = Some(Instant::now() + next);
    }
}

fn now_rfc3339() -> String {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now())
        .0
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl Node {
    fn pod_dir(&self, pod: &Pod) -> PathBuf {
        self.state_dir
            .join("pods")
            .join(pod.uid().unwrap_or_default())
    }

    fn log_path(&self, pod: &Pod, container: &str, restart: i32) -> PathBuf {
        logs_dir(&self.state_dir)
            .join(format!(
                "{}_{}_{}",
                pod.namespace().unwrap_or_default(),
                pod.name_any(),
                pod.uid().unwrap_or_default()
            ))
            .join(container)
            .join(format!("{restart}.log"))
    }

    fn cgroup_parent(pod: &Pod) -> String {
        format!("/kubelite/pod{}", pod.uid().unwrap_or_default())
    }

    async fn event(
        &self,
        pod: &Pod,
        type_: EventType,
        reason: &str,
        note: String,
        field: Option<String>,
    ) {
        let mut reference = pod.object_ref(&());
        reference.field_path = field;
        // The recorder folds events with the same reason and action into one series. As the
        // kubelet's event correlator does, only identical messages may fold: "Pulling image a"
        // and, later, "Pulling image b" are two events.
        let action = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(note.as_bytes());
            format!("{reason}-{}", hex::encode(&digest[..4]))
        };
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action,
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&ev, &reference).await {
            tracing::debug!(%err, "recording an event failed");
        }
    }
}

/// Runs a pod worker until the pod is deleted and cleaned up. New versions of the pod arrive on
/// `updates`.
pub async fn worker(node: Arc<Node>, mut updates: watch::Receiver<Pod>) {
    let mut tracks: HashMap<String, ContainerTrack> = HashMap::new();
    let mut sandbox: Option<Sandbox> = None;
    let mut last_status = Value::Null;
    let mut deadline_exceeded = false;
    // After an agent restart: take over what is already running instead of starting it again.
    {
        let pod = updates.borrow().clone();
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            if let Some(track) = adopt(&node, &pod, &c.name).await {
                tracks.insert(c.name.clone(), track);
            }
        }
    }
    loop {
        let pod = updates.borrow_and_update().clone();
        let key = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
        if pod.metadata.deletion_timestamp.is_some() {
            terminate(&node, &pod, &mut tracks, sandbox.take()).await;
            return;
        }
        if sandbox.is_none() {
            let dir = node.pod_dir(&pod).join("sandbox");
            let existing = Sandbox::load(&dir).ok().flatten().filter(Sandbox::alive);
            let made = match existing {
                Some(s) => Ok(s),
                None => {
                    let (net, id, host, pause) = (
                        node.network.clone(),
                        pod.uid().unwrap_or_default(),
                        pod.name_any(),
                        node.pause.clone(),
                    );
                    tokio::task::spawn_blocking(move || {
                        sandbox::create(&net, &id, &host, &dir, &pause)
                    })
                    .await
                    .unwrap_or_else(|e| {
                        Err(runtime::Error::Command {
                            command: "sandbox".into(),
                            message: e.to_string(),
                        })
                    })
                }
            };
            match made {
                Ok(s) => {
                    // The pod's cgroup holds its pause process as well as its containers.
                    let (cgroup, pid) = (Node::cgroup_parent(&pod), s.pause_pid);
                    let entered =
                        tokio::task::spawn_blocking(move || runtime::cgroups::enter(&cgroup, pid))
                            .await;
                    if let Ok(Err(err)) = entered {
                        tracing::warn!(pod = %key, %err, "moving the pause process into the pod cgroup failed");
                    }
                    sandbox = Some(s);
                }
                Err(err) => {
                    tracing::warn!(pod = %key, %err, "creating the pod sandbox failed");
                    node.event(
                        &pod,
                        EventType::Warning,
                        "FailedCreatePodSandBox",
                        format!("Failed to create pod sandbox: {err}"),
                        None,
                    )
                    .await;
                }
            }
        }
        let mut soon = false;
        if !deadline_exceeded && past_deadline(&pod) {
            deadline_exceeded = true;
            end_for_deadline(&node, &pod, &tracks).await;
        }
        if let Some(sb) = &sandbox {
            // Past its deadline the pod only records how its containers ended.
            let restart_policy = if deadline_exceeded {
                RestartPolicy::Never
            } else {
                RestartPolicy::parse(pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()))
            };
            let containers: Vec<Container> = pod
                .spec
                .as_ref()
                .map(|s| s.containers.clone())
                .unwrap_or_default();
            for c in &containers {
                let track = tracks.entry(c.name.clone()).or_default();
                soon |= reconcile_container(&node, &pod, sb, c, track, restart_policy).await;
            }
        }
        let mut status = pod_status(&node, &pod, sandbox.as_ref(), &tracks);
        if deadline_exceeded {
            status["phase"] = json!("Failed");
            status["reason"] = json!("DeadlineExceeded");
            status["message"] = json!(DEADLINE_MESSAGE);
        }
        if status != last_status {
            let api: Api<Pod> =
                Api::namespaced(node.client.clone(), &pod.namespace().unwrap_or_default());
            match api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": with_transition_times(&status, &pod)})),
                )
                .await
            {
                Ok(_) => last_status = status,
                Err(err) => tracing::debug!(pod = %key, %err, "status update failed"),
            }
        }
        // Wake on a new pod version, or to look at the containers again.
        let wait = Duration::from_millis(if soon { 10 } else { 500 });
        let _ = tokio::time::timeout(wait, updates.changed()).await;
        if updates.has_changed().is_err() {
            return;
        }
    }
}

async fn reconcile_container(
    node: &Arc<Node>,
    pod: &Pod,
    sb: &Sandbox,
    c: &Container,
    track: &mut ContainerTrack,
    policy: RestartPolicy,
) -> bool {
    let field = Some(format!("spec.containers{{{}}}", c.name));
    // Is the current instance still running?
    if let Some(inst) = track.current.clone() {
        // Asked off the executor. A runtime that cannot answer says nothing about the container:
        // it is not taken for gone (that would record a made-up exit), only asked again on the
        // next round.
        let (rt, id) = (node.runtime.clone(), inst.id.clone());
        let state = match tokio::task::spawn_blocking(move || rt.state(&id)).await {
            Ok(Ok(state)) => state,
            Ok(Err(err)) => {
                tracing::warn!(container = %c.name, %err, "the runtime could not tell the container's state");
                return false;
            }
            Err(err) => {
                tracing::warn!(container = %c.name, %err, "asking the runtime failed");
                return false;
            }
        };
        if state
            .as_ref()
            .is_some_and(|s| s.status == "running" || s.status == "created")
        {
            if let Some(since) = track.running_since {
                track.backoff.ran_for(since.elapsed());
            }
            let wanted = c.image.as_deref().unwrap_or("");
            if !inst.image.is_empty() && inst.image != wanted && !track.replacing {
                replace(node, pod, c, &inst, field).await;
                track.replacing = true;
                return true;
            }
            return false;
        }
        // It exited: record how, then decide whether to start it again.
        let bundle = node.pod_dir(pod).join(&inst.id);
        // conmon's marker can miss an OOM kill that races the exit; the kernel's counter in the
        // container's cgroup (where its limit is) cannot. The cgroup lasts until the delete below.
        let cgroup = format!("{}/{}", Node::cgroup_parent(pod), inst.id);
        let oom = Runtime::oom_killed(&bundle)
            || runtime::cgroups::oom_kills(&cgroup).is_some_and(|n| n > 0);
        let code = match node.runtime.exit_code(&inst.id) {
            Some(code) => code,
            // conmon writes the exit file just after the runtime reports the container stopped:
            // look again shortly rather than record a made-up code.
            None if state.is_some()
                && track.exit_seen.get_or_insert_with(Instant::now).elapsed() < EXIT_FILE_WAIT =>
            {
                return true;
            }
            // Gone without a word (or killed by the kernel): as SIGKILL.
            None if state.is_none() || oom => 137,
            None => 0,
        };
        track.exit_seen = None;
        let reason = lifecycle::termination_reason(oom, code);
        track.last_terminated = Some(json!({
            "exitCode": code,
            "reason": reason,
            "startedAt": inst.started_at,
            "finishedAt": now_rfc3339(),
            "containerID": format!("{}://{}", runtime_name(node), inst.id),
        }));
        track.current = None;
        track.running_since = None;
        save_instance(
            &node.pod_dir(pod),
            &c.name,
            &inst,
            track.last_terminated.as_ref(),
        );
        let rt = node.runtime.clone();
        let id = inst.id.clone();
        let _ = tokio::task::spawn_blocking(move || rt.delete(&id)).await;
        if !(track.replacing || policy.restarts(code.into())) {
            return false;
        }
        // The first restart is immediate; then 10 s, doubling up to 5 min. A container stopped
        // for a changed spec starts again at once, without back-off.
        let delay = if track.replacing {
            Duration::ZERO
        } else {
            track.backoff.next_delay()
        };
        track.retry_at = Some(Instant::now() + delay);
        track.delay = delay;
        // Publish how it ended (OOMKilled, Error, …) before anything restarts it, as the
        // kubelet's status does; the worker comes back at once.
        track.waiting = None;
        return true;
    }
    if track.last_terminated.is_some() && track.current.is_none() {
        let code = track
            .last_terminated
            .as_ref()
            .and_then(|t| t["exitCode"].as_i64())
            .unwrap_or(-1);
        if !(track.replacing || policy.restarts(code)) {
            return false;
        }
        if let Some(at) = track.retry_at {
            if Instant::now() < at {
                let message = format!(
                    "back-off {}s restarting failed container={} pod={}_{}({})",
                    track.delay.as_secs(),
                    c.name,
                    pod.name_any(),
                    pod.namespace().unwrap_or_default(),
                    pod.uid().unwrap_or_default()
                );
                if track.waiting.as_ref().map(|w| w.0.as_str()) != Some("CrashLoopBackOff") {
                    node.event(
                        pod,
                        EventType::Warning,
                        "BackOff",
                        format!(
                            "Back-off restarting failed container {} in pod {}_{}({})",
                            c.name,
                            pod.name_any(),
                            pod.namespace().unwrap_or_default(),
                            pod.uid().unwrap_or_default()
                        ),
                        field.clone(),
                    )
                    .await;
                }
                track.waiting = Some(("CrashLoopBackOff".into(), message));
                return false;
            }
        }
        track.restarts += 1;
    }
    start_container(node, pod, sb, c, track, field).await;
    false
}

const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// Whether the pod has run longer than its `activeDeadlineSeconds` (counted from `startTime`).
fn past_deadline(pod: &Pod) -> bool {
    let Some(limit) = pod.spec.as_ref().and_then(|s| s.active_deadline_seconds) else {
        return false;
    };
    let Some(start) = pod.status.as_ref().and_then(|s| s.start_time.as_ref()) else {
        return false;
    };
    let ran = Timestamp::now().duration_since(start.0).as_secs();
    ran >= limit
}

/// Ends a pod past its deadline as the kubelet does: an event, then every container stopped.
async fn end_for_deadline(node: &Arc<Node>, pod: &Pod, tracks: &HashMap<String, ContainerTrack>) {
    node.event(
        pod,
        EventType::Warning,
        "DeadlineExceeded",
        DEADLINE_MESSAGE.to_string(),
        None,
    )
    .await;
    for (name, track) in tracks {
        if let Some(inst) = &track.current {
            let field = Some(format!("spec.containers{{{name}}}"));
            let note = format!("Stopping container {name}");
            stop_instance(node, pod, inst, note, field).await;
        }
    }
}

/// Stops a running instance whose image the pod's spec changed, as the kubelet does before
/// starting the container on the new image.
async fn replace(
    node: &Arc<Node>,
    pod: &Pod,
    c: &Container,
    inst: &Instance,
    field: Option<String>,
) {
    let note = format!("Container {} definition changed, will be restarted", c.name);
    stop_instance(node, pod, inst, note, field).await;
}

/// A `Killing` event with `note`, then SIGTERM, and SIGKILL after the pod's grace period.
async fn stop_instance(
    node: &Arc<Node>,
    pod: &Pod,
    inst: &Instance,
    note: String,
    field: Option<String>,
) {
    node.event(pod, EventType::Normal, "Killing", note, field)
        .await;
    let grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30)
        .max(0) as u64;
    let (rt, id) = (node.runtime.clone(), inst.id.clone());
    let _ = tokio::task::spawn_blocking(move || {
        let _ = rt.kill(&id, "TERM");
        let deadline = Instant::now() + Duration::from_secs(grace);
        while Instant::now() < deadline
            && rt
                .state(&id)
                .ok()
                .flatten()
                .is_some_and(|s| s.status == "running")
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = rt.kill(&id, "KILL");
    })
    .await;
}

/// The record of a container's latest instance and how the one before it ended.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    instance: Instance,
    last_terminated: Option<Value>,
}

fn save_instance(pod_dir: &Path, container: &str, instance: &Instance, last: Option<&Value>) {
    let saved = Saved {
        instance: instance.clone(),
        last_terminated: last.cloned(),
    };
    let path = pod_dir.join(format!("{container}.json"));
    if let Ok(bytes) = serde_json::to_vec(&saved) {
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

/// Rebuilds a container's track from what the previous agent recorded and the runtime reports.
async fn adopt(node: &Arc<Node>, pod: &Pod, container: &str) -> Option<ContainerTrack> {
    let path = node.pod_dir(pod).join(format!("{container}.json"));
    let saved: Saved = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let rt = node.runtime.clone();
    let id = saved.instance.id.clone();
    let state = tokio::task::spawn_blocking(move || rt.state(&id))
        .await
        .ok()?
        .ok()
        .flatten();
    let running = state.is_some_and(|s| s.status == "running");
    let mut track = ContainerTrack {
        restarts: saved.instance.restart,
        last_terminated: saved.last_terminated,
        ..Default::default()
    };
    if running {
        tracing::info!(pod = %pod.name_any(), container, id = %saved.instance.id, "adopted a running container");
        track.current = Some(saved.instance);
        track.running_since = Some(Instant::now());
    } else {
        // It stopped while no agent watched: the usual exit handling picks it up.
        track.current = Some(saved.instance);
    }
    Some(track)
}

/// A container that could not be started: the `Error: …` event (`what`), the waiting reason, and
/// the back-off before the next attempt.
async fn start_failure(
    node: &Arc<Node>,
    pod: &Pod,
    field: &Option<String>,
    track: &mut ContainerTrack,
    reason: &str,
    message: String,
    what: &str,
) {
    node.event(
        pod,
        EventType::Warning,
        "Failed",
        format!("Error: {what}"),
        field.clone(),
    )
    .await;
    track.waiting = Some((reason.into(), message));
    track.start_failed();
}

/// Resolves an image in the store (the first resolve unpacks layers: off the async threads).
async fn resolve(node: &Arc<Node>, reference: &str) -> runtime::Result<runtime::image::Image> {
    let (node, wanted) = (node.clone(), reference.to_string());
    tokio::task::spawn_blocking(move || node.images.resolve(&wanted))
        .await
        .unwrap_or_else(|e| {
            Err(runtime::Error::Command {
                command: "resolve".into(),
                message: e.to_string(),
            })
        })
}

/// Pulls an image into the store; returns the kubelet's "Successfully pulled" note.
async fn pull(node: &Arc<Node>, reference: &str) -> runtime::Result<String> {
    let started = Instant::now();
    let tmp = node.state_dir.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| runtime::Error::io(&tmp, e))?;
    let archive = tmp.join(format!(
        "pull-{}.tar",
        std::process::id() as u128 * 1_000_000 + started.elapsed().as_nanos()
    ));
    let result = async {
        runtime::image::pull::pull_to_archive(reference, &archive).await?;
        let (node, path) = (node.clone(), archive.clone());
        tokio::task::spawn_blocking(move || node.images.import_archive(&path))
            .await
            .unwrap_or_else(|e| {
                Err(runtime::Error::Command {
                    command: "import".into(),
                    message: e.to_string(),
                })
            })
    }
    .await;
    let _ = std::fs::remove_file(&archive);
    let imported = result?;
    let size: u64 = imported.iter().map(|i| i.size).sum();
    let secs = started.elapsed().as_secs_f64();
    Ok(format!("Successfully pulled image \"{reference}\" in {secs:.3}s ({secs:.3}s including waiting). Image size: {size} bytes."))
}

fn runtime_name(node: &Node) -> String {
    node.runtime
        .oci_runtime
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("crun")
        .to_string()
}

async fn start_container(
    node: &Arc<Node>,
    pod: &Pod,
    sb: &Sandbox,
    c: &Container,
    track: &mut ContainerTrack,
    field: Option<String>,
) {
    let image_ref = c.image.clone().unwrap_or_default();
    if track.start_retry_at.is_some_and(|t| Instant::now() < t) {
        // Still backing off: an image failure turns into ImagePullBackOff, as the kubelet shows it.
        if track
            .waiting
            .as_ref()
            .is_some_and(|w| w.0 == "ErrImagePull")
        {
            track.waiting = Some((
                "ImagePullBackOff".into(),
                format!("Back-off pulling image \"{image_ref}\""),
            ));
            node.event(
                pod,
                EventType::Normal,
                "BackOff",
                format!("Back-off pulling image \"{image_ref}\""),
                field.clone(),
            )
            .await;
            node.event(
                pod,
                EventType::Warning,
                "Failed",
                "Error: ImagePullBackOff".into(),
                field,
            )
            .await;
        }
        return;
    }
    let present = resolve(node, &image_ref).await.is_ok();
    let action = lifecycle::image_action(c.image_pull_policy.as_deref(), present);
    let mut pulled = None;
    if action == lifecycle::ImageAction::Pull {
        node.event(
            pod,
            EventType::Normal,
            "Pulling",
            format!("Pulling image \"{image_ref}\""),
            field.clone(),
        )
        .await;
        match pull(node, &image_ref).await {
            Ok(summary) => pulled = Some(summary),
            Err(err) => {
                let message = format!("failed to pull and unpack image \"{image_ref}\": {err}");
                let note = format!("Failed to pull image \"{image_ref}\": {message}");
                node.event(pod, EventType::Warning, "Failed", note, field.clone())
                    .await;
                start_failure(
                    node,
                    pod,
                    &field,
                    track,
                    "ErrImagePull",
                    message,
                    "ErrImagePull",
                )
                .await;
                return;
            }
        }
    }
    if action == lifecycle::ImageAction::NeverPull {
        let message =
            format!("Container image \"{image_ref}\" is not present with pull policy of Never");
        node.event(
            pod,
            EventType::Warning,
            "ErrImageNeverPull",
            message.clone(),
            field.clone(),
        )
        .await;
        start_failure(
            node,
            pod,
            &field,
            track,
            "ErrImageNeverPull",
            message,
            "ErrImageNeverPull",
        )
        .await;
        return;
    }
    let image = match resolve(node, &image_ref).await {
        Ok(i) => i,
        Err(err) => {
            let message = err.to_string();
            start_failure(
                node,
                pod,
                &field,
                track,
                "CreateContainerError",
                message.clone(),
                &message,
            )
            .await;
            return;
        }
    };
    match pulled {
        Some(note) => {
            node.event(pod, EventType::Normal, "Pulled", note, field.clone())
                .await
        }
        None if track.restarts == 0 && track.last_terminated.is_none() => {
            let note = format!("Container image \"{image_ref}\" already present on machine");
            node.event(pod, EventType::Normal, "Pulled", note, field.clone())
                .await
        }
        None => {}
    }
    let uid = pod.uid().unwrap_or_default();
    let id = format!("{}-{}-{}", &uid[..uid.len().min(8)], c.name, track.restarts);
    let bundle = node.pod_dir(pod).join(&id);
    let cfg = &image.config;
    let args = oci::merge_command(
        &cfg.entrypoint,
        &cfg.cmd,
        c.command.as_deref(),
        c.args.as_deref(),
    );
    let env_pairs: Vec<(String, String)> = c
        .env
        .iter()
        .flatten()
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect();
    let env = oci::merge_env(&cfg.env, &env_pairs);
    let resources = c.resources.as_ref();
    let milli = |m: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
                 k: &str| {
        m.and_then(|m| m.get(k))
            .and_then(|q| api::quantity::parse(&q.0))
            .map(api::quantity::to_milli)
    };
    let bytes = |m: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
                 k: &str| {
        m.and_then(|m| m.get(k))
            .and_then(|q| api::quantity::parse(&q.0))
            .map(api::quantity::to_units)
    };
    let limits = oci::Limits::from_resources(
        milli(resources.and_then(|r| r.requests.as_ref()), "cpu"),
        milli(resources.and_then(|r| r.limits.as_ref()), "cpu"),
        bytes(resources.and_then(|r| r.limits.as_ref()), "memory"),
    );
    let cwd = c
        .working_dir
        .clone()
        .or_else(|| cfg.working_dir.clone())
        .unwrap_or_else(|| "/".into());
    let log_path = node.log_path(pod, &c.name, track.restarts);
    let (rt, sb2, name, cgroup) = (
        node.runtime.clone(),
        sb.clone(),
        c.name.clone(),
        format!("{}/{}", Node::cgroup_parent(pod), id),
    );
    let layers = image.layers.clone();
    let id2 = id.clone();
    let stdin = runtime::container::Stdin::from_spec(
        c.stdin.unwrap_or(false),
        c.stdin_once.unwrap_or(false),
    );
    let created = tokio::task::spawn_blocking(move || -> runtime::Result<i32> {
        let rootfs = oci::mount_rootfs(&layers, &bundle)?;
        let spec = oci::BundleSpec {
            rootfs: &rootfs,
            args,
            env,
            cwd,
            uid: 0,
            gid: 0,
            sandbox: &sb2,
            cgroups_path: cgroup,
            limits,
            mounts: vec![],
        };
        oci::write_config(&bundle, &spec)?;
        let pid = rt.create(&id2, &name, &bundle, &log_path, stdin)?;
        rt.start(&id2)?;
        Ok(pid)
    })
    .await
    .unwrap_or_else(|e| {
        Err(runtime::Error::Command {
            command: "start".into(),
            message: e.to_string(),
        })
    });
    match created {
        Ok(_) => {
            node.event(
                pod,
                EventType::Normal,
                "Created",
                format!("Created container: {}", c.name),
                field.clone(),
            )
            .await;
            node.event(
                pod,
                EventType::Normal,
                "Started",
                format!("Started container {}", c.name),
                field,
            )
            .await;
            let instance = Instance {
                id,
                restart: track.restarts,
                started_at: now_rfc3339(),
                image_id: image.id.clone(),
                image: c.image.clone().unwrap_or_default(),
            };
            save_instance(
                &node.pod_dir(pod),
                &c.name,
                &instance,
                track.last_terminated.as_ref(),
            );
            track.current = Some(instance);
            track.running_since = Some(Instant::now());
            track.waiting = None;
            track.start_retry_at = None;
            track.start_backoff = None;
            track.replacing = false;
        }
        Err(err) => {
            tracing::warn!(%err, container = %c.name, "starting a container failed");
            let message = err.to_string();
            start_failure(
                node,
                pod,
                &field,
                track,
                "CreateContainerError",
                message.clone(),
                &message,
            )
            .await;
            let rt = node.runtime.clone();
            let _ = tokio::task::spawn_blocking(move || rt.delete(&id)).await;
        }
    }
}

fn pod_status(
    node: &Node,
    pod: &Pod,
    sb: Option<&Sandbox>,
    tracks: &HashMap<String, ContainerTrack>,
) -> Value {
    let containers: Vec<Container> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let mut statuses = Vec::new();
    let (mut running, mut ready_all, mut terminated_all, mut failed_any) = (0, true, true, false);
    for c in &containers {
        let t = tracks.get(&c.name).cloned().unwrap_or_default();
        let (state, ready) = match (&t.current, &t.waiting, &t.last_terminated) {
            (Some(inst), _, _) => (json!({"running": {"startedAt": inst.started_at}}), true),
            (None, Some((reason, message)), _) => (
                json!({"waiting": {"reason": reason, "message": message}}),
                false,
            ),
            (None, None, Some(term)) => (json!({"terminated": term}), false),
            (None, None, None) => (json!({"waiting": {"reason": "ContainerCreating"}}), false),
        };
        if state.get("running").is_some() {
            running += 1;
        }
        if !ready {
            ready_all = false;
        }
        if state.get("terminated").is_none() {
            terminated_all = false;
        } else if state["terminated"]["exitCode"].as_i64() != Some(0) {
            failed_any = true;
        }
        let mut s = json!({
            "name": c.name,
            "state": state,
            "lastState": {},
            "ready": ready,
            "restartCount": t.restarts,
            "image": c.image,
            "imageID": t.current.as_ref().map(|i| i.image_id.clone()).unwrap_or_default(),
            "started": t.current.is_some(),
        });
        if let Some(inst) = &t.current {
            s["containerID"] = json!(format!("{}://{}", runtime_name(node), inst.id));
        }
        if t.current.is_some() || t.waiting.is_some() {
            if let Some(term) = &t.last_terminated {
                s["lastState"] = json!({"terminated": term});
            }
        }
        statuses.push(s);
    }
    let phase = lifecycle::phase(lifecycle::Containers {
        total: containers.len(),
        all_ended: terminated_all,
        any_failed: failed_any,
        running,
        restarted: tracks.values().any(|t| t.restarts > 0),
    });
    let flag = |b: bool| if b { "True" } else { "False" };
    let now = now_rfc3339();
    let conditions = json!([
        {"type": "PodReadyToStartContainers", "status": flag(sb.is_some()), "lastProbeTime": null, "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
        {"type": "Ready", "status": flag(ready_all), "lastProbeTime": null, "lastTransitionTime": now},
        {"type": "ContainersReady", "status": flag(ready_all), "lastProbeTime": null, "lastTransitionTime": now},
        {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
    ]);
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "containerStatuses": statuses,
        "qosClass": pod.status.as_ref().and_then(|s| s.qos_class.clone()),
        "startTime": pod.status.as_ref().and_then(|s| s.start_time.clone()).map(|t| json!(t)).unwrap_or_else(|| json!(now)),
    });
    if let Some(ip) = &node.node_ip {
        status["hostIP"] = json!(ip);
        status["hostIPs"] = json!([{"ip": ip}]);
    }
    if let Some(sb) = sb {
        status["podIP"] = json!(sb.ip);
        status["podIPs"] = json!([{"ip": sb.ip}]);
    }
    // Timestamps change every pass; compare without them so status is written only on change.
    strip_volatile(status)
}

/// Gives each condition its `lastTransitionTime`: kept from the pod's current condition of the
/// same type while its status is unchanged, now when it changed.
fn with_transition_times(status: &Value, pod: &Pod) -> Value {
    let mut status = status.clone();
    let now = now_rfc3339();
    let current = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    if let Some(conds) = status["conditions"].as_array_mut() {
        for c in conds {
            let since = current
                .and_then(|cs| cs.iter().find(|x| c["type"] == x.type_.as_str()))
                .filter(|x| c["status"] == x.status.as_str())
                .and_then(|x| x.last_transition_time.as_ref())
                .map(|t| json!(t))
                .unwrap_or_else(|| json!(now));
            c["lastTransitionTime"] = since;
        }
    }
    status
}

fn strip_volatile(mut status: Value) -> Value {
    if let Some(conds) = status["conditions"].as_array_mut() {
        for c in conds {
            if let Some(m) = c.as_object_mut() {
                m.remove("lastTransitionTime");
            }
        }
    }
    status
}

/// Stops every container (SIGTERM, SIGKILL after the grace period), removes them, their root
/// filesystems and the sandbox, then deletes the pod object.
async fn terminate(
    node: &Arc<Node>,
    pod: &Pod,
    tracks: &mut HashMap<String, ContainerTrack>,
    sb: Option<Sandbox>,
) {
    let grace = pod
        .metadata
        .deletion_grace_period_seconds
        .unwrap_or(30)
        .max(0) as u64;
    let running: Vec<(String, String)> = tracks
        .iter()
        .filter_map(|(name, t)| t.current.as_ref().map(|i| (name.clone(), i.id.clone())))
        .collect();
    for (name, _) in &running {
        node.event(
            pod,
            EventType::Normal,
            "Killing",
            format!("Stopping container {name}"),
            Some(format!("spec.containers{{{name}}}")),
        )
        .await;
    }
    let rt = node.runtime.clone();
    let ids: Vec<String> = running.iter().map(|(_, id)| id.clone()).collect();
    let dir = node.pod_dir(pod);
    let sandbox_dir = dir.join("sandbox");
    let net = node.network.clone();
    let cgroup = Node::cgroup_parent(pod);
    let _ = tokio::task::spawn_blocking(move || {
        for id in &ids {
            let _ = rt.kill(id, "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(grace);
        while Instant::now() < deadline
            && ids.iter().any(|id| {
                rt.state(id)
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.status == "running")
            })
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        for id in &ids {
            let _ = rt.kill(id, "KILL");
            let _ = rt.delete(id);
        }
        // Every container dir of the pod (earlier instances too).
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path() != sandbox_dir {
                let _ = oci::remove_rootfs(&entry.path());
            }
        }
        let sandbox = sb.or_else(|| Sandbox::load(&sandbox_dir).ok().flatten());
        if let Some(s) = sandbox {
            if let Err(err) = sandbox::destroy(&net, &s) {
                tracing::warn!(%err, "tearing down the pod sandbox failed");
            }
        }
        let _ = runtime::cgroups::remove(&cgroup);
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
    match confirm_deletion(&node.client, pod).await {
        Ok(()) => tracing::info!(pod = %pod.name_any(), "pod deleted"),
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(err) => tracing::warn!(%err, "finishing a pod's deletion failed"),
    }
}

/// Where container log files live under the agent's state (the log server reads them here).
/// The ID of the latest instance of `container` in the pod with `uid`, as its worker recorded
/// it (whether it still runs is the runtime's to say).
pub fn latest_instance(state_dir: &Path, uid: &str, container: &str) -> Option<String> {
    let path = state_dir
        .join("pods")
        .join(uid)
        .join(format!("{container}.json"));
    let saved: Saved = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Some(saved.instance.id)
}

/// The sandbox of the pod with `uid`, while it exists.
pub fn pod_sandbox(state_dir: &Path, uid: &str) -> Option<Sandbox> {
    Sandbox::load(&state_dir.join("pods").join(uid).join("sandbox"))
        .ok()
        .flatten()
}

/// Tells the API server the node is done with a deleted pod (grace period 0, for this very pod):
/// the object goes away. A pod already gone is no error.
pub async fn confirm_deletion(client: &kube::Client, pod: &Pod) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&pod.name_any(), &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn logs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}
