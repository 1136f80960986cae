//! The pod worker: one per pod bound to this node. Each pass ([`PodWorker::sync`]) brings the
//! machine closer to the pod's spec and reports the status when it changed; deletion ends in
//! [`PodWorker::terminate`]. It reaches the machine and the API only through [`Machine`] and
//! [`PodApi`], so every rule here is tested on fakes (`worker_tests`).
//!
//! A container moves through these states (the `state` its status shows in brackets):
//!
//! ```text
//!  (waiting ContainerCreating) ──start──▶ running ──exit──▶ ended (terminated)
//!        │  image/create failure              │ liveness/startup probe fails: Killing, stop
//!        ▼                                     ▼
//!  (waiting ErrImagePull / ImagePullBackOff /  ended ── policy restarts? ── no ──▶ stays ended
//!   CreateContainerError), retried 10 s          │ yes
//!   doubling to 5 min                            ▼
//!                                   (waiting CrashLoopBackOff) until the back-off passes,
//!                                   then start again (restartCount + 1)
//! ```
//!
//! While running, the startup probe gates the liveness and readiness probes; readiness sets the
//! container's `ready`. The runtime failing to answer is never read as "the container ended".

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::env;
use crate::lifecycle::{self, CrashBackoff, ImageAction, RestartPolicy};
use crate::machine::{
    Instance, Machine, MachineError, PodApi, PodEvent, PodSandbox, ProbeOutcome, ProbeTarget,
    Record, RunState, Signal,
};
use crate::probe::{ProbeKind, Prober};
use crate::pull_secrets;
use crate::status::{self, PodFacts};
use crate::support;
use crate::volumes::{self, Source, Tokens};

mod hooks;
mod init;

/// How long a stopped container's exit code may take to appear before it is taken as killed.
const EXIT_FILE_WAIT: Duration = Duration::from_secs(2);
/// The exit code of a container whose end nobody recorded (containerd's "unknown exit status").
const UNKNOWN_EXIT_CODE: i32 = 255;
const UNKNOWN_EXIT_MESSAGE: &str =
    "the exit code is unknown: the container's monitor (conmon) was gone when it stopped";
/// How often a worker looks at its containers when nothing else wakes it (the kubelet relists
/// its containers every second too).
const POLL: Duration = Duration::from_secs(1);
/// How soon it looks again when something is under way.
const SOON: Duration = Duration::from_millis(10);
/// How often a running container's state is asked of the runtime when nothing says it ended.
const STATE_REFRESH: Duration = Duration::from_secs(30);
/// How often a stopping container is asked whether it has ended.
const STOP_POLL: Duration = Duration::from_millis(50);
/// How often projected volumes (configMap, secret, downward API, tokens) are brought up to date.
const VOLUME_RESYNC: Duration = Duration::from_secs(10);

/// The wait after a failed volume set-up: 1 s doubling to 2 min.
fn volume_backoff(previous: Option<Duration>) -> Duration {
    previous.map_or(Duration::from_secs(1), |d| {
        (d * 2).min(Duration::from_secs(120))
    })
}

/// Now, to the second, as Kubernetes timestamps are written.
fn now() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

fn pod_grace(pod: &Pod) -> Duration {
    let secs = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    Duration::from_secs(secs.max(0) as u64)
}

/// What the worker knows of one container of the pod.
#[derive(Clone, Debug, Default)]
struct Track {
    current: Option<Instance>,
    /// How the last instance ended (`lastState` / `state.terminated`).
    last_terminated: Option<ContainerStateTerminated>,
    restarts: i32,
    backoff: CrashBackoff,
    /// When a crashed container may start again, and the wait that was.
    retry_at: Option<Instant>,
    delay: Duration,
    running_since: Option<Instant>,
    /// `state.waiting` (reason, message).
    waiting: Option<(String, String)>,
    /// Back-off for failures before the container runs (image missing, create failed).
    start_retry_at: Option<Instant>,
    start_backoff: Option<Duration>,
    /// The instance is being stopped to run a changed spec (a new image): restart it at once.
    replacing: bool,
    /// When the current instance was first seen stopped without its exit code.
    exit_seen: Option<Instant>,
    /// The current instance's probes.
    probes: Vec<Prober>,
    /// When the runtime was last asked about the current instance.
    state_asked_at: Option<Instant>,
}

