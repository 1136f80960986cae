//! A pod's status as the kubelet reports it, from its containers' statuses: the phase, the
//! conditions (with the kubelet's reasons when they are False), addresses and start time.

use k8s_openapi::api::core::v1::{
    ContainerStateTerminated, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::lifecycle;

/// What the worker knows beyond its containers.
#[derive(Clone, Debug, Default)]
pub struct PodFacts {
    pub pod_ip: Option<String>,
    pub host_ip: Option<String>,
    /// Why the pod failed as a whole (past its deadline, refused): reason and message.
    pub failure: Option<(String, String)>,
    /// Every init container has done its part (it stays so while sidecars restart or stop).
    pub initialized: bool,
}

/// `name_namespace(uid)`: how the kubelet names a pod in its events and messages.
pub fn pod_name(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.name_any(),
        pod.namespace().unwrap_or_default(),
        pod.uid().unwrap_or_default()
    )
}

pub const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// The pod's status; conditions carry no `lastTransitionTime` yet ([`with_transition_times`]),
/// so that two passes that saw the same thing give equal statuses.
pub fn pod_status(
    pod: &Pod,
    containers: Vec<ContainerStatus>,
    init: Vec<ContainerStatus>,
    facts: &PodFacts,
    now: &Time,
) -> PodStatus {
    fn ended(s: &ContainerStatus) -> Option<&ContainerStateTerminated> {
        s.state.as_ref().and_then(|s| s.terminated.as_ref())
    }
    let running = containers
        .iter()
        .filter(|s| s.state.as_ref().is_some_and(|s| s.running.is_some()))
        .count();
    let mut phase = lifecycle::phase(lifecycle::Containers {
        total: containers.len(),
        all_ended: containers.iter().all(|s| ended(s).is_some()),
        any_failed: containers
            .iter()
            .any(|s| ended(s).is_some_and(|t| t.exit_code != 0)),
        running,
        restarted: containers.iter().any(|s| s.restart_count > 0),
    });
    let incomplete = if facts.initialized {
        Vec::new()
    } else {
        incomplete_init(pod, &init)
    };
    let never = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("Never");
    let init_failed = never
        && init
            .iter()
            .filter(|s| !is_sidecar(pod, &s.name))
            .any(|s| ended(s).is_some_and(|t| t.exit_code != 0));
    if init_failed {
        phase = "Failed";
    } else if !incomplete.is_empty() {
        phase = "Pending";
    }
    let (mut reason, mut message) = (None, None);
    if let Some((why, text)) = &facts.failure {
        phase = "Failed";
        reason = Some(why.clone());
        message = Some(text.clone());
    }
    let current = pod.status.as_ref();
    PodStatus {
        phase: Some(phase.into()),
        reason,
        message,
        conditions: Some(conditions(
            pod,
            &containers,
            &init,
            &incomplete,
            phase,
            facts,
        )),
        container_statuses: Some(containers),
        init_container_statuses: Some(init).filter(|i| !i.is_empty()),
        qos_class: current.and_then(|s| s.qos_class.clone()),
        start_time: Some(
            current
                .and_then(|s| s.start_time.clone())
                .unwrap_or_else(|| now.clone()),
        ),
        host_ip: facts.host_ip.clone(),
        host_ips: facts.host_ip.clone().map(|ip| vec![HostIP { ip }]),
        pod_ip: facts.pod_ip.clone(),
        pod_ips: facts.pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        ..Default::default()
    }
}

fn condition(type_: &str, ok: bool, why: Option<(&str, String)>) -> PodCondition {
    let (reason, message) = match why.filter(|_| !ok) {
        Some((reason, message)) => (
            Some(reason.to_string()),
            Some(message).filter(|m| !m.is_empty()),
        ),
        None => (None, None),
    };
    PodCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason,
        message,
        ..Default::default()
    }
}

/// The init containers that have not done their part yet: regular ones not completed, sidecars
/// not started.
fn incomplete_init<'a>(pod: &Pod, init: &'a [ContainerStatus]) -> Vec<&'a str> {
    init.iter()
        .filter(|s| match is_sidecar(pod, &s.name) {
            true => s.started != Some(true),
            false => !s.ready,
        })
        .map(|s| s.name.as_str())
        .collect()
}

