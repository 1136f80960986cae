//! Init containers: each runs to completion, in order, before the app containers start (restarted
//! on failure unless the pod's policy is `Never`, which fails the pod); sidecars (`restartPolicy:
//! Always`) start in their turn, keep running beside the app containers, and are stopped once
//! those have ended for good.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::{PodWorker, Track, POLL};
use crate::lifecycle::RestartPolicy;
use crate::machine::{Machine, PodApi};

/// Whether an init container is a sidecar.
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// A regular init container that has completed successfully.
pub fn succeeded(t: &Track) -> bool {
    t.current.is_none() && t.last_terminated.as_ref().is_some_and(|x| x.exit_code == 0)
}

impl<M: Machine, R: PodApi> PodWorker<M, R> {
    pub(super) fn is_init(&self, name: &str) -> bool {
        self.init_names.iter().any(|n| n == name)
    }

    /// Moves the init containers along; returns whether the pod is initialized, and how soon to
    /// look again.
    pub(super) async fn sync_init(&mut self, pod: &Pod, policy: RestartPolicy) -> (bool, Duration) {
        let inits = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.clone())
            .unwrap_or_default();
        self.init_names = inits.iter().map(|c| c.name.clone()).collect();
        let mut wait = POLL;
        for c in &inits {
            let sidecar = is_sidecar(c);
            let mut t = self.tracks.remove(&c.name).unwrap_or_default();
            if !sidecar && (self.init_done || succeeded(&t)) {
                self.tracks.insert(c.name.clone(), t);
                continue;
            }
            let own = match (sidecar, policy) {
                (true, _) if self.sidecars_ending => RestartPolicy::Never,
                (true, _) => RestartPolicy::Always,
                (false, RestartPolicy::Never) => RestartPolicy::Never,
                (false, _) => RestartPolicy::OnFailure,
            };
            wait = wait.min(self.reconcile(pod, c, &mut t, own).await);
            let ready_to_go_on = if sidecar { t.started() } else { succeeded(&t) };
            self.tracks.insert(c.name.clone(), t);
            if !self.init_done && !ready_to_go_on {
                return (false, wait);
            }
        }
        self.init_done = true;
        (true, wait)
    }

    /// Stops the sidecars once every app container has ended and will not start again.
    pub(super) async fn end_sidecars_when_done(&mut self, pod: &Pod, policy: RestartPolicy) {
        if self.sidecars_ending {
            return;
        }
        let Some(spec) = pod.spec.as_ref() else {
            return;
        };
        let ended = spec.containers.iter().all(|c| {
            self.tracks.get(&c.name).is_some_and(|t| {
                t.current.is_none()
                    && t.last_terminated
                        .as_ref()
                        .is_some_and(|x| !policy.restarts(x.exit_code.into()))
            })
        });
        if !ended {
            return;
        }
        self.sidecars_ending = true;
        for c in spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| is_sidecar(c))
        {
            let Some(inst) = self.tracks.get(&c.name).and_then(|t| t.current.clone()) else {
                continue;
            };
            let note = format!("Stopping container {}", c.name);
            self.stop(pod, &c.name, &inst, note, super::pod_grace(pod))
                .await;
        }
    }
}
