//! The pod worker's lifecycle on an in-memory machine and api: restart policies, back-off,
//! image pull policies, probes, graceful termination and runtime failures, with tokio's clock
//! paused so that minutes of back-off pass at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerState, Pod, PodStatus, Probe, Secret,
};
use serde_json::json;

use crate::machine::*;
use crate::worker::PodWorker;

#[derive(Default)]
struct FakeContainer {
    state: Option<RunState>,
    code: Option<i32>,
    oom: bool,
    message: Option<String>,
    /// Signals, with when they came.
    signals: Vec<Signal>,
    signalled_at: Vec<tokio::time::Instant>,
}

#[derive(Default)]
struct World {
    images: HashSet<String>,
    pull_error: Option<String>,
    start_error: Option<String>,
    /// The runtime cannot answer state queries.
    state_error: bool,
    /// Containers end at SIGTERM (else only SIGKILL ends them).
    exit_on_term: bool,
    containers: HashMap<String, FakeContainer>,
    started: Vec<String>,
    pulls: usize,
    /// Probe answers by the probe's `httpGet.path`; success when absent.
    probe_answers: HashMap<String, ProbeOutcome>,
    probes_made: Vec<String>,
    records: HashMap<String, Record>,
    torn_down: bool,
    volumes: HashMap<String, crate::volumes::Source>,
    mounts: HashMap<String, Vec<crate::volumes::Mount>>,
    /// Each instance's container as the machine was asked to run it.
    ran: HashMap<String, Container>,
    /// Commands run in containers: (instance, command, when).
    execs: Vec<(String, String, tokio::time::Instant)>,
    /// What a command answers (exit code, output); success when absent.
    exec_answers: HashMap<String, (i32, String)>,
    /// How often the runtime was asked for a container's state.
    state_queries: usize,
    /// The credentials the last pull was given.
    pull_credentials: Vec<runtime::image::pull::Credential>,
}

#[derive(Default)]
struct FakeMachine(Mutex<World>);

impl FakeMachine {
    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.0.lock().expect("world"))
    }

    /// The newest instance of the container named `name`.
    fn latest(&self, name: &str) -> String {
        self.with(|w| {
            w.started
                .iter()
                .rev()
                .find(|id| id.contains(&format!("-{name}-")))
                .cloned()
                .expect("a started instance")
        })
    }

    fn exit(&self, name: &str, code: i32) {
        self.end(name, |b| b.code = Some(code));
    }

    /// Stops the newest instance of `name`, with `how` setting its exit code, OOM mark, message.
    fn end(&self, name: &str, how: impl FnOnce(&mut FakeContainer)) {
        let id = self.latest(name);
        self.with(|w| {
            let b = w.containers.get_mut(&id).expect("container");
            b.state = Some(RunState::Stopped);
            how(b);
        });
    }

    fn signals(&self, name: &str) -> Vec<Signal> {
        let id = self.latest(name);
        self.with(|w| w.containers[&id].signals.clone())
    }
}

impl Machine for FakeMachine {
    fn runtime_name(&self) -> String {
        "fake".into()
    }

    fn service_env(&self) -> Vec<(String, String)> {
        vec![("KUBERNETES_SERVICE_HOST".into(), "10.0.0.1".into())]
    }

    async fn sandbox(&self, _: &Pod) -> MachineResult<PodSandbox> {
        Ok(PodSandbox {
            ip: "10.0.0.9".into(),
        })
    }

    async fn has_image(&self, reference: &str) -> bool {
        self.with(|w| w.images.contains(reference))
    }

    async fn pull(
        &self,
        reference: &str,
        credentials: &[runtime::image::pull::Credential],
    ) -> MachineResult<String> {
        self.with(|w| {
            w.pulls += 1;
            w.pull_credentials = credentials.to_vec();
            match &w.pull_error {
                Some(e) => Err(MachineError::Other(e.clone())),
                None => {
                    w.images.insert(reference.into());
                    Ok(format!("Successfully pulled image \"{reference}\""))
                }
            }
        })
    }

    async fn volume(
        &self,
        _: &Pod,
        name: &str,
        source: &crate::volumes::Source,
    ) -> MachineResult<std::path::PathBuf> {
        self.with(|w| {
            w.volumes.insert(name.into(), source.clone());
            Ok(std::path::PathBuf::from("/volumes").join(name))
        })
    }

    async fn start(
        &self,
        _: &Pod,
        c: &Container,
        id: &str,
        _: i32,
        mounts: &[crate::volumes::Mount],
    ) -> MachineResult<String> {
        self.with(|w| {
            w.mounts.insert(id.into(), mounts.to_vec());
            w.ran.insert(id.into(), c.clone());
            if let Some(e) = &w.start_error {
                return Err(MachineError::Other(e.clone()));
            }
            w.started.push(id.into());
            w.containers.insert(
                id.into(),
                FakeContainer {
                    state: Some(RunState::Running),
                    ..Default::default()
                },
            );
            Ok("sha256:abc".into())
        })
    }

    fn has_exited(&self, id: &str) -> bool {
        self.with(|w| {
            w.containers
                .get(id)
                .is_none_or(|b| b.code.is_some() || b.state != Some(RunState::Running))
        })
    }

    async fn state(&self, id: &str) -> MachineResult<Option<RunState>> {
        self.with(|w| w.state_queries += 1);
        self.with(|w| {
            if w.state_error {
                return Err(MachineError::Other("runtime busy".into()));
            }
            Ok(w.containers.get(id).and_then(|b| b.state))
        })
    }

