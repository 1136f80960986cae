//! Liveness, readiness and startup probes. [`Prober`] is the kubelet's bookkeeping for one probe
//! of one container instance (when it is due, how many results in a row, the result that
//! counts); [`run`] makes one probe on this host: `httpGet` and `tcpSocket` connect from inside
//! the pod's network namespace, `exec` runs through the OCI runtime, `grpc` asks the standard
//! health service.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::time::Instant;

use crate::machine::{MachineError, MachineResult, ProbeOutcome, ProbeTarget};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    /// The word the kubelet's events use.
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }

    /// The probe of this kind a container declares.
    pub fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            ProbeKind::Liveness => c.liveness_probe.as_ref(),
            ProbeKind::Readiness => c.readiness_probe.as_ref(),
            ProbeKind::Startup => c.startup_probe.as_ref(),
        }
    }
}

fn seconds(value: Option<i32>, default: i32, least: i32) -> Duration {
    Duration::from_secs(value.unwrap_or(default).max(least) as u64)
}

/// The schedule and results of one probe of one container instance.
#[derive(Clone, Debug)]
pub struct Prober {
    pub kind: ProbeKind,
    pub probe: Probe,
    period: Duration,
    success_threshold: i32,
    failure_threshold: i32,
    next_at: Instant,
    /// The last raw result and how many times in a row it came.
    last: Option<bool>,
    run: i32,
    /// The result that counts: liveness starts passing, readiness failing, startup unknown.
    result: Option<bool>,
}

impl Prober {
    /// A probe for an instance that started at `started`: first due after `initialDelaySeconds`.
    pub fn new(kind: ProbeKind, probe: &Probe, started: Instant) -> Self {
        Prober {
            kind,
            probe: probe.clone(),
            period: seconds(probe.period_seconds, 10, 1),
            success_threshold: probe.success_threshold.unwrap_or(1).max(1),
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1),
            next_at: started + seconds(probe.initial_delay_seconds, 0, 0),
            last: None,
            run: 0,
            result: match kind {
                ProbeKind::Liveness => Some(true),
                ProbeKind::Readiness => Some(false),
                ProbeKind::Startup => None,
            },
        }
    }

    /// How long one attempt may take (`timeoutSeconds`, 1 s by default).
    pub fn timeout(&self) -> Duration {
        seconds(self.probe.timeout_seconds, 1, 1)
    }

    /// Whether the result that counts is a success.
    pub fn passing(&self) -> bool {
        self.result == Some(true)
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_at
    }

    pub fn next_at(&self) -> Instant {
        self.next_at
    }

    /// An attempt that gave no result: only the next attempt is scheduled.
    pub fn skip(&mut self, now: Instant) {
        self.next_at = now + self.period;
    }

    /// Records one result; returns the new result that counts when it changed. A result
    /// counts once it has come `successThreshold` (or `failureThreshold`) times in a row.
    pub fn record(&mut self, now: Instant, success: bool) -> Option<bool> {
        self.next_at = now + self.period;
        if self.last == Some(success) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(success);
            self.run = 1;
        }
        let needed = if success {
            self.success_threshold
        } else {
            self.failure_threshold
        };
        if self.run < needed || self.result == Some(success) {
            return None;
        }
        self.result = Some(success);
        Some(success)
    }

    /// The grace period a kill for this probe's failure gets: the probe's own, else the pod's.
    pub fn grace(&self, pod_grace: Duration) -> Duration {
        self.probe
            .termination_grace_period_seconds
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(pod_grace)
    }
}

/// The TCP port a probe names: a number, or the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, c: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid port number: {n}")),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("couldn't find port: {name} in {}", c.name)),
    }
}

/// Makes one probe on this host. `netns` is the pod's network namespace.
pub async fn run(
    runtime: &runtime::container::Runtime,
    netns: Option<PathBuf>,
    target: ProbeTarget<'_>,
    probe: &Probe,
) -> ProbeOutcome {
    let timeout = seconds(probe.timeout_seconds, 1, 1);
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        return exec_probe(runtime, target.instance_id, command, timeout).await;
    }
    let Some(netns) = netns else {
        return ProbeOutcome::Failure("the pod's network namespace is gone".into());
    };
    if let Some(http) = &probe.http_get {
        return crate::probe_net::http(&netns, target, http, timeout).await;
    }
    if let Some(tcp) = &probe.tcp_socket {
        return crate::probe_net::tcp(&netns, target, tcp, timeout).await;
    }
    if let Some(grpc) = &probe.grpc {
        return crate::probe_net::grpc(&netns, target, grpc, timeout).await;
    }
    ProbeOutcome::Failure("probe has no handler".into())
}

