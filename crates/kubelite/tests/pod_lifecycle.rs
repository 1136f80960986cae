//! What happens to a running pod over time: its logs as `kubectl logs` asks for them (flags and
//! Kubernetes' error texts), condition times, CPU limits the kernel enforces, an OOM kill seen the
//! same way every time, `activeDeadlineSeconds`, and the restart policies with the phases they
//! lead to.

mod common;

use std::time::Duration;

use common::*;

fn pod_yaml(name: &str, extra_container: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{extra_spec}  containers:\n  - name: kuard\n    image: gcr.io/kuar-demo/kuard-amd64:1\n{extra_container}"
    )
}

#[test]
fn logs_answer_every_flag_and_error_as_kubernetes_does() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file("pod.yaml", KUARD_POD);
    c.kubectl(&["create", "-f", "pod.yaml"]).ok();
    wait_running(&c, "kubernetes-up-and-running");
    let pod = "kubernetes-up-and-running";
    let full = eventually(20, || {
        let out = c.kubectl(&["logs", pod]);
        out.stdout
            .contains("Serving on HTTP on :8080")
            .then_some(out.stdout)
    })
    .expect("the app logs its address");
    let limited = c.kubectl(&["logs", pod, "--limit-bytes=7"]);
    assert_eq!(limited.ok(), &full[..7]);
    assert!(c
        .kubectl(&["logs", pod, "--since=1h"])
        .ok()
        .contains("Serving on HTTP"));
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    assert_eq!(
        c.kubectl(&["logs", pod, &format!("--since-time={future}")])
            .ok(),
        ""
    );
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    assert!(c
        .kubectl(&["logs", pod, &format!("--since-time={past}")])
        .ok()
        .contains("Serving on HTTP"));
    let timestamps = c.kubectl(&["logs", pod, "--timestamps"]);
    assert!(timestamps
        .ok()
        .starts_with(&chrono::Utc::now().format("%Y-").to_string()));
    // Errors, word for word.
    let unknown = c.kubectl(&["logs", pod, "-c", "nope"]);
    assert!(
        unknown
            .err()
            .contains("container nope is not valid for pod kubernetes-up-and-running"),
        "{}",
        unknown.stderr
    );
    let previous = c.kubectl(&["logs", pod, "-p"]);
    assert!(
        previous.err().contains(
            "previous terminated container \"kuard\" in pod \"kubernetes-up-and-running\" not found"
        ),
        "{}",
        previous.stderr
    );
    c.file(
        "waiting.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: waiting\nspec:\n  containers:\n  - name: kuard\n    image: 127.0.0.1:1/missing:1\n",
    );
    c.kubectl(&["create", "-f", "waiting.yaml"]).ok();
    let waiting = eventually(30, || {
        let out = c.kubectl(&["logs", "waiting"]);
        out.stderr
            .contains("container \"kuard\" in pod \"waiting\" is waiting to start: ")
            .then_some(out.stderr)
    });
    assert!(
        waiting.is_some(),
        "{}",
        c.kubectl(&["logs", "waiting"]).stderr
    );
    // Follow: new lines arrive as they are written, and the stream ends with the container.
    let mut follow = c
        .kubectl_cmd(std::path::Path::new(KUBECTL))
        .args(["logs", "-f", pod])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The shell may be killed with the container it just stopped (exit 137).
    let killed = c.kubectl(&["exec", pod, "--", "sh", "-c", "kill 1"]);
    assert!(killed.code == 0 || killed.code == 137, "{}", killed.stderr);
    let ended = eventually(30, || follow.try_wait().ok().flatten());
    assert!(ended.is_some(), "logs -f did not end with its container");
    // Conditions carry the time they last changed, which later status writes keep.
    let ready_since = |c: &Cluster| {
        c.kubectl(&[
            "get",
            "pod",
            "waiting",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].lastTransitionTime}",
        ])
        .ok()
        .to_string()
    };
    let first = ready_since(&c);
    assert!(first.ends_with('Z'), "{first}");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(ready_since(&c), first);
    let describe = c.kubectl(&["describe", "pod", pod]).ok().to_string();
    for want in [
        "Conditions:",
        "Ready ",
        "QoS Class:",
        "BestEffort",
        "Restart Count:",
    ] {
        assert!(describe.contains(want), "{want}: {describe}");
    }
}