    async fn exit(&self, _: &Pod, _: &Container, inst: &Instance) -> Exit {
        self.with(|w| {
            w.containers
                .get(&inst.id)
                .map_or(Exit::default(), |b| Exit {
                    code: b.code,
                    oom_killed: b.oom,
                    message: b.message.clone(),
                })
        })
    }

    async fn exec(
        &self,
        id: &str,
        command: Vec<String>,
        _: Duration,
    ) -> MachineResult<(i32, String)> {
        let line = command.join(" ");
        self.with(|w| {
            w.execs
                .push((id.to_string(), line.clone(), tokio::time::Instant::now()));
            Ok(w.exec_answers
                .get(&line)
                .cloned()
                .unwrap_or((0, String::new())))
        })
    }

    async fn kill(&self, id: &str, signal: Signal) -> MachineResult<()> {
        self.with(|w| {
            let exit_on_term = w.exit_on_term;
            if let Some(b) = w.containers.get_mut(id) {
                b.signals.push(signal);
                b.signalled_at.push(tokio::time::Instant::now());
                if signal == Signal::Kill || exit_on_term {
                    b.state = Some(RunState::Stopped);
                    b.code = Some(if signal == Signal::Kill { 137 } else { 143 });
                }
            }
            Ok(())
        })
    }

    async fn remove(&self, id: &str) {
        self.with(|w| {
            if let Some(b) = w.containers.get_mut(id) {
                b.state = None;
            }
        });
    }

    async fn teardown(&self, _: &Pod) {
        self.with(|w| w.torn_down = true);
    }

    async fn probe(&self, _: ProbeTarget<'_>, probe: &Probe) -> ProbeOutcome {
        let path = probe
            .http_get
            .as_ref()
            .and_then(|h| h.path.clone())
            .unwrap_or_default();
        self.with(|w| {
            w.probes_made.push(path.clone());
            w.probe_answers
                .get(&path)
                .cloned()
                .unwrap_or(ProbeOutcome::Success)
        })
    }

    fn save(&self, _: &Pod, container: &str, record: &Record) {
        self.with(|w| w.records.insert(container.into(), record.clone()));
    }

    fn load(&self, _: &Pod, container: &str) -> Option<Record> {
        self.with(|w| w.records.get(container).cloned())
    }
}

#[derive(Default)]
struct FakeApi {
    events: Mutex<Vec<PodEvent>>,
    statuses: Mutex<Vec<PodStatus>>,
    deleted: Mutex<bool>,
    config_maps: Mutex<HashMap<String, ConfigMap>>,
    tokens_issued: Mutex<usize>,
}

impl PodApi for FakeApi {
    async fn config_map(&self, _: &str, name: &str) -> MachineResult<Option<ConfigMap>> {
        Ok(self.config_maps.lock().expect("cms").get(name).cloned())
    }

    async fn secret(&self, _: &str, _: &str) -> MachineResult<Option<Secret>> {
        Ok(None)
    }

    async fn token(&self, _: &Pod, _: Vec<String>, seconds: i64) -> MachineResult<IssuedToken> {
        let mut n = self.tokens_issued.lock().expect("tokens");
        *n += 1;
        Ok(IssuedToken {
            token: format!("token-{n}"),
            lifetime: Duration::from_secs(seconds as u64),
        })
    }

    async fn event(&self, _: &Pod, event: PodEvent) {
        self.events.lock().expect("events").push(event);
    }

    async fn status(&self, _: &Pod, status: &PodStatus) -> bool {
        self.statuses.lock().expect("statuses").push(status.clone());
        true
    }

    async fn deleted(&self, _: &Pod) {
        *self.deleted.lock().expect("deleted") = true;
    }
}

impl FakeApi {
    /// Every event as "Reason: note".
    fn events(&self) -> Vec<String> {
        let events = self.events.lock().expect("events");
        events
            .iter()
            .map(|e| format!("{}: {}", e.reason, e.note))
            .collect()
    }

    fn has(&self, wanted: &str) -> bool {
        self.events().iter().any(|e| e == wanted)
    }

    fn count(&self, prefix: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
    }

    fn last(&self) -> PodStatus {
        let statuses = self.statuses.lock().expect("statuses");
        statuses.last().cloned().expect("a status")
    }

    fn phase(&self) -> String {
        self.last().phase.unwrap_or_default()
    }

    fn state(&self, container: &str) -> ContainerState {
        let status = self.last();
        let c = status
            .container_statuses
            .iter()
            .flatten()
            .find(|c| c.name == container)
            .expect("container status")
            .clone();
        c.state.expect("state")
    }

    fn waiting(&self, container: &str) -> Option<(String, String)> {
        self.state(container)
            .waiting
            .map(|w| (w.reason.unwrap_or_default(), w.message.unwrap_or_default()))
    }

    fn restarts(&self, container: &str) -> i32 {
        let status = self.last();
        status
            .container_statuses
            .iter()
            .flatten()
            .find(|c| c.name == container)
            .map_or(-1, |c| c.restart_count)
    }

    fn ready(&self, container: &str) -> bool {
        let status = self.last();
        status
            .container_statuses
            .iter()
            .flatten()
            .any(|c| c.name == container && c.ready)
    }
}

