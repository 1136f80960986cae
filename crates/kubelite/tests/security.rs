//! Security contexts on a real node, driven with the real kubectl: the user and groups a
//! container runs as, a read-only root filesystem, capabilities, no_new_privs and seccomp as the
//! kernel reports them, `runAsNonRoot` refusing a root image with Kubernetes' message, and an
//! unsafe sysctl rejected.

mod common;

use common::*;

const LOCKED_DOWN: &str = "apiVersion: v1
kind: Pod
metadata:
  name: locked
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    supplementalGroups: [4000]
    fsGroup: 2000
    seccompProfile: {type: RuntimeDefault}
    sysctls:
      - {name: net.ipv4.ping_group_range, value: '0 2147483647'}
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
      securityContext:
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
      volumeMounts:
        - {name: scratch, mountPath: /scratch}
        - {name: secret, mountPath: /secret}
  volumes:
    - {name: scratch, emptyDir: {}}
    # Mode 0400, owned by root: user 1000 reads it only as a member of the fsGroup.
    - {name: secret, secret: {secretName: locked-secret, defaultMode: 256}}
";

fn exec(c: &Cluster, pod: &str, script: &str) -> Out {
    c.kubectl(&["exec", pod, "--", "sh", "-c", script])
}

/// A line of the container's `/proc/self/status` (`CapEff`, `NoNewPrivs`, `Seccomp`).
fn proc_status(c: &Cluster, pod: &str, key: &str) -> String {
    let out = exec(c, pod, "cat /proc/self/status").ok().to_string();
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
        .trim()
        .to_string()
}

#[test]
fn a_locked_down_pod_runs_as_its_security_context_says() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file("locked.yaml", LOCKED_DOWN);
    let secret = ["create", "secret", "generic", "locked-secret"];
    c.kubectl(&[&secret[..], &["--from-literal=key=value"]].concat())
        .ok();
    c.kubectl(&["apply", "-f", "locked.yaml"]).ok();
    wait_running(&c, "locked");
    let id = exec(&c, "locked", "id").ok().to_string();
    assert!(id.starts_with("uid=1000 gid=3000"), "{id}");
    assert!(id.contains("4000") && id.contains("2000"), "{id}");
    let denied = exec(&c, "locked", "touch /made-here").err().to_string();
    assert!(denied.contains("Read-only file system"), "{denied}");
    exec(&c, "locked", "touch /scratch/ok && ls -ln /scratch/ok").ok();
    let group = exec(&c, "locked", "stat -c %g /scratch").ok().to_string();
    assert_eq!(group.trim(), "2000", "the fsGroup owns the emptyDir");
    let secret = exec(
        &c,
        "locked",
        "stat -L -c %g:%a /secret/key && cat /secret/key",
    );
    assert_eq!(
        secret.ok().lines().collect::<Vec<_>>(),
        ["2000:440", "value"],
        "the fsGroup owns the secret volume and may read it"
    );
    assert_eq!(proc_status(&c, "locked", "CapEff"), "0000000000000000");
    assert_eq!(proc_status(&c, "locked", "NoNewPrivs"), "1");
    assert_eq!(proc_status(&c, "locked", "Seccomp"), "2");
    let range = exec(&c, "locked", "cat /proc/sys/net/ipv4/ping_group_range")
        .ok()
        .to_string();
    assert_eq!(
        range.split_whitespace().collect::<Vec<_>>(),
        ["0", "2147483647"]
    );
    // Without a context a container keeps the runtime's default capabilities and runs as root.
    c.file(
        "plain.yaml",
        &KUARD_POD.replace("kubernetes-up-and-running", "plain"),
    );
    c.kubectl(&["apply", "-f", "plain.yaml"]).ok();
    wait_running(&c, "plain");
    assert!(exec(&c, "plain", "id").ok().starts_with("uid=0(root)"));
    assert_eq!(proc_status(&c, "plain", "Seccomp"), "0");
    assert_ne!(proc_status(&c, "plain", "CapEff"), "0000000000000000");
}

#[test]
fn run_as_non_root_refuses_a_root_image_and_unsafe_sysctls_are_rejected() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file(
        "nonroot.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: nonroot
spec:
  securityContext: {runAsNonRoot: true}
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
",
    );
    c.kubectl(&["apply", "-f", "nonroot.yaml"]).ok();
    let reason = || {
        c.pod_field(
            "nonroot",
            "{.status.containerStatuses[0].state.waiting.reason}",
        )
    };
    wait_for(&c, "nonroot", 60, "CreateContainerConfigError", reason);
    let uid = c.pod_field("nonroot", "{.metadata.uid}");
    let message = c.pod_field(
        "nonroot",
        "{.status.containerStatuses[0].state.waiting.message}",
    );
    assert_eq!(
        message,
        format!("container has runAsNonRoot and image will run as root (pod: \"nonroot_default({uid})\", container: kuard)")
    );
    c.file(
        "sysctl.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: sysctl
spec:
  securityContext:
    sysctls: [{name: kernel.msgmax, value: '65536'}]
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
",
    );
    c.kubectl(&["apply", "-f", "sysctl.yaml"]).ok();
    wait_for(&c, "sysctl", 30, "SysctlForbidden", || {
        c.pod_field("sysctl", "{.status.reason}")
    });
    assert_eq!(
        c.pod_field("sysctl", "{.status.message}"),
        "Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted"
    );
}

#[test]
fn pods_share_the_nodes_namespaces_or_one_pid_namespace_when_asked() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    let port = free_port();
    c.file(
        "host.yaml",
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: on-host
spec:
  hostNetwork: true
  hostPID: true
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
      args: ['--address=127.0.0.1:{port}']
---
apiVersion: v1
kind: Pod
metadata:
  name: shared
spec:
  shareProcessNamespace: true
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
    - name: sleeper
      image: gcr.io/kuar-demo/kuard-amd64:1
      command: [sleep, '3600']
"
        ),
    );
    c.kubectl(&["apply", "-f", "host.yaml"]).ok();
    wait_running(&c, "on-host");
    // The node's network: the pod's address is the node's, and it listens on the node.
    let node_ip = c
        .kubectl(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[0].status.addresses[?(@.type==\"InternalIP\")].address}",
        ])
        .ok()
        .to_string();
    assert_eq!(c.pod_field("on-host", "{.status.podIP}"), node_ip);
    let answered = eventually(20, || {
        let out = std::process::Command::new("curl")
            .args(["-s", "-m", "2", &format!("http://127.0.0.1:{port}/healthy")])
            .output()
            .ok()?;
        (out.stdout == b"ok").then_some(())
    });
    assert!(
        answered.is_some(),
        "kuard on the node's network did not answer"
    );
    let host_name = nix_hostname();
    assert_eq!(exec(&c, "on-host", "hostname").ok().trim(), host_name);
    // The node's PIDs: the server process is visible.
    let pid = c.pid().expect("server pid");
    exec(&c, "on-host", &format!("test -d /proc/{pid}")).ok();

    wait_running(&c, "shared");
    wait_for(&c, "shared", 30, "true", || {
        c.pod_field("shared", "{.status.containerStatuses[1].started}")
    });
    let ps = c
        .kubectl(&[
            "exec", "shared", "-c", "kuard", "--", "ps", "-o", "pid,comm",
        ])
        .ok()
        .to_string();
    assert!(
        ps.contains("sleep"),
        "the other container's process is visible:\n{ps}"
    );
    let first = ps
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("");
    assert_eq!(
        first, "1",
        "the pause process holds the namespace as process 1:\n{ps}"
    );
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}