impl Track {
    fn start_failed(&mut self) {
        let next = lifecycle::doubled(self.start_backoff);
        self.start_backoff = Some(next);
        self.start_retry_at = Some(Instant::now() + next);
    }

    fn passing(&self, kind: ProbeKind) -> bool {
        self.probes
            .iter()
            .find(|p| p.kind == kind)
            .is_none_or(Prober::passing)
    }

    fn started(&self) -> bool {
        self.current.is_some() && self.passing(ProbeKind::Startup)
    }

    fn ready(&self) -> bool {
        self.started() && self.passing(ProbeKind::Readiness)
    }
}

pub struct PodWorker<M, R> {
    machine: Arc<M>,
    api: Arc<R>,
    host_ip: Option<String>,
    tracks: HashMap<String, Track>,
    sandbox: Option<PodSandbox>,
    last_status: Option<PodStatus>,
    /// Why the whole pod failed (refused, past its deadline): status reason and message.
    failure: Option<(String, String)>,
    deadline_exceeded: bool,
    volumes: Volumes,
    /// Every regular init container has completed (they never run again).
    init_done: bool,
    /// The app containers have ended for good: sidecars are being stopped, not restarted.
    sidecars_ending: bool,
    /// The names of the pod's init containers.
    init_names: Vec<String>,
}

/// The pod's volumes as made on the host, and when to look at them again.
#[derive(Default)]
struct Volumes {
    made: HashMap<String, (Source, PathBuf)>,
    /// Every volume has been made once.
    ready: bool,
    next_sync: Option<Instant>,
    backoff: Option<Duration>,
    tokens: Tokens,
}

impl<M: Machine, R: PodApi> PodWorker<M, R> {
    pub fn new(machine: Arc<M>, api: Arc<R>, host_ip: Option<String>) -> Self {
        PodWorker {
            machine,
            api,
            host_ip,
            tracks: HashMap::new(),
            sandbox: None,
            last_status: None,
            failure: None,
            deadline_exceeded: false,
            volumes: Volumes::default(),
            init_done: false,
            sidecars_ending: false,
            init_names: Vec::new(),
        }
    }

    async fn event(&self, pod: &Pod, warning: bool, reason: &str, note: String, f: Option<String>) {
        let event = PodEvent {
            warning,
            reason: reason.into(),
            note,
            field: f,
        };
        self.api.event(pod, event).await;
    }

    /// After an agent restart: takes over the containers the previous agent recorded.
    pub async fn adopt(&mut self, pod: &Pod) {
        let Some(spec) = pod.spec.as_ref() else {
            return;
        };
        let app = spec.containers.iter().map(|c| (c, false));
        let init = spec.init_containers.iter().flatten().map(|c| (c, true));
        let containers: Vec<(&Container, bool)> = app.chain(init).collect();
        for (c, is_init) in containers {
            let Some(record) = self.machine.load(pod, &c.name) else {
                continue;
            };
            // Init containers ran to completion before any app container was made.
            self.init_done |= !is_init;
            let running = matches!(
                self.machine.state(&record.instance.id).await,
                Ok(Some(RunState::Running))
            );
            let mut track = Track {
                restarts: record.instance.restart,
                last_terminated: record.last_terminated,
                ..Default::default()
            };
            if running {
                tracing::info!(container = %c.name, id = %record.instance.id, "adopted a running container");
                track.running_since = Some(Instant::now());
                track.probes = probers(c, Instant::now());
            }
            // One that stopped while no agent watched is picked up by the usual exit handling.
            track.current = Some(record.instance);
            self.tracks.insert(c.name.clone(), track);
        }
    }