struct Harness {
    machine: Arc<FakeMachine>,
    api: Arc<FakeApi>,
    worker: PodWorker<FakeMachine, FakeApi>,
    pod: Pod,
}

fn pod(spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default", "uid": "0123456789abcdef"},
        "spec": spec,
    }))
    .expect("pod")
}

fn one_container(policy: &str, extra: serde_json::Value) -> Pod {
    let mut c = json!({"name": "c", "image": "demo:1", "imagePullPolicy": "IfNotPresent"});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    pod(json!({"restartPolicy": policy, "containers": [c]}))
}

impl Harness {
    fn new(pod: Pod) -> Self {
        let machine = Arc::new(FakeMachine::default());
        machine.with(|w| w.images.insert("demo:1".into()));
        let api = Arc::new(FakeApi::default());
        let worker = PodWorker::new(machine.clone(), api.clone(), Some("192.0.2.1".into()));
        Harness {
            machine,
            api,
            worker,
            pod,
        }
    }

    async fn sync(&mut self) {
        self.worker.sync(&self.pod).await;
    }

    /// Passes as the worker loop would for `d`, letting the clock run.
    async fn run_for(&mut self, d: Duration) {
        let end = tokio::time::Instant::now() + d;
        while tokio::time::Instant::now() < end {
            let wait = self.worker.sync(&self.pod).await;
            tokio::time::advance(wait.max(Duration::from_millis(1))).await;
        }
    }

    fn started(&self) -> usize {
        self.machine.with(|w| w.started.len())
    }
}

#[tokio::test(start_paused = true)]
async fn a_container_starts_with_the_kubelets_events_and_runs() {
    let mut h = Harness::new(one_container("Always", json!({})));
    h.sync().await;
    assert_eq!(
        h.api.events(),
        [
            "Pulled: Container image \"demo:1\" already present on machine",
            "Created: Created container: c",
            "Started: Started container c",
        ]
    );
    assert_eq!(h.api.phase(), "Running");
    assert!(h.api.state("c").running.is_some());
    assert!(h.api.ready("c"), "no readiness probe: ready once running");
    let status = h.api.last();
    assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.9"));
    assert_eq!(status.host_ip.as_deref(), Some("192.0.2.1"));
    let before = h.api.statuses.lock().expect("s").len();
    h.sync().await;
    let after = h.api.statuses.lock().expect("s").len();
    assert_eq!(before, after, "an unchanged status is not written again");
}

