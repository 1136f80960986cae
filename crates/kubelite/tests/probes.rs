//! Liveness, readiness and startup probes on a real node, as "Kubernetes: Up and Running" uses
//! them on kuard: readiness turned off and on through kuard's probe API moves the Ready
//! condition, failed liveness restarts the container with the kubelet's events; exec startup
//! probes hold back the others, and a TCP probe to a closed port reads as Go's dialer says it.

mod common;

use common::*;

const HEALTH_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: kuard
spec:
  containers:
    - image: gcr.io/kuar-demo/kuard-amd64:1
      name: kuard
      livenessProbe:
        httpGet:
          path: /healthy
          port: http
        periodSeconds: 1
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: /ready
          port: 8080
        periodSeconds: 1
        failureThreshold: 2
      ports:
        - containerPort: 8080
          name: http
          protocol: TCP
";

fn ready(c: &Cluster, pod: &str) -> String {
    c.pod_field(pod, "{.status.conditions[?(@.type==\"Ready\")].status}")
}

/// Tells kuard's `probe` (healthy or ready) to fail its next `n` answers (n < 0: all).
fn fail_next(ip: &str, probe: &str, n: i32) {
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-m",
            "10",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
        ])
        .arg("--data")
        .arg(format!("{{\"failNext\": {n}}}"))
        .arg(format!("http://{ip}:8080/{probe}/api"))
        .output()
        .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains(&format!("\"failNext\":{n}")),
        "kuard did not take the setting: {body}"
    );
}

#[test]
fn kuard_readiness_and_liveness_probes_drive_ready_and_restarts() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file("kuard.yaml", HEALTH_POD);
    c.kubectl(&["apply", "-f", "kuard.yaml"]).ok();
    wait_for(&c, "kuard", 60, "True", || ready(&c, "kuard"));
    let ip = c.pod_field("kuard", "{.status.podIP}");

    fail_next(&ip, "ready", -1);
    wait_for(&c, "kuard", 20, "False", || ready(&c, "kuard"));
    let table = c.kubectl(&["get", "pod", "kuard", "--no-headers"]).stdout;
    assert!(
        table.contains(" 0/1 ") && table.contains("Running"),
        "{table}"
    );
    let reason = c.pod_field(
        "kuard",
        "{.status.conditions[?(@.type==\"Ready\")].message}",
    );
    assert_eq!(reason, "containers with unready status: [kuard]");
    assert!(
        c.events()
            .contains("Readiness probe failed: HTTP probe failed with statuscode: 500"),
        "{}",
        c.events()
    );
    fail_next(&ip, "ready", 0);
    wait_for(&c, "kuard", 20, "True", || ready(&c, "kuard"));

    fail_next(&ip, "healthy", 3);
    let restarts = || c.pod_field("kuard", "{.status.containerStatuses[0].restartCount}");
    wait_for(&c, "kuard", 30, "1", restarts);
    let seen = c.events();
    assert!(
        seen.contains("Liveness probe failed: HTTP probe failed with statuscode: 500"),
        "{seen}"
    );
    assert!(
        seen.contains("Container kuard failed liveness probe, will be restarted"),
        "{seen}"
    );
    wait_for(&c, "kuard", 30, "True", || ready(&c, "kuard"));
}

const STARTUP_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: slow
spec:
  containers:
    - image: gcr.io/kuar-demo/kuard-amd64:1
      name: kuard
      startupProbe:
        exec:
          command: [\"sh\", \"-c\", \"test -e /tmp/started || { echo not started yet; exit 1; }\"]
        periodSeconds: 1
        failureThreshold: 120
      readinessProbe:
        tcpSocket:
          port: 8081
        periodSeconds: 1
";

#[test]
fn exec_startup_probes_gate_and_tcp_probes_dial_the_pod() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file("slow.yaml", STARTUP_POD);
    c.kubectl(&["apply", "-f", "slow.yaml"]).ok();
    let started = || c.pod_field("slow", "{.status.containerStatuses[0].started}");
    wait_for(&c, "slow", 60, "false", started);
    let failing = eventually(20, || {
        let seen = c.events();
        seen.contains("Startup probe failed: not started yet")
            .then_some(())
    });
    assert!(failing.is_some(), "{}", c.events());
    assert!(
        !c.events().contains("Readiness probe"),
        "readiness waits for startup"
    );

    c.kubectl(&["exec", "slow", "--", "touch", "/tmp/started"])
        .ok();
    wait_for(&c, "slow", 20, "true", started);
    let ip = c.pod_field("slow", "{.status.podIP}");
    let refused =
        format!("Readiness probe failed: dial tcp {ip}:8081: connect: connection refused");
    let seen = eventually(20, || c.events().contains(&refused).then_some(()));
    assert!(seen.is_some(), "{}", c.events());
    assert_eq!(ready(&c, "slow"), "False");
    assert_eq!(
        c.pod_field("slow", "{.status.containerStatuses[0].restartCount}"),
        "0"
    );
}