/// The CPU time a container's cgroup has used, in nanoseconds (cgroup v1 `cpuacct.usage`, or
/// v2 `cpu.stat`).
fn cpu_usage_ns(c: &Cluster, pod: &str) -> u64 {
    let q = |path: &str| {
        c.kubectl(&["get", "pod", pod, "-o", &format!("jsonpath={path}")])
            .ok()
            .to_string()
    };
    let uid = q("{.metadata.uid}");
    let id = q("{.status.containerStatuses[0].containerID}");
    let id = id.split_once("://").unwrap().1;
    let rel = format!("kubelite/pod{uid}/{id}");
    for base in ["/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct"] {
        if let Ok(text) = std::fs::read_to_string(format!("{base}/{rel}/cpuacct.usage")) {
            return text.trim().parse().unwrap();
        }
    }
    let stat = std::fs::read_to_string(format!("/sys/fs/cgroup/{rel}/cpu.stat"))
        .expect("the container's cgroup");
    let usec: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    usec * 1000
}

#[test]
fn a_cpu_limit_holds_a_busy_loop_to_its_share() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file(
        "busy.yaml",
        &pod_yaml(
            "busy",
            "    command: [\"sh\", \"-c\", \"while :; do :; done\"]\n    resources:\n      limits:\n        cpu: 200m\n",
            "  terminationGracePeriodSeconds: 1\n",
        ),
    );
    c.kubectl(&["create", "-f", "busy.yaml"]).ok();
    wait_running(&c, "busy");
    let before = cpu_usage_ns(&c, "busy");
    let started = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let used = (cpu_usage_ns(&c, "busy") - before) as f64 / 1e9;
    let share = used / started.elapsed().as_secs_f64();
    assert!(
        share <= 0.25,
        "a 200m limit let the loop use {share:.2} CPU"
    );
    assert!(
        share >= 0.1,
        "the loop barely ran ({share:.2} CPU): the measurement is wrong"
    );
    let qos = c.kubectl(&["get", "pod", "busy", "-o", "jsonpath={.status.qosClass}"]);
    // The pod's cgroup holds its pause process too.
    let uid = c
        .kubectl(&["get", "pod", "busy", "-o", "jsonpath={.metadata.uid}"])
        .ok()
        .to_string();
    let sandbox: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            c.data_dir()
                .join(format!("agent/pods/{uid}/sandbox/sandbox.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let pause = sandbox["pause_pid"].as_i64().unwrap();
    let cgroups = std::fs::read_to_string(format!("/proc/{pause}/cgroup")).unwrap();
    assert!(
        cgroups
            .lines()
            .any(|l| (l.contains("memory") || l.starts_with("0::"))
                && l.ends_with(&format!("/kubelite/pod{uid}"))),
        "{cgroups}"
    );
    // A CPU limit alone: the request defaults to it, memory has neither, so Burstable.
    assert_eq!(qos.ok(), "Burstable");
}

#[test]
fn an_oom_kill_is_reported_the_same_way_every_time() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    // Ten containers over their limit: every one must end as OOMKilled with 137, be published
    // so, and restart.
    let pods: Vec<String> = (0..10).map(|i| format!("limited-{i}")).collect();
    for pod in &pods {
        c.file(
            &format!("{pod}.yaml"),
            &pod_yaml(
                pod,
                "    resources:\n      limits:\n        memory: 256M\n",
                "",
            ),
        );
        c.kubectl(&["create", "-f", &format!("{pod}.yaml")]).ok();
    }
    let mut watch = c
        .kubectl_cmd(std::path::Path::new(KUBECTL))
        .args(["get", "pods", "-w", "--no-headers"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push(line);
        }
    });
    for pod in &pods {
        wait_running(&c, pod);
        let ip = c
            .kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.podIP}"])
            .ok()
            .to_string();
        let _ = std::process::Command::new("curl")
            .args(["-s", "-m", "10", "-X", "POST"])
            .arg(format!("http://{ip}:8080/mem/api/alloc?size=524288000"))
            .output();
    }
    for pod in &pods {
        let seen = eventually(60, || {
            let out = c.kubectl(&[
                "get",
                "pod",
                pod,
                "-o",
                "jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].lastState.terminated.reason} {.status.containerStatuses[0].lastState.terminated.exitCode}",
            ]);
            (!out.stdout.starts_with("0 ")).then(|| out.stdout.clone())
        });
        assert_eq!(seen.as_deref(), Some("1 OOMKilled 137"), "{pod}");
    }
    let _ = watch.kill();
    let _ = watch.wait();
    // `kubectl get pods -w` showed each pod as OOMKilled before it ran again.
    let lines = lines.lock().unwrap().clone();
    for pod in &pods {
        let shown = lines
            .iter()
            .any(|l| l.starts_with(&format!("{pod} ")) && l.contains("OOMKilled"));
        assert!(
            shown,
            "{pod} was never shown OOMKilled:\n{}",
            lines.join("\n")
        );
    }
}