#[tokio::test(start_paused = true)]
async fn restart_policies_decide_by_exit_code_and_end_in_the_right_phase() {
    let cases = [
        ("Always", 0, true, "Running"),
        ("Always", 1, true, "Running"),
        ("OnFailure", 0, false, "Succeeded"),
        ("OnFailure", 2, true, "Running"),
        ("Never", 0, false, "Succeeded"),
        ("Never", 1, false, "Failed"),
    ];
    for (policy, code, restarts, phase) in cases {
        let mut h = Harness::new(one_container(policy, json!({})));
        h.sync().await;
        h.machine.exit("c", code);
        h.run_for(Duration::from_millis(100)).await;
        let case = format!("{policy} exit {code}");
        assert_eq!(h.started(), if restarts { 2 } else { 1 }, "{case}");
        assert_eq!(h.api.phase(), phase, "{case}");
        if !restarts {
            let t = h.api.state("c").terminated.expect("terminated");
            assert_eq!(t.exit_code, code, "{case}");
            let reason = if code == 0 { "Completed" } else { "Error" };
            assert_eq!(t.reason.as_deref(), Some(reason), "{case}");
        } else {
            assert_eq!(h.api.restarts("c"), 1, "{case}");
            let last = h.api.last().container_statuses.expect("s")[0]
                .last_state
                .clone()
                .and_then(|s| s.terminated)
                .expect("lastState.terminated");
            assert_eq!(last.exit_code, code, "{case}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn crash_loops_back_off_10_s_doubling_to_5_minutes() {
    let mut h = Harness::new(one_container("Always", json!({})));
    h.sync().await;
    // The first restart is at once; then 10 s, 20 s, 40 s …
    let mut waits = Vec::new();
    for _ in 0..7 {
        h.machine.exit("c", 1);
        let before = h.started();
        let since = tokio::time::Instant::now();
        while h.started() == before {
            h.run_for(Duration::from_millis(500)).await;
        }
        waits.push(since.elapsed().as_secs());
    }
    // An exit is seen within a pass (a second), so each wait may be that much longer.
    let expected = [0, 10, 20, 40, 80, 160, 300];
    let within = waits
        .iter()
        .zip(expected)
        .all(|(w, e)| (e..=e + 1).contains(w));
    assert!(
        within,
        "waits {waits:?}, expected {expected:?} (+ up to 1 s)"
    );
    h.machine.exit("c", 1);
    h.run_for(Duration::from_secs(1)).await;
    let (reason, message) = h.api.waiting("c").expect("waiting");
    assert_eq!(reason, "CrashLoopBackOff");
    assert_eq!(
        message,
        "back-off 300s restarting failed container=c pod=p_default(0123456789abcdef)"
    );
    assert!(h
        .api
        .has("BackOff: Back-off restarting failed container c in pod p_default(0123456789abcdef)"));
    assert_eq!(h.api.phase(), "Running", "a crash-looping pod is Running");
}

#[tokio::test(start_paused = true)]
async fn ten_minutes_of_running_forgets_the_back_off() {
    let mut h = Harness::new(one_container("Always", json!({})));
    h.sync().await;
    for _ in 0..3 {
        h.machine.exit("c", 1);
        h.run_for(Duration::from_secs(45)).await;
    }
    let before = h.started();
    h.run_for(Duration::from_secs(601)).await;
    h.machine.exit("c", 1);
    h.run_for(Duration::from_millis(100)).await;
    assert_eq!(
        h.started(),
        before + 1,
        "restarted at once after a long run"
    );
}

#[tokio::test(start_paused = true)]
async fn pull_policies_pull_use_or_refuse() {
    let mut h = Harness::new(one_container(
        "Always",
        json!({"imagePullPolicy": "Always"}),
    ));
    h.sync().await;
    assert!(h.api.has("Pulling: Pulling image \"demo:1\""));
    assert_eq!(
        h.machine.with(|w| w.pulls),
        1,
        "Always pulls a present image"
    );

    let mut h = Harness::new(one_container(
        "Always",
        json!({"image": "absent:1", "imagePullPolicy": "Never"}),
    ));
    h.sync().await;
    let (reason, message) = h.api.waiting("c").expect("waiting");
    assert_eq!(reason, "ErrImageNeverPull");
    assert_eq!(
        message,
        "Container image \"absent:1\" is not present with pull policy of Never"
    );
    assert_eq!((h.started(), h.machine.with(|w| w.pulls)), (0, 0));

    let mut h = Harness::new(one_container("Always", json!({"image": "gone:1"})));
    h.machine.with(|w| w.pull_error = Some("not found".into()));
    h.sync().await;
    assert_eq!(h.api.waiting("c").expect("w").0, "ErrImagePull");
    h.run_for(Duration::from_secs(1)).await;
    assert_eq!(h.api.waiting("c").expect("w").0, "ImagePullBackOff");
    assert!(h.api.has("BackOff: Back-off pulling image \"gone:1\""));
    assert_eq!(
        h.machine.with(|w| w.pulls),
        1,
        "no pull during the back-off"
    );
    h.run_for(Duration::from_secs(10)).await;
    assert_eq!(h.machine.with(|w| w.pulls), 2, "pulled again after 10 s");
    h.machine.with(|w| w.pull_error = None);
    h.run_for(Duration::from_secs(21)).await;
    assert_eq!(h.started(), 1, "started once the pull works");
}

#[tokio::test(start_paused = true)]
async fn a_container_that_cannot_be_created_retries_with_back_off() {
    let mut h = Harness::new(one_container("Always", json!({})));
    h.machine
        .with(|w| w.start_error = Some("no such file".into()));
    h.run_for(Duration::from_secs(35)).await;
    let (reason, message) = h.api.waiting("c").expect("waiting");
    assert_eq!(
        (reason.as_str(), message.as_str()),
        ("CreateContainerError", "no such file")
    );
    // Attempts at 0 s, 10 s, 30 s.
    assert_eq!(h.api.count("Failed: Error: no such file"), 3);
}

#[tokio::test(start_paused = true)]
async fn a_runtime_that_cannot_answer_is_not_an_exit() {
    let mut h = Harness::new(one_container("Never", json!({})));
    h.sync().await;
    h.machine.with(|w| w.state_error = true);
    h.run_for(Duration::from_secs(30)).await;
    assert!(h.api.state("c").running.is_some());
    assert_eq!(h.api.phase(), "Running");
    assert_eq!(h.started(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_exit_without_a_code_waits_for_it_then_counts_as_unknown_not_success() {
    let mut h = Harness::new(one_container("Never", json!({})));
    h.sync().await;
    let id = h.machine.latest("c");
    h.machine
        .with(|w| w.containers.get_mut(&id).expect("c").state = Some(RunState::Stopped));
    h.run_for(Duration::from_secs(1)).await;
    assert!(
        h.api.state("c").running.is_some(),
        "waiting for the exit code"
    );
    h.run_for(Duration::from_secs(2)).await;
    let t = h.api.state("c").terminated.expect("terminated");
    assert_eq!((t.exit_code, t.reason.as_deref()), (255, Some("Error")));
    assert!(t.message.is_some_and(|m| m.contains("conmon")));
    assert_eq!(h.api.phase(), "Failed");
}

#[tokio::test(start_paused = true)]
async fn an_oom_kill_is_reported_as_oomkilled() {
    let mut h = Harness::new(one_container("Never", json!({})));
    h.sync().await;
    h.machine.end("c", |b| {
        b.code = Some(137);
        b.oom = true;
    });
    h.sync().await;
    let t = h.api.state("c").terminated.expect("terminated");
    assert_eq!((t.exit_code, t.reason.as_deref()), (137, Some("OOMKilled")));
}

fn deleting(mut pod: Pod, grace: i64) -> Pod {
    pod.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    pod.metadata.deletion_grace_period_seconds = Some(grace);
    pod
}

#[tokio::test(start_paused = true)]
async fn deletion_asks_with_sigterm_and_kills_after_the_grace_period() {
    let mut h = Harness::new(one_container("Always", json!({})));
    h.sync().await;
    let start = tokio::time::Instant::now();
    let pod = deleting(h.pod.clone(), 7);
    h.worker.terminate(&pod).await;
    let waited = start.elapsed();
    assert!(
        (Duration::from_secs(7)..Duration::from_secs(8)).contains(&waited),
        "SIGKILL after the 7 s grace period, not {waited:?}"
    );
    assert_eq!(h.machine.signals("c"), [Signal::Term, Signal::Kill]);
    assert!(h.api.has("Killing: Stopping container c"));
    assert!(h.machine.with(|w| w.torn_down));
    assert!(*h.api.deleted.lock().expect("d"));

    let mut h = Harness::new(one_container("Always", json!({})));
    h.machine.with(|w| w.exit_on_term = true);
    h.sync().await;
    let start = tokio::time::Instant::now();
    h.worker.terminate(&deleting(h.pod.clone(), 30)).await;
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(h.machine.signals("c"), [Signal::Term], "ended at SIGTERM");
}

#[tokio::test(start_paused = true)]
async fn an_agent_restart_adopts_a_running_container() {
    let mut h = Harness::new(one_container("Always", json!({})));
    h.sync().await;
    let api = Arc::new(FakeApi::default());
    let mut again = PodWorker::new(h.machine.clone(), api.clone(), None);
    again.adopt(&h.pod).await;
    again.sync(&h.pod).await;
    assert_eq!(h.started(), 1, "not started a second time");
    assert!(api.events().is_empty());
    assert!(api.state("c").running.is_some());
}

fn http_probe(path: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut p = json!({"httpGet": {"path": path, "port": 8080}, "periodSeconds": 10});
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    p
}

#[tokio::test(start_paused = true)]
async fn a_failing_liveness_probe_restarts_the_container_with_the_kubelets_events() {
    let probe = http_probe("/healthy", json!({"failureThreshold": 3}));
    let mut h = Harness::new(one_container("Always", json!({"livenessProbe": probe})));
    h.machine.with(|w| w.exit_on_term = true);
    h.run_for(Duration::from_secs(25)).await;
    assert_eq!(
        h.machine.with(|w| w.probes_made.len()),
        3,
        "at 0, 10 and 20 s"
    );
    assert_eq!(h.started(), 1);
    let failure = ProbeOutcome::Failure("HTTP probe failed with statuscode: 500".into());
    h.machine
        .with(|w| w.probe_answers.insert("/healthy".into(), failure));
    h.run_for(Duration::from_secs(21)).await;
    assert_eq!(
        h.api
            .count("Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 500"),
        2
    );
    assert_eq!(h.started(), 1, "two failures of three");
    h.run_for(Duration::from_secs(10)).await;
    assert!(h
        .api
        .has("Killing: Container c failed liveness probe, will be restarted"));
    assert_eq!(h.started(), 2, "restarted");
    assert_eq!(h.api.restarts("c"), 1);
}

#[tokio::test(start_paused = true)]
async fn readiness_decides_ready_and_the_pod_conditions() {
    let probe = http_probe("/ready", json!({"periodSeconds": 5}));
    let mut h = Harness::new(one_container("Always", json!({"readinessProbe": probe})));
    let failing = ProbeOutcome::Failure("HTTP probe failed with statuscode: 503".into());
    h.machine
        .with(|w| w.probe_answers.insert("/ready".into(), failing.clone()));
    h.run_for(Duration::from_secs(1)).await;
    assert!(!h.api.ready("c"), "not ready before the probe passes");
    let ready = |h: &Harness| {
        let s = h.api.last();
        let c = s.conditions.expect("conditions");
        let c = c
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready")
            .clone();
        (c.status, c.message.unwrap_or_default())
    };
    assert_eq!(
        ready(&h),
        ("False".into(), "containers with unready status: [c]".into())
    );
    h.machine.with(|w| w.probe_answers.remove("/ready"));
    h.run_for(Duration::from_secs(5)).await;
    assert!(h.api.ready("c"));
    assert_eq!(ready(&h), ("True".into(), String::new()));
    h.machine
        .with(|w| w.probe_answers.insert("/ready".into(), failing));
    h.run_for(Duration::from_secs(11)).await;
    assert!(h.api.ready("c"), "two failures of three keep it ready");
    h.run_for(Duration::from_secs(5)).await;
    assert!(!h.api.ready("c"));
    assert_eq!(h.started(), 1, "readiness never restarts a container");
}

#[tokio::test(start_paused = true)]
async fn the_startup_probe_holds_back_the_others_until_it_passes() {
    let c = json!({
        "startupProbe": http_probe("/started", json!({"periodSeconds": 1, "failureThreshold": 30})),
        "livenessProbe": http_probe("/healthy", json!({})),
    });
    let mut h = Harness::new(one_container("Always", c));
    let failing = ProbeOutcome::Failure("HTTP probe failed with statuscode: 500".into());
    h.machine
        .with(|w| w.probe_answers.insert("/started".into(), failing));
    h.run_for(Duration::from_secs(5)).await;
    let made = h.machine.with(|w| w.probes_made.clone());
    assert!(made.iter().all(|p| p == "/started"), "{made:?}");
    let status = h.api.last().container_statuses.expect("s")[0].clone();
    assert_eq!((status.started, status.ready), (Some(false), false));
    h.machine.with(|w| w.probe_answers.remove("/started"));
    h.run_for(Duration::from_secs(2)).await;
    assert!(h
        .machine
        .with(|w| w.probes_made.contains(&"/healthy".to_string())));
    let status = h.api.last().container_statuses.expect("s")[0].clone();
    assert_eq!((status.started, status.ready), (Some(true), true));
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_cannot_be_made_changes_nothing() {
    let probe = http_probe("/healthy", json!({"failureThreshold": 1}));
    let mut h = Harness::new(one_container("Never", json!({"livenessProbe": probe})));
    let unknown = ProbeOutcome::Unknown("couldn't find port: web in c".into());
    h.machine
        .with(|w| w.probe_answers.insert("/healthy".into(), unknown));
    h.run_for(Duration::from_secs(30)).await;
    assert!(h.api.has(
        "Unhealthy: Liveness probe errored and resulted in unknown state: couldn't find port: web in c"
    ));
    assert_eq!(h.machine.signals("c"), [], "no kill");
}

#[tokio::test(start_paused = true)]
async fn a_liveness_kill_under_restart_policy_never_does_not_promise_a_restart() {
    let probe = http_probe("/healthy", json!({"failureThreshold": 1}));
    let mut h = Harness::new(one_container("Never", json!({"livenessProbe": probe})));
    h.machine.with(|w| {
        w.exit_on_term = true;
        w.probe_answers
            .insert("/healthy".into(), ProbeOutcome::Failure("x".into()));
    });
    h.run_for(Duration::from_secs(1)).await;
    assert!(h.api.has("Killing: Container c failed liveness probe"));
    assert_eq!(h.api.phase(), "Failed");
    assert_eq!(h.started(), 1);
}

fn config_map(name: &str, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).expect("cm")
}

fn files(source: &crate::volumes::Source) -> Vec<(String, String)> {
    match source {
        crate::volumes::Source::Files { files, .. } => files
            .iter()
            .map(|f| {
                (
                    f.path.clone(),
                    String::from_utf8_lossy(&f.data).into_owned(),
                )
            })
            .collect(),
        other => panic!("not files: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn containers_wait_for_their_volumes_and_mount_them() {
    let mut p = one_container(
        "Always",
        json!({"volumeMounts": [{"name": "cfg", "mountPath": "/etc/app"}, {"name": "scratch", "mountPath": "/tmp/s"}]}),
    );
    p.spec.as_mut().expect("spec").volumes = Some(
        serde_json::from_value(json!([
            {"name": "cfg", "configMap": {"name": "app"}},
            {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        ]))
        .expect("volumes"),
    );
    let mut h = Harness::new(p);
    h.run_for(Duration::from_secs(3)).await;
    assert_eq!(h.started(), 0, "no container before its volumes");
    assert!(h.api.has(
        "FailedMount: MountVolume.SetUp failed for volume \"cfg\" : configmap \"app\" not found"
    ));
    assert_eq!(h.api.waiting("c").expect("waiting").0, "ContainerCreating");
    h.api
        .config_maps
        .lock()
        .expect("cms")
        .insert("app".into(), config_map("app", json!({"app.conf": "one"})));
    h.run_for(Duration::from_secs(5)).await;
    assert_eq!(h.started(), 1, "started once the config map exists");
    let scratch = h.machine.with(|w| w.volumes["scratch"].clone());
    assert_eq!(
        scratch,
        crate::volumes::Source::EmptyDir {
            memory: true,
            size_limit: Some(64 << 20),
            fs_group: None,
        }
    );
    let id = h.machine.latest("c");
    let mounts = h.machine.with(|w| w.mounts[&id].clone());
    let cfg = mounts
        .iter()
        .find(|m| m.container_path == "/etc/app")
        .expect("cfg mount");
    assert!(cfg.read_only, "config maps mount read-only");
    // An update reaches the running pod at the next resync.
    h.api
        .config_maps
        .lock()
        .expect("cms")
        .insert("app".into(), config_map("app", json!({"app.conf": "two"})));
    h.run_for(Duration::from_secs(11)).await;
    let cfg = h.machine.with(|w| w.volumes["cfg"].clone());
    assert_eq!(files(&cfg), [("app.conf".to_string(), "two".to_string())]);
    assert_eq!(h.started(), 1, "an update does not restart the container");
}

#[tokio::test(start_paused = true)]
async fn service_account_tokens_are_renewed_at_80_percent_of_their_life() {
    let mut p = one_container("Always", json!({}));
    p.spec.as_mut().expect("spec").volumes = Some(
        serde_json::from_value(json!([{"name": "kube-api-access-x", "projected": {"sources": [
            {"serviceAccountToken": {"expirationSeconds": 3600, "path": "token"}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        ]}}]))
        .expect("volumes"),
    );
    let mut h = Harness::new(p);
    h.sync().await;
    let v = h.machine.with(|w| w.volumes["kube-api-access-x"].clone());
    assert_eq!(
        files(&v),
        [
            ("token".to_string(), "token-1".to_string()),
            ("namespace".to_string(), "default".to_string())
        ]
    );
    h.run_for(Duration::from_secs(2870)).await;
    assert_eq!(*h.api.tokens_issued.lock().expect("n"), 1, "still fresh");
    h.run_for(Duration::from_secs(20)).await;
    assert_eq!(
        *h.api.tokens_issued.lock().expect("n"),
        2,
        "renewed after 48 minutes"
    );
}

#[tokio::test(start_paused = true)]
async fn a_pod_asking_for_what_the_node_cannot_do_is_refused_visibly() {
    let p = pod(json!({
        "containers": [{"name": "c", "image": "demo:1", "securityContext": {"windowsOptions": {"runAsUserName": "x"}}}],
        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}],
    }));
    let mut h = Harness::new(p);
    h.run_for(Duration::from_secs(2)).await;
    assert_eq!(h.started(), 0);
    let status = h.api.last();
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    assert_eq!(status.reason.as_deref(), Some("UnsupportedPodSpec"));
    let message = "Pod was rejected: this node does not support spec.hostAliases, spec.containers[0].securityContext.windowsOptions";
    assert_eq!(status.message.as_deref(), Some(message));
    assert!(h.api.has(&format!("UnsupportedPodSpec: {message}")));
    assert_eq!(h.api.count("UnsupportedPodSpec"), 1, "said once");
}

#[tokio::test(start_paused = true)]
async fn the_environment_comes_from_the_api_and_the_pod_with_variables_expanded() {
    let c = json!({
        "command": ["echo", "$(GREETING) from $(MY_POD)"],
        "envFrom": [{"configMapRef": {"name": "app"}, "prefix": "APP_"}],
        "env": [
            {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "greeting"}}},
            {"name": "WHERE", "value": "api at $(KUBERNETES_SERVICE_HOST), $$(literal)"},
            {"name": "MISSING", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "nope", "optional": true}}},
        ],
    });
    let mut h = Harness::new(one_container("Always", c));
    h.run_for(Duration::from_secs(1)).await;
    let (reason, message) = h.api.waiting("c").expect("waiting");
    assert_eq!(
        (reason.as_str(), message.as_str()),
        ("CreateContainerConfigError", "configmap \"app\" not found")
    );
    assert!(h.api.has("Failed: Error: configmap \"app\" not found"));
    h.api.config_maps.lock().expect("cms").insert(
        "app".into(),
        config_map(
            "app",
            json!({"greeting": "hello", "mode": "fast", "bad key": "x"}),
        ),
    );
    h.run_for(Duration::from_secs(11)).await;
    assert_eq!(h.started(), 1);
    let id = h.machine.latest("c");
    let ran = h.machine.with(|w| w.ran[&id].clone());
    let env: HashMap<String, String> = ran
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(env["MY_POD"], "p");
    assert_eq!(env["MY_IP"], "10.0.0.9");
    assert_eq!(env["GREETING"], "hello");
    assert_eq!(env["APP_mode"], "fast");
    assert_eq!(env["WHERE"], "api at 10.0.0.1, $(literal)");
    assert!(!env.contains_key("MISSING"));
    assert_eq!(ran.command.expect("command"), ["echo", "hello from p"]);
    assert!(h.api.has(
        "InvalidEnvironmentVariableNames: Keys [APP_bad key] from the EnvFrom configMap default/app were skipped since they are considered invalid environment variable names."
    ));
}

fn with_init(policy: &str, inits: serde_json::Value) -> Pod {
    pod(json!({
        "restartPolicy": policy,
        "initContainers": inits,
        "containers": [{"name": "app", "image": "demo:1", "imagePullPolicy": "IfNotPresent"}],
    }))
}

fn init_container(name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({"name": name, "image": "demo:1", "imagePullPolicy": "IfNotPresent"});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

impl Harness {
    fn started_names(&self) -> Vec<String> {
        self.machine.with(|w| {
            w.started
                .iter()
                .map(|id| id.split('-').nth(1).unwrap_or("").to_string())
                .collect()
        })
    }

    fn condition(&self, type_: &str) -> (String, String) {
        let s = self.api.last();
        let c = s
            .conditions
            .expect("conditions")
            .into_iter()
            .find(|c| c.type_ == type_)
            .expect("condition");
        (c.status, c.message.unwrap_or_default())
    }
}

#[tokio::test(start_paused = true)]
async fn init_containers_run_one_after_another_before_the_app() {
    let inits = json!([
        init_container("first", json!({})),
        init_container("second", json!({}))
    ]);
    let mut h = Harness::new(with_init("Always", inits));
    h.run_for(Duration::from_millis(100)).await;
    assert_eq!(h.started_names(), ["first"]);
    assert_eq!(h.api.phase(), "Pending");
    assert_eq!(
        h.condition("Initialized"),
        (
            "False".into(),
            "containers with incomplete status: [first second]".into()
        )
    );
    assert_eq!(h.api.waiting("app").expect("waiting").0, "PodInitializing");
    h.machine.exit("first", 0);
    h.run_for(Duration::from_millis(100)).await;
    assert_eq!(h.started_names(), ["first", "second"]);
    h.machine.exit("second", 0);
    h.run_for(Duration::from_millis(100)).await;
    assert_eq!(h.started_names(), ["first", "second", "app"]);
    assert_eq!(h.condition("Initialized").0, "True");
    assert_eq!(h.api.phase(), "Running");
    let init = h.api.last().init_container_statuses.expect("init statuses");
    assert!(
        init.iter().all(|s| s.ready),
        "completed init containers are ready"
    );
    assert!(h.api.has("Started: Started container first"));
    let events = h.api.events.lock().expect("events").clone();
    let first = events
        .iter()
        .find(|e| e.reason == "Started")
        .expect("event");
    assert_eq!(first.field.as_deref(), Some("spec.initContainers{first}"));
}

#[tokio::test(start_paused = true)]
async fn a_failing_init_container_is_retried_or_fails_the_pod_under_never() {
    let inits = json!([init_container("setup", json!({}))]);
    let mut h = Harness::new(with_init("Always", inits.clone()));
    h.sync().await;
    h.machine.exit("setup", 1);
    h.run_for(Duration::from_millis(100)).await;
    assert_eq!(h.started_names(), ["setup", "setup"], "restarted at once");
    h.machine.exit("setup", 1);
    h.run_for(Duration::from_secs(1)).await;
    let init = h.api.last().init_container_statuses.expect("init")[0].clone();
    let waiting = init.state.and_then(|s| s.waiting).and_then(|w| w.reason);
    assert_eq!(waiting.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(h.api.phase(), "Pending");

    let mut h = Harness::new(with_init("Never", inits));
    h.sync().await;
    h.machine.exit("setup", 2);
    h.run_for(Duration::from_secs(1)).await;
    assert_eq!(
        h.started_names(),
        ["setup"],
        "neither retried nor followed by the app"
    );
    assert_eq!(h.api.phase(), "Failed");
}

#[tokio::test(start_paused = true)]
async fn sidecars_start_in_turn_run_beside_the_app_and_stop_after_it() {
    let inits = json!([
        init_container("proxy", json!({"restartPolicy": "Always"})),
        init_container("setup", json!({})),
    ]);
    let mut h = Harness::new(with_init("Never", inits));
    h.machine.with(|w| w.exit_on_term = true);
    h.run_for(Duration::from_millis(100)).await;
    assert_eq!(
        h.started_names(),
        ["proxy", "setup"],
        "the sidecar started first"
    );
    h.machine.exit("setup", 0);
    h.run_for(Duration::from_millis(100)).await;
    assert_eq!(h.started_names(), ["proxy", "setup", "app"]);
    assert_eq!(h.api.phase(), "Running");
    h.machine.exit("app", 0);
    h.run_for(Duration::from_secs(1)).await;
    assert_eq!(
        h.machine.signals("proxy"),
        [Signal::Term],
        "stopped after the app"
    );
    assert!(h.api.has("Killing: Stopping container proxy"));
    assert_eq!(h.api.phase(), "Succeeded");
    assert_eq!(h.started_names().len(), 3, "the sidecar is not restarted");
}

#[tokio::test(start_paused = true)]
async fn a_failing_post_start_hook_kills_the_container_with_the_kubelets_event() {
    let c = json!({"lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 3"]}}}});
    let mut h = Harness::new(one_container("Always", c));
    h.machine.with(|w| {
        w.exit_on_term = true;
        w.exec_answers
            .insert("sh -c exit 3".into(), (3, "no config".into()));
    });
    h.run_for(Duration::from_millis(100)).await;
    let message = "Exec lifecycle hook ([sh -c exit 3]) for Container \"c\" in Pod \"p_default(0123456789abcdef)\" failed - error: command 'sh -c exit 3' exited with 3: , message: \"no config\"";
    assert!(
        h.api.has(&format!("FailedPostStartHook: {message}")),
        "{:?}",
        h.api.events()
    );
    assert!(h.api.has("Killing: FailedPostStartHook"));
    assert!(h.started() >= 2, "restarted as its policy says");
}

#[tokio::test(start_paused = true)]
async fn pre_stop_hooks_run_before_sigterm_within_the_grace_period() {
    let c = json!({"lifecycle": {"preStop": {"sleep": {"seconds": 5}}}});
    let mut h = Harness::new(one_container("Always", c));
    h.sync().await;
    let start = tokio::time::Instant::now();
    h.worker.terminate(&deleting(h.pod.clone(), 10)).await;
    let id = h.machine.latest("c");
    let times = h.machine.with(|w| w.containers[&id].signalled_at.clone());
    assert_eq!(h.machine.signals("c"), [Signal::Term, Signal::Kill]);
    assert_eq!(
        times[0] - start,
        Duration::from_secs(5),
        "SIGTERM after the hook's sleep"
    );
    assert_eq!(
        times[1] - start,
        Duration::from_secs(10),
        "SIGKILL at the end of the grace period"
    );

    let c = json!({"lifecycle": {"preStop": {"exec": {"command": ["/bin/drain"]}}}});
    let mut h = Harness::new(one_container("Always", c));
    h.machine.with(|w| w.exit_on_term = true);
    h.sync().await;
    h.worker.terminate(&deleting(h.pod.clone(), 30)).await;
    let execs = h.machine.with(|w| w.execs.clone());
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0].1, "/bin/drain");
    assert_eq!(h.machine.signals("c"), [Signal::Term]);
}

#[tokio::test(start_paused = true)]
async fn the_termination_message_is_reported() {
    let mut h = Harness::new(one_container("Never", json!({})));
    h.sync().await;
    h.machine.end("c", |b| {
        b.code = Some(1);
        b.message = Some("database unreachable".into());
    });
    h.sync().await;
    let t = h.api.state("c").terminated.expect("terminated");
    assert_eq!(t.message.as_deref(), Some("database unreachable"));
}

#[tokio::test(start_paused = true)]
async fn a_running_container_is_asked_about_rarely_and_its_exit_noticed_at_once() {
    let mut h = Harness::new(one_container("Never", json!({})));
    h.sync().await;
    h.run_for(Duration::from_secs(60)).await;
    let asked = h.machine.with(|w| w.state_queries);
    assert!(
        asked <= 7,
        "a minute of running took {asked} runtime queries"
    );
    h.machine.exit("c", 0);
    h.run_for(Duration::from_millis(600)).await;
    assert!(
        h.api.state("c").terminated.is_some(),
        "the exit is seen within a poll"
    );
}