fn is_sidecar(pod: &Pod, name: &str) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
}

/// The kubelet's five conditions, in its order. Initialized names the init containers still to
/// finish; Ready and ContainersReady the containers (sidecars too) not ready, or that the pod has
/// completed.
fn conditions(
    pod: &Pod,
    containers: &[ContainerStatus],
    init: &[ContainerStatus],
    incomplete: &[&str],
    phase: &str,
    facts: &PodFacts,
) -> Vec<PodCondition> {
    let sidecars = init.iter().filter(|s| is_sidecar(pod, &s.name));
    let unready: Vec<&str> = containers
        .iter()
        .chain(sidecars)
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let completed = phase == "Succeeded" || phase == "Failed";
    let ready = unready.is_empty() && !completed && !containers.is_empty();
    let why = if phase == "Succeeded" {
        ("PodCompleted", String::new())
    } else if phase == "Failed" {
        ("PodFailed", String::new())
    } else {
        (
            "ContainersNotReady",
            format!("containers with unready status: [{}]", unready.join(" ")),
        )
    };
    vec![
        condition("PodReadyToStartContainers", facts.pod_ip.is_some(), None),
        condition(
            "Initialized",
            incomplete.is_empty(),
            Some((
                "ContainersNotInitialized",
                format!(
                    "containers with incomplete status: [{}]",
                    incomplete.join(" ")
                ),
            )),
        ),
        condition("Ready", ready, Some(why.clone())),
        condition("ContainersReady", ready, Some(why)),
        condition("PodScheduled", true, None),
    ]
}

/// Gives each condition its `lastTransitionTime`: kept from the pod's current condition of the
/// same type while its status is unchanged, `now` when it changed.
pub fn with_transition_times(mut status: PodStatus, pod: &Pod, now: &Time) -> PodStatus {
    let current = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    for c in status.conditions.iter_mut().flatten() {
        let since = current
            .and_then(|cs| cs.iter().find(|x| x.type_ == c.type_))
            .filter(|x| x.status == c.status)
            .and_then(|x| x.last_transition_time.clone());
        c.last_transition_time = Some(since.unwrap_or_else(|| now.clone()));
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning};

    fn running(name: &str, ready: bool) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            ready,
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn find<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
        s.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == t)
            .expect("condition")
    }

    #[test]
    fn unready_containers_are_named_in_the_ready_condition() {
        let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let facts = PodFacts {
            pod_ip: Some("10.0.0.2".into()),
            initialized: true,
            ..Default::default()
        };
        let s = pod_status(
            &Pod::default(),
            vec![running("a", false), running("b", true), running("c", false)],
            vec![],
            &facts,
            &now,
        );
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let ready = find(&s, "Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [a c]")
        );
        assert_eq!(find(&s, "ContainersReady").status, "False");
        assert_eq!(find(&s, "PodReadyToStartContainers").status, "True");

        let s = pod_status(
            &Pod::default(),
            vec![running("a", true)],
            vec![],
            &facts,
            &now,
        );
        let ready = find(&s, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_ref()),
            ("True", None)
        );
    }

    #[test]
    fn transition_times_are_kept_while_a_condition_holds() {
        let then = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_000_000).expect("time"));
        let facts = PodFacts {
            initialized: true,
            ..Default::default()
        };
        let first = with_transition_times(
            pod_status(
                &Pod::default(),
                vec![running("a", false)],
                vec![],
                &facts,
                &then,
            ),
            &Pod::default(),
            &then,
        );
        let pod = Pod {
            status: Some(first),
            ..Default::default()
        };
        let second = with_transition_times(
            pod_status(&pod, vec![running("a", true)], vec![], &facts, &now),
            &pod,
            &now,
        );
        assert_eq!(find(&second, "Ready").last_transition_time, Some(now));
        assert_eq!(
            find(&second, "PodScheduled").last_transition_time,
            Some(then)
        );
    }
}
