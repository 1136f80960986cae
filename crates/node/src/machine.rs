//! What a pod worker asks of the machine and of the API, as two traits: [`Machine`] (sandbox,
//! images, containers, probes, the worker's own records) and [`PodApi`] (events, status,
//! deletion). The agent implements them over crun and the API server (`linux`, `report`);
//! tests implement them in memory, so the worker's whole lifecycle runs without root.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerStateTerminated, Pod, PodStatus, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// A failure of the machine; its text is what users see in events and waiting messages.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    #[error("{what} did not finish within {after:?}")]
    TimedOut { what: String, after: Duration },
    /// The pod's configuration cannot be run as it stands (`CreateContainerConfigError`).
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

pub type MachineResult<T> = Result<T, MachineError>;

/// The pod's sandbox as the worker needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSandbox {
    pub ip: String,
}

/// What the runtime says of a container it knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Created,
    Running,
    Stopped,
}

/// How a stopped container ended: the exit code once known, whether the kernel OOM-killed it,
/// and its termination message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub oom_killed: bool,
    pub message: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
}

/// One container instance the worker started.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    pub id: String,
    pub restart: i32,
    pub started_at: Time,
    pub image_id: String,
    /// The image as the spec named it when this instance started.
    #[serde(default)]
    pub image: String,
}

/// What the worker keeps of a container across agent restarts: its latest instance and how
/// the one before it ended.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub instance: Instance,
    pub last_terminated: Option<ContainerStateTerminated>,
}

/// The answer of one probe, with the kubelet's wording of a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Success,
    Failure(String),
    /// Succeeded, with something the user should know (`Probe terminated redirects`).
    Warning(String),
    /// The probe could not be made (a port name that resolves to nothing): no result at all.
    Unknown(String),
}

/// Where a probe runs: the pod, its sandbox address, the container and its running instance.
pub struct ProbeTarget<'a> {
    pub pod: &'a Pod,
    pub pod_ip: &'a str,
    pub container: &'a Container,
    pub instance_id: &'a str,
}

/// The machine a pod worker drives. Every call may block on the kernel or the OCI runtime; the
/// implementation keeps that off the async executor and bounds it with a timeout.
pub trait Machine: Send + Sync + 'static {
    /// The runtime's name in `containerID`s (`crun://…`).
    fn runtime_name(&self) -> String;
    /// The `kubernetes` Service's variables every container gets.
    fn service_env(&self) -> Vec<(String, String)>;
    /// The pod's sandbox: the one already running, or a new one.
    fn sandbox(&self, pod: &Pod) -> impl Future<Output = MachineResult<PodSandbox>> + Send;
    fn has_image(&self, reference: &str) -> impl Future<Output = bool> + Send;
    /// Pulls an image, with the credential for its registry when one is given; returns the
    /// kubelet's "Successfully pulled …" note.
    fn pull(
        &self,
        reference: &str,
        credentials: &[runtime::image::pull::Credential],
    ) -> impl Future<Output = MachineResult<String>> + Send;
    /// Makes a volume ready on the host; returns where it is.
    fn volume(
        &self,
        pod: &Pod,
        name: &str,
        source: &crate::volumes::Source,
    ) -> impl Future<Output = MachineResult<std::path::PathBuf>> + Send;
    /// Creates and starts instance `id` of `container` with `mounts`; returns the image's ID.
    fn start(
        &self,
        pod: &Pod,
        container: &Container,
        id: &str,
        restart: i32,
        mounts: &[crate::volumes::Mount],
    ) -> impl Future<Output = MachineResult<String>> + Send;
    /// Whether the container may have ended: it left its exit code, or nothing watches it any
    /// more to leave one. A cheap check, made often; the runtime is asked when it says so.
    fn has_exited(&self, id: &str) -> bool;
    /// The container's state; `None` when the runtime does not know it.
    fn state(&self, id: &str) -> impl Future<Output = MachineResult<Option<RunState>>> + Send;
    /// How instance `instance` of `container` ended.
    fn exit(
        &self,
        pod: &Pod,
        container: &Container,
        instance: &Instance,
    ) -> impl Future<Output = Exit> + Send;
    /// Runs `command` in the running container `id` as its own process does; the exit code and
    /// output (stdout, then stderr).
    fn exec(
        &self,
        id: &str,
        command: Vec<String>,
        timeout: Duration,
    ) -> impl Future<Output = MachineResult<(i32, String)>> + Send;
    fn kill(&self, id: &str, signal: Signal) -> impl Future<Output = MachineResult<()>> + Send;
    /// Forgets a stopped container (its root filesystem stays until teardown).
    fn remove(&self, id: &str) -> impl Future<Output = ()> + Send;
    /// Removes everything of the pod: containers, root filesystems, sandbox, cgroup, records.
    fn teardown(&self, pod: &Pod) -> impl Future<Output = ()> + Send;
    /// Runs one liveness, readiness or startup probe.
    fn probe(
        &self,
        target: ProbeTarget<'_>,
        probe: &Probe,
    ) -> impl Future<Output = ProbeOutcome> + Send;
    fn save(&self, pod: &Pod, container: &str, record: &Record);
    fn load(&self, pod: &Pod, container: &str) -> Option<Record>;
}

/// An event about a pod (or one of its containers, named by `field`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
    /// `spec.containers{NAME}` when it is about a container.
    pub field: Option<String>,
}

/// An object a pod references (a ConfigMap or Secret, in a volume or a variable), as read by
/// `found`: `None` when it is absent and the reference is `optional`, Kubernetes' `configmap
/// "NAME" not found` (`kind` lower-case) when it is absent and required.
pub fn referenced<T>(
    found: MachineResult<Option<T>>,
    kind: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<Option<T>, String> {
    match found.map_err(|e| e.to_string())? {
        Some(object) => Ok(Some(object)),
        None if optional == Some(true) => Ok(None),
        None => Err(format!("{kind} \"{name}\" not found")),
    }
}

/// A service-account token the API server issued for a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    /// How long it is valid from issue.
    pub lifetime: Duration,
}

/// What a pod worker asks of the API server: it reports there, and reads the objects its
/// volumes and environment name.
pub trait PodApi: Send + Sync + 'static {
    /// A ConfigMap of the pod's namespace; `None` when there is none of that name.
    fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = MachineResult<Option<k8s_openapi::api::core::v1::ConfigMap>>> + Send;
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = MachineResult<Option<k8s_openapi::api::core::v1::Secret>>> + Send;
    /// A token of the pod's service account, bound to the pod.
    fn token(
        &self,
        pod: &Pod,
        audiences: Vec<String>,
        expiration_seconds: i64,
    ) -> impl Future<Output = MachineResult<IssuedToken>> + Send;
    fn event(&self, pod: &Pod, event: PodEvent) -> impl Future<Output = ()> + Send;
    /// Writes the pod's status; false when it could not (it is tried again on the next pass).
    fn status(&self, pod: &Pod, status: &PodStatus) -> impl Future<Output = bool> + Send;
    /// The node is done with a deleted pod: the object may go.
    fn deleted(&self, pod: &Pod) -> impl Future<Output = ()> + Send;
}