/// Runs the command in the container; exit code 0 passes. Output is what the event shows.
async fn exec_probe(
    runtime: &runtime::container::Runtime,
    id: &str,
    command: Vec<String>,
    timeout: Duration,
) -> ProbeOutcome {
    match run_command(runtime, id, command.clone(), timeout).await {
        Ok((0, _)) => ProbeOutcome::Success,
        Ok((_, output)) => ProbeOutcome::Failure(output),
        Err(MachineError::TimedOut { .. }) => ProbeOutcome::Failure(format!(
            "command timed out: \"{}\" timed out after {}s",
            command.join(" "),
            timeout.as_secs()
        )),
        Err(err) => ProbeOutcome::Unknown(err.to_string()),
    }
}

/// How much of a command's output is kept (the kubelet's limit).
const OUTPUT_LIMIT: usize = 10 * 1024;

/// Runs `command` in container `id` as its own process does, within `timeout`: the exit code and
/// the output (stdout, then stderr).
pub async fn run_command(
    runtime: &runtime::container::Runtime,
    id: &str,
    command: Vec<String>,
    timeout: Duration,
) -> MachineResult<(i32, String)> {
    use tokio::io::AsyncReadExt;
    let request = runtime::exec::ExecRequest {
        command,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let attempt = async {
        let mut exec = runtime.exec(id, &request).await?;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (stdout, stderr) = (exec.stdout.take(), exec.stderr.take());
        let read_out = async {
            if let Some(mut s) = stdout {
                let _ = s.read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(mut s) = stderr {
                let _ = s.read_to_end(&mut err).await;
            }
        };
        tokio::join!(read_out, read_err);
        let code = exec.wait().await?;
        out.extend_from_slice(&err);
        out.truncate(OUTPUT_LIMIT);
        Ok::<_, runtime::Error>((code, String::from_utf8_lossy(&out).into_owned()))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(MachineError::TimedOut {
            what: "command".into(),
            after: timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(json: serde_json::Value) -> Probe {
        serde_json::from_value(json).expect("probe")
    }

    #[test]
    fn results_count_after_their_threshold_in_a_row() {
        let start = Instant::now();
        let spec = probe(
            serde_json::json!({"periodSeconds": 5, "failureThreshold": 3, "successThreshold": 2}),
        );
        let mut p = Prober::new(ProbeKind::Readiness, &spec, start);
        assert!(!p.passing(), "readiness fails until it passes");
        assert!(p.due(start));
        assert_eq!(p.record(start, true), None, "one success of two");
        assert_eq!(p.next_at(), start + Duration::from_secs(5));
        assert_eq!(p.record(start, true), Some(true));
        assert_eq!(p.record(start, false), None);
        assert_eq!(p.record(start, false), None);
        assert_eq!(p.record(start, true), None, "a success breaks the run");
        for _ in 0..2 {
            assert_eq!(p.record(start, false), None);
        }
        assert_eq!(
            p.record(start, false),
            Some(false),
            "third failure in a row"
        );
        assert!(!p.passing());
    }

    #[test]
    fn liveness_passes_until_told_otherwise_and_waits_its_initial_delay() {
        let start = Instant::now();
        let spec = probe(serde_json::json!({"initialDelaySeconds": 15}));
        let p = Prober::new(ProbeKind::Liveness, &spec, start);
        assert!(p.passing());
        assert!(!p.due(start + Duration::from_secs(14)));
        assert!(p.due(start + Duration::from_secs(15)));
        assert_eq!(p.timeout(), Duration::from_secs(1));
        assert_eq!(p.grace(Duration::from_secs(30)), Duration::from_secs(30));
    }

    #[test]
    fn a_startup_probe_fails_at_its_threshold_though_it_never_passed() {
        let start = Instant::now();
        let spec = probe(serde_json::json!({"failureThreshold": 2}));
        let mut p = Prober::new(ProbeKind::Startup, &spec, start);
        assert!(!p.passing());
        assert_eq!(p.record(start, false), None);
        assert_eq!(p.record(start, false), Some(false));
        let mut p = Prober::new(ProbeKind::Startup, &spec, start);
        assert_eq!(p.record(start, true), Some(true));
        assert!(p.passing());
    }

    #[test]
    fn ports_resolve_by_number_or_name() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "kuard", "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .expect("container");
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("web".into()), &c),
            Err("couldn't find port: web in kuard".into())
        );
        assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
    }
}
