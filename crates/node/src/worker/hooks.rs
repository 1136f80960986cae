//! Lifecycle hooks: `postStart` right after a container starts (a failure kills it, with the
//! kubelet's `FailedPostStartHook` event) and `preStop` before it is stopped, within its grace
//! period (`FailedPreStopHook` when it fails). Handlers: `exec` (as the container's own process),
//! `httpGet` (from the pod's network namespace) and `sleep`.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, Probe};
use tokio::time::Instant;

use super::PodWorker;
use crate::machine::{Instance, Machine, PodApi, ProbeOutcome, ProbeTarget};
use crate::status;

/// How long a `postStart` hook may run.
const POST_START_LIMIT: Duration = Duration::from_secs(120);
/// What is left of a grace period after its `preStop` hook, at least.
const MIN_GRACE_AFTER_HOOK: Duration = Duration::from_secs(2);

/// The container of `pod` named `name`, app or init.
pub(super) fn spec_of<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

impl<M: Machine, R: PodApi> PodWorker<M, R> {
    /// Runs `c`'s `postStart` hook for the instance that just started; false when it failed
    /// (the instance is then stopped, and restarts as its policy says).
    pub(super) async fn post_start(&self, pod: &Pod, c: &Container, inst: &Instance) -> bool {
        let Some(handler) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) else {
            return true;
        };
        let Err(message) = self.run_hook(pod, c, inst, handler, POST_START_LIMIT).await else {
            return true;
        };
        let field = self.field(&c.name);
        self.event(pod, true, "FailedPostStartHook", message, field)
            .await;
        let note = "FailedPostStartHook".to_string();
        self.stop(pod, &c.name, inst, note, super::pod_grace(pod))
            .await;
        false
    }

    /// Runs the `preStop` hook of the container named `name`, if it has one; returns what is
    /// left of `grace` for SIGTERM to work in.
    pub(super) async fn pre_stop(
        &self,
        pod: &Pod,
        name: &str,
        inst: &Instance,
        grace: Duration,
    ) -> Duration {
        let Some(c) = spec_of(pod, name) else {
            return grace;
        };
        let Some(handler) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) else {
            return grace;
        };
        let started = Instant::now();
        if let Err(message) = self.run_hook(pod, c, inst, handler, grace).await {
            let field = self.field(name);
            self.event(pod, true, "FailedPreStopHook", message, field)
                .await;
        }
        grace
            .saturating_sub(started.elapsed())
            .max(MIN_GRACE_AFTER_HOOK)
    }

    /// One handler, given at most `budget`; the error is the kubelet's message.
    async fn run_hook(
        &self,
        pod: &Pod,
        c: &Container,
        inst: &Instance,
        handler: &LifecycleHandler,
        budget: Duration,
    ) -> Result<(), String> {
        let who = format!(
            "for Container {:?} in Pod {:?}",
            c.name,
            status::pod_name(pod)
        );
        if let Some(exec) = &handler.exec {
            let command = exec.command.clone().unwrap_or_default();
            let shown = format!("[{}]", command.join(" "));
            let ran = self.machine.exec(&inst.id, command.clone(), budget).await;
            return match ran {
                Ok((0, _)) => Ok(()),
                Ok((code, output)) => Err(format!(
                    "Exec lifecycle hook ({shown}) {who} failed - error: command '{}' exited with {code}: , message: {output:?}",
                    command.join(" ")
                )),
                Err(err) => Err(format!(
                    "Exec lifecycle hook ({shown}) {who} failed - error: {err}, message: \"\""
                )),
            };
        }
        if let Some(http) = &handler.http_get {
            let Some(sandbox) = &self.sandbox else {
                return Err(format!(
                    "HTTP lifecycle hook {who} failed - error: no pod sandbox"
                ));
            };
            let probe = Probe {
                http_get: Some(http.clone()),
                timeout_seconds: Some(budget.as_secs().max(1) as i32),
                ..Default::default()
            };
            let target = ProbeTarget {
                pod,
                pod_ip: &sandbox.ip,
                container: c,
                instance_id: &inst.id,
            };
            let path = http.path.clone().unwrap_or_default();
            return match self.machine.probe(target, &probe).await {
                ProbeOutcome::Success | ProbeOutcome::Warning(_) => Ok(()),
                ProbeOutcome::Failure(e) | ProbeOutcome::Unknown(e) => Err(format!(
                    "HTTP lifecycle hook ({path}) {who} failed - error: {e}, message: \"\""
                )),
            };
        }
        if let Some(sleep) = &handler.sleep {
            let wanted = Duration::from_secs(sleep.seconds.max(0) as u64);
            tokio::time::sleep(wanted.min(budget)).await;
        }
        // `tcpSocket` handlers are accepted and do nothing, as in Kubernetes.
        Ok(())
    }
}
