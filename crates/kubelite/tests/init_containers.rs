//! Init containers on a real node, as `kubectl get pods` shows them: `Init:0/1` while one runs,
//! the file it prepared served by the app after it, `Init:Error` under `restartPolicy: Never`
//! and `Init:CrashLoopBackOff` otherwise.

mod common;

use common::*;

const PREPARED: &str = "apiVersion: v1
kind: Pod
metadata:
  name: prepared
spec:
  initContainers:
    - name: prepare
      image: gcr.io/kuar-demo/kuard-amd64:1
      command: [sh, -c, 'sleep 4; echo prepared by init > /work/index.txt']
      volumeMounts: [{name: work, mountPath: /work}]
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
      volumeMounts: [{name: work, mountPath: /work}]
  volumes:
    - {name: work, emptyDir: {}}
";

fn shown_status(c: &Cluster, pod: &str) -> String {
    let line = c.kubectl(&["get", "pod", pod, "--no-headers"]).stdout;
    line.split_whitespace().nth(2).unwrap_or("").to_string()
}

#[test]
fn an_init_container_prepares_what_the_app_serves() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file("prepared.yaml", PREPARED);
    c.kubectl(&["apply", "-f", "prepared.yaml"]).ok();
    wait_for(&c, "prepared", 30, "Init:0/1", || {
        shown_status(&c, "prepared")
    });
    assert_eq!(c.pod_field("prepared", "{.status.phase}"), "Pending");
    wait_running(&c, "prepared");
    wait_for(&c, "prepared", 30, "Running", || {
        shown_status(&c, "prepared")
    });
    let served = c.kubectl(&["exec", "prepared", "--", "cat", "/work/index.txt"]);
    assert_eq!(served.ok(), "prepared by init\n");
    let init = c.pod_field(
        "prepared",
        "{.status.initContainerStatuses[0].state.terminated.reason}",
    );
    assert_eq!(init, "Completed");
    let condition = "{.status.conditions[?(@.type==\"Initialized\")].status}";
    assert_eq!(c.pod_field("prepared", condition), "True");
}

#[test]
fn failing_init_containers_show_init_error_or_crash_loop() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    let failing = |name: &str, policy: &str| {
        format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {policy}
  initContainers:
    - name: check
      image: gcr.io/kuar-demo/kuard-amd64:1
      command: [sh, -c, 'exit 3']
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
"
        )
    };
    c.file("never.yaml", &failing("never", "Never"));
    c.file("always.yaml", &failing("always", "Always"));
    c.kubectl(&["apply", "-f", "never.yaml", "-f", "always.yaml"])
        .ok();
    wait_for(&c, "never", 30, "Init:Error", || shown_status(&c, "never"));
    assert_eq!(c.pod_field("never", "{.status.phase}"), "Failed");
    wait_for(&c, "always", 60, "Init:CrashLoopBackOff", || {
        shown_status(&c, "always")
    });
    assert_eq!(c.pod_field("always", "{.status.phase}"), "Pending");
    let app = c.pod_field(
        "always",
        "{.status.containerStatuses[0].state.waiting.reason}",
    );
    assert_eq!(app, "PodInitializing");
}