    /// One pass: sandbox, volumes, containers, status. Returns how soon to look again.
    pub async fn sync(&mut self, pod: &Pod) -> Duration {
        if self.refused(pod).await {
            self.report(pod).await;
            return POLL;
        }
        if self.sandbox.is_none() {
            self.make_sandbox(pod).await;
        }
        if !self.deadline_exceeded && past_deadline(pod) {
            self.deadline_exceeded = true;
            let why = ("DeadlineExceeded".into(), status::DEADLINE_MESSAGE.into());
            self.failure = Some(why);
            self.end_for_deadline(pod).await;
        }
        let mut wait = POLL;
        if self.sandbox.is_some() && self.sync_volumes(pod).await {
            // Past its deadline the pod only records how its containers ended.
            let policy = if self.deadline_exceeded {
                RestartPolicy::Never
            } else {
                RestartPolicy::parse(pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()))
            };
            let (initialized, next) = self.sync_init(pod, policy).await;
            wait = wait.min(next);
            if initialized {
                let containers = pod
                    .spec
                    .as_ref()
                    .map(|s| s.containers.clone())
                    .unwrap_or_default();
                for c in &containers {
                    let mut track = self.tracks.remove(&c.name).unwrap_or_default();
                    let next = self.reconcile(pod, c, &mut track, policy).await;
                    self.tracks.insert(c.name.clone(), track);
                    wait = wait.min(next);
                }
                self.end_sidecars_when_done(pod, policy).await;
            }
        }
        self.report(pod).await;
        wait
    }

    /// Refuses, once and for good, a pod asking for what this node cannot do.
    async fn refused(&mut self, pod: &Pod) -> bool {
        if self.failure.is_some() && !self.deadline_exceeded {
            return true;
        }
        if self.sandbox.is_some() || !self.tracks.is_empty() {
            return false;
        }
        let fields = support::refusals(pod);
        let rejection = support::forbidden_sysctl(pod).or_else(|| {
            (!fields.is_empty()).then(|| (support::REASON.into(), support::message(&fields)))
        });
        let Some((reason, message)) = rejection else {
            return false;
        };
        tracing::warn!(%message, "refusing a pod");
        self.event(pod, true, &reason, message.clone(), None).await;
        self.failure = Some((reason, message));
        true
    }

    /// Makes the pod's volumes, and keeps projected ones up to date. Until every volume has been
    /// made once, no container starts (a `FailedMount` event says why, retried with back-off).
    async fn sync_volumes(&mut self, pod: &Pod) -> bool {
        let now = Instant::now();
        if self.volumes.next_sync.is_some_and(|at| now < at) {
            return self.volumes.ready;
        }
        let mut failed = false;
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let made = self.volumes.made.get(&v.name);
            if made.is_some_and(|(source, _)| !matches!(source, Source::Files { .. })) {
                continue;
            }
            let resolved = volumes::resolve(&*self.api, pod, v, &mut self.volumes.tokens).await;
            let placed = match resolved {
                Ok(source) => match self.machine.volume(pod, &v.name, &source).await {
                    Ok(path) => Ok((source, path)),
                    Err(err) => Err(err.to_string()),
                },
                Err(err) => Err(err.to_string()),
            };
            match placed {
                Ok(made) => {
                    self.volumes.made.insert(v.name.clone(), made);
                }
                Err(err) => {
                    failed = true;
                    let note =
                        format!("MountVolume.SetUp failed for volume \"{}\" : {err}", v.name);
                    self.event(pod, true, "FailedMount", note, None).await;
                }
            }
        }
        let wait = if failed {
            let next = volume_backoff(self.volumes.backoff);
            self.volumes.backoff = Some(next);
            next
        } else {
            self.volumes.ready = true;
            self.volumes.backoff = None;
            VOLUME_RESYNC
        };
        self.volumes.next_sync = Some(now + wait);
        self.volumes.ready
    }

    async fn make_sandbox(&mut self, pod: &Pod) {
        match self.machine.sandbox(pod).await {
            Ok(s) => self.sandbox = Some(s),
            Err(err) => {
                tracing::warn!(%err, "creating the pod sandbox failed");
                let note = format!("Failed to create pod sandbox: {err}");
                self.event(pod, true, "FailedCreatePodSandBox", note, None)
                    .await;
            }
        }
    }

    async fn report(&mut self, pod: &Pod) {
        // A refused pod never had containers to speak of.
        let refused = self.failure.is_some() && !self.deadline_exceeded;
        let has_init = pod
            .spec
            .as_ref()
            .is_some_and(|s| s.init_containers.as_ref().is_some_and(|i| !i.is_empty()));
        let statuses = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .filter(|_| !refused)
            .map(|c| self.container_status(c, !self.init_done && has_init))
            .collect();
        let init_statuses = pod
            .spec
            .iter()
            .flat_map(|s| s.init_containers.iter().flatten())
            .filter(|_| !refused)
            .map(|c| self.container_status(c, true))
            .collect();
        let facts = PodFacts {
            pod_ip: self.sandbox.as_ref().map(|s| s.ip.clone()),
            host_ip: self.host_ip.clone(),
            failure: self.failure.clone(),
            initialized: self.init_done || !has_init,
        };
        let now = now();
        let status = status::pod_status(pod, statuses, init_statuses, &facts, &now);
        if self.last_status.as_ref() == Some(&status) {
            return;
        }
        let timed = status::with_transition_times(status.clone(), pod, &now);
        if self.api.status(pod, &timed).await {
            self.last_status = Some(status);
        }
    }

    /// A container's status; one that has not started waits for `PodInitializing` while the
    /// pod is `initializing`.
    fn container_status(&self, c: &Container, initializing: bool) -> ContainerStatus {
        let t = self.tracks.get(&c.name).cloned().unwrap_or_default();
        let not_yet = if initializing {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        let state = match (&t.current, &t.waiting, &t.last_terminated) {
            (Some(inst), _, _) => ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(inst.started_at.clone()),
                }),
                ..Default::default()
            },
            (None, Some((reason, message)), _) => waiting(reason, message),
            (None, None, Some(term)) => ContainerState {
                terminated: Some(term.clone()),
                ..Default::default()
            },
            (None, None, None) => waiting(not_yet, ""),
        };
        let last_state = match (
            &t.last_terminated,
            t.current.is_some() || t.waiting.is_some(),
        ) {
            (Some(term), true) => ContainerState {
                terminated: Some(term.clone()),
                ..Default::default()
            },
            _ => ContainerState::default(),
        };
        // A regular init container is ready once it has completed.
        let ready = if self.is_init(&c.name) && !init::is_sidecar(c) {
            init::succeeded(&t)
        } else {
            t.ready()
        };
        ContainerStatus {
            name: c.name.clone(),
            state: Some(state),
            last_state: Some(last_state),
            ready,
            started: Some(t.started()),
            restart_count: t.restarts,
            image: c.image.clone().unwrap_or_default(),
            image_id: t
                .current
                .as_ref()
                .map(|i| i.image_id.clone())
                .unwrap_or_default(),
            container_id: t.current.as_ref().map(|i| self.container_id(&i.id)),
            ..Default::default()
        }
    }

    /// The field path events about container `name` name.
    fn field(&self, name: &str) -> Option<String> {
        let list = if self.is_init(name) {
            "initContainers"
        } else {
            "containers"
        };
        Some(format!("spec.{list}{{{name}}}"))
    }

    fn container_id(&self, id: &str) -> String {
        format!("{}://{id}", self.machine.runtime_name())
    }

    /// One container's turn; returns how soon to look again.
    async fn reconcile(
        &self,
        pod: &Pod,
        c: &Container,
        t: &mut Track,
        policy: RestartPolicy,
    ) -> Duration {
        if t.current.is_some() {
            return self.check_running(pod, c, t, policy).await;
        }
        if let Some(term) = &t.last_terminated {
            if !(t.replacing || policy.restarts(term.exit_code.into())) {
                return POLL;
            }
            if let Some(at) = t.retry_at.filter(|at| Instant::now() < *at) {
                self.crash_loop(pod, c, t).await;
                return POLL.min(at - Instant::now());
            }
            t.restarts += 1;
            t.retry_at = None;
        }
        self.start(pod, c, t).await;
        SOON
    }

    /// Looks at the running instance: has it ended, does its spec still hold, do its probes pass.
    async fn check_running(
        &self,
        pod: &Pod,
        c: &Container,
        t: &mut Track,
        policy: RestartPolicy,
    ) -> Duration {
        let Some(inst) = t.current.clone() else {
            return POLL;
        };
        // The runtime is asked only when the container has left its exit code, or now and
        // then in case it vanished without one; between those it is taken to be running.
        let asked_lately = t
            .state_asked_at
            .is_some_and(|at| at.elapsed() < STATE_REFRESH);
        let state = if asked_lately && !self.machine.has_exited(&inst.id) {
            Ok(Some(RunState::Running))
        } else {
            t.state_asked_at = Some(Instant::now());
            self.machine.state(&inst.id).await
        };
        let state = match state {
            Ok(state) => state,
            Err(err) => {
                // A runtime that cannot answer says nothing about the container: ask again.
                tracing::warn!(container = %c.name, %err, "the runtime could not tell the container's state");
                return POLL;
            }
        };
        if matches!(state, Some(RunState::Running | RunState::Created)) {
            if let Some(since) = t.running_since {
                t.backoff.ran_for(since.elapsed());
            }
            let wanted = c.image.as_deref().unwrap_or("");
            if !inst.image.is_empty() && inst.image != wanted && !t.replacing {
                let note = format!("Container {} definition changed, will be restarted", c.name);
                self.stop(pod, &c.name, &inst, note, pod_grace(pod)).await;
                t.replacing = true;
                return SOON;
            }
            return self.run_probes(pod, c, t, &inst, policy).await;
        }
        self.record_exit(pod, c, t, &inst, state.is_some(), policy)
            .await
    }

    /// Records how the instance ended and schedules its restart when the policy says so.
    async fn record_exit(
        &self,
        pod: &Pod,
        c: &Container,
        t: &mut Track,
        inst: &Instance,
        known: bool,
        policy: RestartPolicy,
    ) -> Duration {
        let mut exit = self.machine.exit(pod, c, inst).await;
        let code = match exit.code {
            Some(code) => code,
            // The exit code is written just after the runtime reports the container stopped:
            // look again shortly rather than record a made-up code.
            None if known
                && t.exit_seen.get_or_insert_with(Instant::now).elapsed() < EXIT_FILE_WAIT =>
            {
                return SOON;
            }
            // Gone without a word (or killed by the kernel): as SIGKILL.
            None if !known || exit.oom_killed => 137,
            // Stopped, and nobody wrote how: its monitor died before it did. Not a success.
            None => {
                exit.message
                    .get_or_insert_with(|| UNKNOWN_EXIT_MESSAGE.into());
                UNKNOWN_EXIT_CODE
            }
        };
        t.exit_seen = None;
        t.last_terminated = Some(ContainerStateTerminated {
            message: exit.message.clone(),
            exit_code: code,
            reason: Some(lifecycle::termination_reason(exit.oom_killed, code).into()),
            started_at: Some(inst.started_at.clone()),
            finished_at: Some(now()),
            container_id: Some(self.container_id(&inst.id)),
            ..Default::default()
        });
        t.current = None;
        t.running_since = None;
        t.probes.clear();
        let record = Record {
            instance: inst.clone(),
            last_terminated: t.last_terminated.clone(),
        };
        self.machine.save(pod, &c.name, &record);
        self.machine.remove(&inst.id).await;
        if !(t.replacing || policy.restarts(code.into())) {
            return POLL;
        }
        // The first restart is immediate; then 10 s, doubling up to 5 min. A container stopped
        // for a changed spec starts again at once.
        let delay = if t.replacing {
            Duration::ZERO
        } else {
            t.backoff.next_delay()
        };
        t.retry_at = Some(Instant::now() + delay);
        t.delay = delay;
        // Publish how it ended (OOMKilled, Error, …) before anything restarts it.
        t.waiting = None;
        SOON
    }

    /// Waiting out the crash back-off: `CrashLoopBackOff` and the kubelet's `BackOff` event.
    async fn crash_loop(&self, pod: &Pod, c: &Container, t: &mut Track) {
        let who = status::pod_name(pod);
        let message = format!(
            "back-off {}s restarting failed container={} pod={who}",
            t.delay.as_secs(),
            c.name
        );
        if t.waiting.as_ref().map(|w| w.0.as_str()) != Some("CrashLoopBackOff") {
            let note = format!(
                "Back-off restarting failed container {} in pod {who}",
                c.name
            );
            self.event(pod, true, "BackOff", note, self.field(&c.name))
                .await;
        }
        t.waiting = Some(("CrashLoopBackOff".into(), message));
    }

    /// Runs the probes that are due; a failed liveness or startup probe stops the instance.
    async fn run_probes(
        &self,
        pod: &Pod,
        c: &Container,
        t: &mut Track,
        inst: &Instance,
        policy: RestartPolicy,
    ) -> Duration {
        let Some(sandbox) = &self.sandbox else {
            return POLL;
        };
        let now = Instant::now();
        let started = t.passing(ProbeKind::Startup);
        let mut failed = None;
        for p in t.probes.iter_mut() {
            // Until the startup probe passes, it is the only one that runs.
            if !p.due(now) || (started == (p.kind == ProbeKind::Startup)) {
                continue;
            }
            let target = ProbeTarget {
                pod,
                pod_ip: &sandbox.ip,
                container: c,
                instance_id: &inst.id,
            };
            let outcome = self.machine.probe(target, &p.probe).await;
            self.probe_event(pod, c, p.kind, &outcome).await;
            let changed = match outcome {
                ProbeOutcome::Unknown(_) => {
                    p.skip(Instant::now());
                    None
                }
                ProbeOutcome::Failure(_) => p.record(Instant::now(), false),
                ProbeOutcome::Success | ProbeOutcome::Warning(_) => p.record(Instant::now(), true),
            };
            if changed == Some(false) && p.kind != ProbeKind::Readiness {
                failed = Some((p.kind, p.grace(pod_grace(pod))));
            }
        }
        if let Some((kind, grace)) = failed {
            let word = if kind == ProbeKind::Liveness {
                "liveness"
            } else {
                "startup"
            };
            let mut note = format!("Container {} failed {word} probe", c.name);
            if policy != RestartPolicy::Never {
                note.push_str(", will be restarted");
            }
            self.stop(pod, &c.name, inst, note, grace).await;
            return SOON;
        }
        let next = t.probes.iter().map(Prober::next_at).min();
        next.map_or(POLL, |at| {
            POLL.min(at.saturating_duration_since(Instant::now()))
        })
    }

    async fn probe_event(&self, pod: &Pod, c: &Container, kind: ProbeKind, outcome: &ProbeOutcome) {
        let (reason, note) = match outcome {
            ProbeOutcome::Success => return,
            ProbeOutcome::Failure(out) => {
                ("Unhealthy", format!("{} probe failed: {out}", kind.title()))
            }
            ProbeOutcome::Warning(out) => (
                "ProbeWarning",
                format!("{} probe warning: {out}", kind.title()),
            ),
            ProbeOutcome::Unknown(err) => (
                "Unhealthy",
                format!(
                    "{} probe errored and resulted in unknown state: {err}",
                    kind.title()
                ),
            ),
        };
        self.event(pod, true, reason, note, self.field(&c.name))
            .await;
    }

    /// Starts the container's next instance, fetching its image first as its pull policy says.
    async fn start(&self, pod: &Pod, c: &Container, t: &mut Track) {
        if t.start_retry_at.is_some_and(|at| Instant::now() < at) {
            self.image_back_off(pod, c, t).await;
            return;
        }
        let image = c.image.clone().unwrap_or_default();
        let Some(pulled) = self.fetch_image(pod, c, t, &image).await else {
            return;
        };
        let pulled = pulled.or_else(|| {
            (t.restarts == 0 && t.last_terminated.is_none())
                .then(|| format!("Container image \"{image}\" already present on machine"))
        });
        if let Some(note) = pulled {
            self.event(pod, false, "Pulled", note, self.field(&c.name))
                .await;
        }
        let running = match self.environment(pod, c).await {
            Ok(running) => running,
            Err(err) => {
                let reason = "CreateContainerConfigError";
                self.start_failure(pod, c, t, reason, err.clone(), &err)
                    .await;
                return;
            }
        };
        let c = &running;
        let mounts = match volumes::mounts(c, &self.volumes.made) {
            Ok(m) => m,
            Err(err) => {
                let reason = "CreateContainerConfigError";
                self.start_failure(pod, c, t, reason, err.clone(), &err)
                    .await;
                return;
            }
        };
        let uid = pod.uid().unwrap_or_default();
        let id = format!("{}-{}-{}", &uid[..uid.len().min(8)], c.name, t.restarts);
        match self.machine.start(pod, c, &id, t.restarts, &mounts).await {
            Ok(image_id) => {
                let created = format!("Created container: {}", c.name);
                self.event(pod, false, "Created", created, self.field(&c.name))
                    .await;
                let started = format!("Started container {}", c.name);
                self.event(pod, false, "Started", started, self.field(&c.name))
                    .await;
                self.started(pod, c, t, id, image_id);
                if let Some(inst) = t.current.clone() {
                    self.post_start(pod, c, &inst).await;
                }
            }
            Err(err) => {
                tracing::warn!(%err, container = %c.name, "starting a container failed");
                let reason = match err {
                    MachineError::Config(_) => "CreateContainerConfigError",
                    _ => "CreateContainerError",
                };
                let message = err.to_string();
                self.start_failure(pod, c, t, reason, message.clone(), &message)
                    .await;
            }
        }
    }

    /// `c` with its environment resolved and `$(VAR)`s expanded; invalid `envFrom` names are
    /// skipped with the kubelet's event.
    async fn environment(&self, pod: &Pod, c: &Container) -> Result<Container, String> {
        // The pod's addresses as its status will say (the worker knows them first).
        let mut pod = pod.clone();
        let status = pod.status.get_or_insert_with(Default::default);
        status.pod_ip = self.sandbox.as_ref().map(|s| s.ip.clone());
        status.pod_ips = status.pod_ip.clone().map(|ip| vec![PodIP { ip }]);
        status.host_ip = self.host_ip.clone();
        status.host_ips = status.host_ip.clone().map(|ip| vec![HostIP { ip }]);
        let service = self.machine.service_env();
        let environment = env::resolve(&*self.api, &pod, c, &service).await?;
        for (source, keys) in &environment.skipped {
            let note = format!(
                "Keys [{}] from the EnvFrom {source} were skipped since they are considered invalid environment variable names.",
                keys.join(", ")
            );
            let reason = "InvalidEnvironmentVariableNames";
            self.event(&pod, true, reason, note, self.field(&c.name))
                .await;
        }
        Ok(env::applied(c, &environment))
    }

    fn started(&self, pod: &Pod, c: &Container, t: &mut Track, id: String, image_id: String) {
        let instance = Instance {
            id,
            restart: t.restarts,
            started_at: now(),
            image_id,
            image: c.image.clone().unwrap_or_default(),
        };
        let record = Record {
            instance: instance.clone(),
            last_terminated: t.last_terminated.clone(),
        };
        self.machine.save(pod, &c.name, &record);
        t.current = Some(instance);
        t.running_since = Some(Instant::now());
        // The runtime has just said it started: no need to ask it again until it exits.
        t.state_asked_at = t.running_since;
        t.probes = probers(c, Instant::now());
        t.waiting = None;
        t.start_retry_at = None;
        t.start_backoff = None;
        t.replacing = false;
    }

    /// Makes sure the image is there. `Some(note)` after a pull, `Some(None)` when it was
    /// present, `None` when the container cannot start now (the failure is recorded).
    async fn fetch_image(
        &self,
        pod: &Pod,
        c: &Container,
        t: &mut Track,
        image: &str,
    ) -> Option<Option<String>> {
        let present = self.machine.has_image(image).await;
        match lifecycle::image_action(c.image_pull_policy.as_deref(), present) {
            ImageAction::UsePresent => Some(None),
            ImageAction::NeverPull => {
                let message =
                    format!("Container image \"{image}\" is not present with pull policy of Never");
                self.event(
                    pod,
                    true,
                    "ErrImageNeverPull",
                    message.clone(),
                    self.field(&c.name),
                )
                .await;
                self.start_failure(pod, c, t, "ErrImageNeverPull", message, "ErrImageNeverPull")
                    .await;
                None
            }
            ImageAction::Pull => {
                let (credentials, missing) = pull_secrets::credentials(&*self.api, pod).await;
                if !missing.is_empty() {
                    let note = format!("Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.", missing.join(", "));
                    let reason = "FailedToRetrieveImagePullSecret";
                    self.event(pod, true, reason, note, None).await;
                }
                let note = format!("Pulling image \"{image}\"");
                self.event(pod, false, "Pulling", note, self.field(&c.name))
                    .await;
                match self.machine.pull(image, &credentials).await {
                    Ok(summary) => Some(Some(summary)),
                    Err(err) => {
                        let message = format!("failed to pull and unpack image \"{image}\": {err}");
                        let note = format!("Failed to pull image \"{image}\": {message}");
                        self.event(pod, true, "Failed", note, self.field(&c.name))
                            .await;
                        self.start_failure(pod, c, t, "ErrImagePull", message, "ErrImagePull")
                            .await;
                        None
                    }
                }
            }
        }
    }

    /// Still backing off a start failure: an image failure turns into `ImagePullBackOff`.
    async fn image_back_off(&self, pod: &Pod, c: &Container, t: &mut Track) {
        if t.waiting.as_ref().is_none_or(|w| w.0 != "ErrImagePull") {
            return;
        }
        let image = c.image.clone().unwrap_or_default();
        let message = format!("Back-off pulling image \"{image}\"");
        t.waiting = Some(("ImagePullBackOff".into(), message.clone()));
        self.event(pod, false, "BackOff", message, self.field(&c.name))
            .await;
        let note = "Error: ImagePullBackOff".to_string();
        self.event(pod, true, "Failed", note, self.field(&c.name))
            .await;
    }

    /// A container that could not start: the `Error: …` event (`what`), the waiting reason, and
    /// the back-off before the next attempt.
    async fn start_failure(
        &self,
        pod: &Pod,
        c: &Container,
        t: &mut Track,
        reason: &str,
        message: String,
        what: &str,
    ) {
        let note = format!("Error: {what}");
        self.event(pod, true, "Failed", note, self.field(&c.name))
            .await;
        t.waiting = Some((reason.into(), message));
        t.start_failed();
    }

    /// A `Killing` event with `note`, the container's `preStop` hook, then SIGTERM, and SIGKILL
    /// once what is left of `grace` has passed.
    async fn stop(&self, pod: &Pod, name: &str, inst: &Instance, note: String, grace: Duration) {
        self.event(pod, false, "Killing", note, self.field(name))
            .await;
        let left = self.pre_stop(pod, name, inst, grace).await;
        self.stop_quietly(&inst.id, left).await;
    }

    async fn stop_quietly(&self, id: &str, grace: Duration) {
        if let Err(err) = self.machine.kill(id, Signal::Term).await {
            tracing::warn!(%err, "sending SIGTERM failed");
        }
        // A grace period past what a clock can count (the API allows any int64) never ends.
        let deadline = Instant::now().checked_add(grace);
        while deadline.is_none_or(|d| Instant::now() < d) {
            match self.machine.state(id).await {
                Ok(Some(RunState::Running)) | Err(_) => tokio::time::sleep(STOP_POLL).await,
                _ => return,
            }
        }
        if let Err(err) = self.machine.kill(id, Signal::Kill).await {
            tracing::warn!(%err, "sending SIGKILL failed");
        }
    }

    /// Ends a pod past its deadline as the kubelet does: an event, then every container stopped.
    async fn end_for_deadline(&self, pod: &Pod) {
        let note = status::DEADLINE_MESSAGE.to_string();
        self.event(pod, true, "DeadlineExceeded", note, None).await;
        for (name, t) in &self.tracks {
            if let Some(inst) = &t.current {
                let note = format!("Stopping container {name}");
                self.stop(pod, name, inst, note, pod_grace(pod)).await;
            }
        }
    }

    /// Stops every container (SIGTERM, SIGKILL after the deletion's grace period), removes
    /// everything of the pod from the machine, and lets the API server delete the object.
    pub async fn terminate(&mut self, pod: &Pod) {
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .map_or(pod_grace(pod), |s| Duration::from_secs(s.max(0) as u64));
        let running: Vec<(String, Instance)> = self
            .tracks
            .iter()
            .filter_map(|(name, t)| t.current.clone().map(|i| (name.clone(), i)))
            .collect();
        let stops = running.iter().map(|(name, inst)| {
            let note = format!("Stopping container {name}");
            self.stop(pod, name, inst, note, grace)
        });
        futures::future::join_all(stops).await;
        self.machine.teardown(pod).await;
        self.api.deleted(pod).await;
    }
}

fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: Some(message.to_string()).filter(|m| !m.is_empty()),
        }),
        ..Default::default()
    }
}

/// The probes a container declares, for an instance that started at `started`.
fn probers(c: &Container, started: Instant) -> Vec<Prober> {
    [
        ProbeKind::Startup,
        ProbeKind::Liveness,
        ProbeKind::Readiness,
    ]
    .into_iter()
    .filter_map(|kind| Some(Prober::new(kind, kind.of(c)?, started)))
    .collect()
}

/// Whether the pod has run longer than its `activeDeadlineSeconds` (counted from `startTime`).
fn past_deadline(pod: &Pod) -> bool {
    let Some(limit) = pod.spec.as_ref().and_then(|s| s.active_deadline_seconds) else {
        return false;
    };
    let Some(start) = pod.status.as_ref().and_then(|s| s.start_time.as_ref()) else {
        return false;
    };
    Timestamp::now().duration_since(start.0).as_secs() >= limit
}

/// Runs a pod's worker until the pod is deleted and cleaned up; new versions of the pod arrive
/// on `updates`.
pub async fn run<M: Machine, R: PodApi>(
    mut worker: PodWorker<M, R>,
    mut updates: watch::Receiver<Pod>,
) {
    let first = updates.borrow().clone();
    worker.adopt(&first).await;
    loop {
        let pod = updates.borrow_and_update().clone();
        if pod.metadata.deletion_timestamp.is_some() {
            worker.terminate(&pod).await;
            return;
        }
        let wait = worker.sync(&pod).await;
        // Wake on a new pod version, or to look at the containers again.
        let _ = tokio::time::timeout(wait, updates.changed()).await;
        if updates.has_changed().is_err() {
            return;
        }
    }
}
