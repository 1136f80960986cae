//! The rules of a container's life that need no runtime, kept apart so that they are tested
//! without root: whether an ended container starts again, how long it waits first, how its end
//! is reported, and the pod phase its containers add up to.

use std::time::Duration;

/// `spec.restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The policy a spec names (`Always` when it names none, as the API defaults it).
    pub fn parse(policy: Option<&str>) -> Self {
        match policy {
            Some("OnFailure") => RestartPolicy::OnFailure,
            Some("Never") => RestartPolicy::Never,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether a container that exited with `code` starts again.
    pub fn restarts(self, code: i64) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// The first wait after a failure.
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
/// The longest wait.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A container that ran this long without failing starts its back-off afresh.
pub const BACKOFF_RESET: Duration = Duration::from_secs(600);

/// The wait after `previous`: 10 s, then doubling up to 5 min.
pub fn doubled(previous: Option<Duration>) -> Duration {
    match previous {
        None => BACKOFF_INITIAL,
        Some(d) => (d * 2).min(BACKOFF_MAX),
    }
}

/// The kubelet's crash-loop back-off: the first restart at once, then 10 s, 20 s, … 5 min;
/// forgotten once the container has run for ten minutes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashBackoff {
    next: Option<Duration>,
}

impl CrashBackoff {
    /// How long this restart waits; the one after it waits longer.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next.unwrap_or(Duration::ZERO);
        self.next = Some(doubled(self.next));
        delay
    }

    /// The container has been running for `running`: a long enough run resets the back-off.
    pub fn ran_for(&mut self, running: Duration) {
        if running > BACKOFF_RESET {
            self.next = None;
        }
    }
}

/// `lastState.terminated.reason` for a container that exited with `code`.
pub fn termination_reason(oom_killed: bool, code: i32) -> &'static str {
    if oom_killed {
        "OOMKilled"
    } else if code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

/// What to do about a container's image before starting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageAction {
    /// Pull it (policy `Always`, or missing with `IfNotPresent`).
    Pull,
    /// Use the image on the node.
    UsePresent,
    /// Missing, and `Never` forbids pulling: `ErrImageNeverPull`.
    NeverPull,
}

/// `imagePullPolicy` against whether the node has the image (the API has already defaulted
/// the policy: `Always` for `:latest` or no tag, else `IfNotPresent`).
pub fn image_action(policy: Option<&str>, present: bool) -> ImageAction {
    match (policy.unwrap_or("IfNotPresent"), present) {
        ("Always", _) => ImageAction::Pull,
        (_, true) => ImageAction::UsePresent,
        ("Never", false) => ImageAction::NeverPull,
        (_, false) => ImageAction::Pull,
    }
}

/// What the pod's containers add up to, as the kubelet reports it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Containers {
    /// How many containers the pod has.
    pub total: usize,
    /// Every container has ended and will not start again.
    pub all_ended: bool,
    /// One of the ended containers failed (non-zero exit).
    pub any_failed: bool,
    /// How many are running.
    pub running: usize,
    /// Some container has been restarted (so the pod ran, even if none runs right now).
    pub restarted: bool,
}

/// `status.phase`.
pub fn phase(c: Containers) -> &'static str {
    if c.all_ended && c.total > 0 {
        if c.any_failed {
            "Failed"
        } else {
            "Succeeded"
        }
    } else if c.running > 0 || c.restarted {
        "Running"
    } else {
        "Pending"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_decide_by_exit_code() {
        let cases = [
            (RestartPolicy::Always, 0, true),
            (RestartPolicy::Always, 1, true),
            (RestartPolicy::OnFailure, 0, false),
            (RestartPolicy::OnFailure, 137, true),
            (RestartPolicy::Never, 0, false),
            (RestartPolicy::Never, 1, false),
        ];
        for (policy, code, want) in cases {
            assert_eq!(policy.restarts(code), want, "{policy:?} exit {code}");
        }
        assert_eq!(RestartPolicy::parse(None), RestartPolicy::Always);
        assert_eq!(RestartPolicy::parse(Some("Never")), RestartPolicy::Never);
        assert_eq!(
            RestartPolicy::parse(Some("OnFailure")),
            RestartPolicy::OnFailure
        );
    }

    #[test]
    fn crash_back_off_runs_0_10_20_up_to_5_minutes_and_resets_after_10_minutes() {
        let mut b = CrashBackoff::default();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300]);
        b.ran_for(Duration::from_secs(599));
        assert_eq!(
            b.next_delay().as_secs(),
            300,
            "nine minutes is not long enough"
        );
        b.ran_for(Duration::from_secs(601));
        assert_eq!(
            b.next_delay(),
            Duration::ZERO,
            "ten minutes of running resets it"
        );
        assert_eq!(b.next_delay().as_secs(), 10);
    }

    #[test]
    fn start_failures_wait_10_s_doubling_to_5_minutes() {
        let mut previous = None;
        let waits: Vec<u64> = (0..7)
            .map(|_| {
                let next = doubled(previous);
                previous = Some(next);
                next.as_secs()
            })
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn pull_policies_decide_whether_to_pull() {
        use ImageAction::*;
        let cases = [
            (Some("Always"), true, Pull),
            (Some("Always"), false, Pull),
            (Some("IfNotPresent"), true, UsePresent),
            (Some("IfNotPresent"), false, Pull),
            (Some("Never"), true, UsePresent),
            (Some("Never"), false, NeverPull),
            (None, false, Pull),
        ];
        for (policy, present, want) in cases {
            assert_eq!(
                image_action(policy, present),
                want,
                "{policy:?} present={present}"
            );
        }
    }

    #[test]
    fn ends_are_reported_as_kubernetes_reports_them() {
        assert_eq!(termination_reason(true, 137), "OOMKilled");
        assert_eq!(termination_reason(false, 0), "Completed");
        assert_eq!(termination_reason(false, 3), "Error");
    }

    #[test]
    fn phases_follow_the_containers() {
        let base = Containers {
            total: 2,
            ..Default::default()
        };
        assert_eq!(phase(base), "Pending");
        assert_eq!(phase(Containers { running: 1, ..base }), "Running");
        // A crash-looping pod with nothing running right now is still Running.
        assert_eq!(
            phase(Containers {
                restarted: true,
                ..base
            }),
            "Running"
        );
        assert_eq!(
            phase(Containers {
                all_ended: true,
                ..base
            }),
            "Succeeded"
        );
        let failed = Containers {
            all_ended: true,
            any_failed: true,
            ..base
        };
        assert_eq!(phase(failed), "Failed");
        assert_eq!(
            phase(Containers {
                total: 0,
                all_ended: true,
                ..Default::default()
            }),
            "Pending"
        );
    }
}
