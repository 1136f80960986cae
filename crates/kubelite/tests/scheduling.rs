//! The scheduler, the node agent and the node lifecycle controller, through the real binary: the
//! in-process agent registers a Ready node and pods are bound to it; an agent joins with the
//! token; a node whose agent stops goes NotReady and pods stop landing there.

mod common;

use std::process::{Command, Stdio};

use common::*;

fn events_for(c: &Cluster, pod: &str) -> String {
    let out = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod}"),
    ]);
    out.ok().to_string()
}

#[test]
fn the_local_agent_registers_a_node_and_pods_get_scheduled() {
    let c = Cluster::start_with_agent(&[]);
    let node = eventually(20, || {
        let out = c.kubectl(&["get", "nodes", "--no-headers"]);
        let line = out.stdout.lines().next()?.to_string();
        line.contains(" Ready ").then_some(line)
    })
    .unwrap_or_else(|| {
        panic!(
            "the node never became Ready:\n{}\n{}",
            c.kubectl(&["get", "nodes"]).stdout,
            c.log()
        )
    });
    let name = node.split_whitespace().next().unwrap().to_string();
    let json = c.kubectl(&["get", "node", &name, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.ok()).unwrap();
    let cpus: usize = v["status"]["capacity"]["cpu"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        cpus,
        std::thread::available_parallelism().unwrap().get(),
        "capacity is the host's"
    );
    assert_eq!(v["status"]["capacity"]["pods"], "110");
    assert!(v["status"]["nodeInfo"]["kernelVersion"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
    let lease = c.kubectl(&[
        "get",
        "lease",
        &name,
        "-n",
        "kube-node-lease",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(lease.ok(), name);

    c.file("pod.yaml", KUARD_POD);
    c.kubectl(&["create", "-f", "pod.yaml"]).ok();
    let bound = eventually(20, || {
        let out = c.kubectl(&[
            "get",
            "pod",
            "kubernetes-up-and-running",
            "-o",
            "jsonpath={.spec.nodeName}",
        ]);
        (out.stdout == name).then_some(())
    });
    assert!(bound.is_some(), "the pod is bound to the node");
    let events = eventually(10, || {
        let e = events_for(&c, "kubernetes-up-and-running");
        e.contains("Scheduled").then_some(e)
    })
    .expect("a Scheduled event");
    assert!(
        events.contains(&format!(
            "Successfully assigned default/kubernetes-up-and-running to {name}"
        )),
        "{events}"
    );
    // A bound pod is deleted gracefully and the agent finishes the deletion.
    c.kubectl(&[
        "delete",
        "pod",
        "kubernetes-up-and-running",
        "--timeout=30s",
    ])
    .ok();
}

#[test]
fn an_agent_joins_with_the_token_and_a_silent_node_goes_not_ready() {
    let c = Cluster::start_with(&["--node-monitor-grace-period", "2"]);
    // Without nodes the scheduler says so.
    c.file("pod.yaml", KUARD_POD);
    c.kubectl(&["create", "-f", "pod.yaml"]).ok();
    let waiting = eventually(10, || {
        let e = events_for(&c, "kubernetes-up-and-running");
        e.contains("no nodes available to schedule pods")
            .then_some(e)
    });
    assert!(waiting.is_some(), "FailedScheduling without nodes");
    let condition = c.kubectl(&[
        "get",
        "pod",
        "kubernetes-up-and-running",
        "-o",
        "jsonpath={.status.conditions[0].reason}",
    ]);
    assert_eq!(condition.ok(), "Unschedulable");

    let token_file = c.data_dir().join("server/tls/node-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    // A wrong token is refused before anything is sent with it.
    let bad = Command::new(env!("CARGO_BIN_EXE_kubelite"))
        .args([
            "agent",
            "--server",
            &c.url(),
            "--node-name",
            "n-bad",
            "--token",
        ])
        .arg(format!("K10{}::node:x", "0".repeat(64)))
        .arg("--data-dir")
        .arg(c.dir.path().join("bad-agent"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("does not match the token"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    let agent_dir = c.dir.path().join("joined");
    let bridge = format!("kj{}", std::process::id() % 100000);
    let mut agent = Command::new(env!("CARGO_BIN_EXE_kubelite"))
        .args([
            "agent",
            "--server",
            &c.url(),
            "--node-name",
            "joined-1",
            "--token-file",
        ])
        .arg(&token_file)
        .args(["--pod-bridge", &bridge, "--pod-cidr", "10.99.250.0/24"])
        .args(["--kubelet-port", &free_port().to_string()])
        .arg("--data-dir")
        .arg(&agent_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = eventually(20, || {
        let out = c.kubectl(&["get", "node", "joined-1", "--no-headers"]);
        out.stdout.contains(" Ready ").then_some(())
    });
    // The waiting pod lands on the new node.
    let bound = eventually(20, || {
        let out = c.kubectl(&[
            "get",
            "pod",
            "kubernetes-up-and-running",
            "-o",
            "jsonpath={.spec.nodeName}",
        ]);
        (out.stdout == "joined-1").then_some(())
    });
    // No process shows the token's secret on its command line.
    let secret = token.trim().rsplit_once(':').unwrap().1.to_string();
    let shown: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&secret))
        .collect();
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(shown.is_empty(), "the join token is visible: {shown:?}");
    // The agent is gone for good in this test: remove what it started for the pod.
    sweep_node(&agent_dir.join("agent"), &bridge);
    assert!(ready.is_some(), "the joined node becomes Ready");
    assert!(
        bound.is_some(),
        "the pending pod is scheduled once a node exists"
    );
    // Silent for longer than the grace period: NotReady, tainted, and no longer schedulable.
    let not_ready = eventually(30, || {
        let out = c.kubectl(&["get", "node", "joined-1", "--no-headers"]);
        out.stdout.contains("NotReady").then_some(())
    });
    assert!(
        not_ready.is_some(),
        "{}",
        c.kubectl(&["get", "node", "joined-1", "-o", "yaml"]).stdout
    );
    c.file(
        "second.yaml",
        &KUARD_POD.replace("kubernetes-up-and-running", "second"),
    );
    c.kubectl(&["create", "-f", "second.yaml"]).ok();
    let msg = eventually(15, || {
        let e = events_for(&c, "second");
        e.contains("FailedScheduling").then_some(e)
    })
    .expect("FailedScheduling for a pod with no ready node");
    assert!(msg.contains("0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }."), "{msg}");
}

#[test]
fn a_bare_node_object_attracts_no_pods_until_it_is_ready() {
    let c = Cluster::start_with(&["--node-monitor-grace-period", "600"]);
    c.file(
        "node.yaml",
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: bare\n",
    );
    c.kubectl(&["create", "-f", "node.yaml"]).ok();
    let taints = c.kubectl(&["get", "node", "bare", "-o", "jsonpath={.spec.taints}"]);
    assert!(
        taints
            .ok()
            .contains("\"key\":\"node.kubernetes.io/not-ready\""),
        "{}",
        taints.stdout
    );
    c.file("pod.yaml", KUARD_POD);
    c.kubectl(&["create", "-f", "pod.yaml"]).ok();
    let msg = eventually(15, || {
        let e = events_for(&c, "kubernetes-up-and-running");
        e.contains("FailedScheduling").then_some(e)
    })
    .expect("FailedScheduling for a pod with only a bare node");
    assert!(
        msg.contains("0/1 nodes are available: 1 node(s) had untolerated taint"),
        "{msg}"
    );
    let node = c.kubectl(&[
        "get",
        "pod",
        "kubernetes-up-and-running",
        "-o",
        "jsonpath={.spec.nodeName}",
    ]);
    assert_eq!(
        node.ok(),
        "",
        "the pod was bound to a node that is not ready"
    );
    // A node with room that is ready takes the 32-CPU pod the tutorial leaves pending.
    c.file(
        "big.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: big\nspec:\n  tolerations:\n  - key: node.kubernetes.io/not-ready\n    operator: Exists\n  containers:\n  - name: kuard\n    image: gcr.io/kuar-demo/kuard-amd64:1\n    resources:\n      requests:\n        cpu: \"32\"\n",
    );
    c.kubectl(&["create", "-f", "big.yaml"]).ok();
    let pending = eventually(15, || {
        let e = events_for(&c, "big");
        e.contains("Insufficient cpu").then_some(e)
    });
    assert!(pending.is_some(), "{}", events_for(&c, "big"));
    // A node change that makes no room retries the pod; the repeated event folds into one, which
    // describe shows with its count, as it does against Kubernetes.
    c.kubectl(&["label", "node", "bare", "retry=1"]).ok();
    let folded = eventually(15, || {
        let out = c.kubectl(&["describe", "pod", "big"]);
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains("FailedScheduling"))?
            .to_string();
        line.contains("(x2 over ").then_some(line)
    });
    assert!(
        folded.is_some_and(|l| l.contains("default-scheduler  0/1 nodes are available")),
        "{}",
        c.kubectl(&["describe", "pod", "big"]).stdout
    );
    let token = c.data_dir().join("server/tls/node-token");
    let mut fake = Command::new(env!("CARGO_BIN_EXE_kubelite"))
        .args(["agent", "--server", &c.url(), "--token-file"])
        .arg(&token)
        .args([
            "--node-name",
            "roomy",
            "--fake-nodes",
            "1",
            "--fake-cpus",
            "64",
        ])
        .arg("--data-dir")
        .arg(c.dir.path().join("fake"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let placed = eventually(30, || {
        let out = c.kubectl(&[
            "get",
            "pod",
            "big",
            "-o",
            "jsonpath={.spec.nodeName} {.status.phase}",
        ]);
        (out.stdout == "roomy-0 Running").then_some(())
    });
    let _ = fake.kill();
    let _ = fake.wait();
    assert!(
        placed.is_some(),
        "{}",
        c.kubectl(&["describe", "pod", "big"]).stdout
    );
}