#[test]
fn active_deadline_ends_the_pod() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file(
        "deadline.yaml",
        &pod_yaml("deadline", "", "  activeDeadlineSeconds: 3\n"),
    );
    c.kubectl(&["create", "-f", "deadline.yaml"]).ok();
    wait_running(&c, "deadline");
    let ended = eventually(30, || {
        let out = c.kubectl(&[
            "get",
            "pod",
            "deadline",
            "-o",
            "jsonpath={.status.phase} {.status.reason} {.status.containerStatuses[0].state.terminated.reason}",
        ]);
        out.stdout
            .starts_with("Failed DeadlineExceeded")
            .then(|| out.stdout.clone())
    });
    assert!(
        ended.is_some(),
        "{}",
        c.kubectl(&["describe", "pod", "deadline"]).stdout
    );
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=deadline",
    ]);
    assert!(
        events
            .ok()
            .contains("Pod was active on the node longer than the specified deadline"),
        "{}",
        events.stdout
    );
}

#[test]
fn restart_policies_end_pods_in_the_phase_kubernetes_gives() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    // (name, restartPolicy, exit code, phase it ends in — None: it keeps restarting)
    let cases = [
        ("never-ok", "Never", 0, Some("Succeeded")),
        ("never-fails", "Never", 3, Some("Failed")),
        ("onfailure-ok", "OnFailure", 0, Some("Succeeded")),
        ("onfailure-fails", "OnFailure", 1, None),
    ];
    for (name, policy, code, _) in cases {
        let command = format!("    command: [\"sh\", \"-c\", \"exit {code}\"]\n");
        let spec = format!("  restartPolicy: {policy}\n  terminationGracePeriodSeconds: 1\n");
        c.file(&format!("{name}.yaml"), &pod_yaml(name, &command, &spec));
        c.kubectl(&["create", "-f", &format!("{name}.yaml")]).ok();
    }
    for (name, _, code, phase) in cases {
        let wanted = match phase {
            Some(phase) => format!("{phase} 0 {code}"),
            // OnFailure restarts a failed container: the pod stays Running and counts restarts.
            None => "Running 2".to_string(),
        };
        let path = "jsonpath={.status.phase} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.terminated.exitCode}";
        let seen = eventually(60, || {
            let out = c.kubectl(&["get", "pod", name, "-o", path]);
            out.stdout.trim_end().starts_with(&wanted).then_some(())
        });
        assert!(
            seen.is_some(),
            "{name} never showed {wanted:?}:\n{}",
            c.kubectl(&["describe", "pod", name]).stdout
        );
    }
    let reason = c.kubectl(&[
        "get",
        "pod",
        "never-fails",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.terminated.reason}",
    ]);
    assert_eq!(reason.ok(), "Error");
}

#[test]
fn deletion_asks_with_sigterm_and_forces_with_sigkill_after_the_grace_period() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    // One container ends when asked; the other ignores SIGTERM and must be killed.
    let polite = "    command: [\"sh\", \"-c\", \"trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done\"]\n";
    let stubborn = "    command: [\"sh\", \"-c\", \"trap '' TERM; echo ready; while :; do sleep 0.1; done\"]\n";
    let grace = "  terminationGracePeriodSeconds: 3\n";
    c.file("polite.yaml", &pod_yaml("polite", polite, grace));
    c.file("stubborn.yaml", &pod_yaml("stubborn", stubborn, grace));
    for f in ["polite.yaml", "stubborn.yaml"] {
        c.kubectl(&["create", "-f", f]).ok();
    }
    for pod in ["polite", "stubborn"] {
        wait_running(&c, pod);
        let ready = eventually(20, || {
            c.kubectl(&["logs", pod])
                .stdout
                .contains("ready")
                .then_some(())
        });
        assert!(ready.is_some(), "{pod} did not start its loop");
    }
    // Follow the polite container's log through its deletion to see it got SIGTERM.
    let mut follow = c
        .kubectl_cmd(std::path::Path::new(KUBECTL))
        .args(["logs", "-f", "polite"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(follow.stdout.take().unwrap());
    let timed_delete = |pod: &str| {
        let started = std::time::Instant::now();
        c.kubectl(&["delete", "pod", pod]).ok();
        started.elapsed()
    };
    let quick = timed_delete("polite");
    let forced = timed_delete("stubborn");
    let _ = follow.kill();
    let _ = follow.wait();
    let log: Vec<String> = lines.try_iter().collect();
    assert!(log.iter().any(|l| l == "got TERM"), "{log:?}");
    assert!(
        quick < Duration::from_millis(2500),
        "the polite pod took {quick:?}"
    );
    assert!(
        forced >= Duration::from_millis(2800) && forced < Duration::from_secs(15),
        "the stubborn pod took {forced:?} (grace period 3 s)"
    );
    for pod in ["polite", "stubborn"] {
        let events = c.kubectl(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={pod},reason=Killing"),
            "-o",
            "jsonpath={.items[*].message}",
        ]);
        assert_eq!(events.ok(), "Stopping container kuard", "{pod}");
    }
}
