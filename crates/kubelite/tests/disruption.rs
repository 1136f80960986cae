//! PodDisruptionBudgets, `pods/eviction` and `kubectl drain`, through the real binary and the
//! real kubectl: the disruption controller keeps each budget's status, evictions are refused with
//! Kubernetes' 429 while a budget allows none, and drain evicts what it may (or, on a server dry
//! run, only says so), on a fake node whose pods run on paper.

mod common;

use std::process::{Child, Command, Stdio};

use common::*;

/// A fake node `NAME-0` whose agent reports its pods Running and Ready; killed when dropped.
struct FakeNode(Child);

impl FakeNode {
    fn join(c: &Cluster, name: &str) -> FakeNode {
        let token = c.data_dir().join("server/tls/node-token");
        let child = Command::new(env!("CARGO_BIN_EXE_kubelite"))
            .args(["agent", "--server", &c.url(), "--token-file"])
            .arg(&token)
            .args(["--node-name", name, "--fake-nodes", "1"])
            .arg("--data-dir")
            .arg(c.dir.path().join(format!("fake-{name}")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the fake agent starts");
        FakeNode(child)
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bare_pod(name: &str, app: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: {app}\nspec:\n  containers:\n  - name: kuard\n    image: gcr.io/kuar-demo/kuard-amd64:1\n"
    )
}

/// `kubectl get pdb NAME` columns after the name: min available, max unavailable, allowed.
fn budget_row(c: &Cluster, name: &str) -> Vec<String> {
    let out = c.kubectl(&["get", "pdb", name, "--no-headers"]);
    out.stdout
        .split_whitespace()
        .skip(1)
        .take(3)
        .map(str::to_string)
        .collect()
}

fn wait_allowed(c: &Cluster, name: &str, allowed: &str) {
    let seen = eventually(30, || {
        (budget_row(c, name).get(2).map(String::as_str) == Some(allowed)).then_some(())
    });
    assert!(
        seen.is_some(),
        "{}",
        c.kubectl(&["get", "pdb", name, "-o", "yaml"]).stdout
    );
}

fn pods_on(c: &Cluster, node: &str) -> Vec<String> {
    let out = c.kubectl(&[
        "get",
        "pods",
        "--field-selector",
        &format!("spec.nodeName={node}"),
        "-o",
        "name",
    ]);
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn budgets_are_kept_and_evictions_respect_them() {
    let c = Cluster::start();
    let _node = FakeNode::join(&c, "budget");
    for (name, app) in [("web-a", "web"), ("web-b", "web"), ("web-c", "web")] {
        c.file(&format!("{name}.yaml"), &bare_pod(name, app));
        c.kubectl(&["create", "-f", &format!("{name}.yaml")]).ok();
    }
    // kubectl sends this typed create as protobuf (1.32+) or JSON (older).
    let out = c.kubectl(&[
        "create",
        "poddisruptionbudget",
        "web",
        "--selector=app=web",
        "--min-available=2",
    ]);
    assert_eq!(out.ok(), "poddisruptionbudget.policy/web created\n");
    wait_allowed(&c, "web", "1");
    assert_eq!(budget_row(&c, "web"), ["2", "N/A", "1"]);
    let header = c.kubectl(&["get", "pdb"]);
    assert!(
        header
            .ok()
            .starts_with("NAME   MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS   AGE\n"),
        "{}",
        header.stdout
    );
    let status = c.kubectl(&[
        "get",
        "pdb",
        "web",
        "-o",
        "jsonpath={.status.currentHealthy} {.status.desiredHealthy} {.status.expectedPods} {.status.conditions[0].reason}",
    ]);
    assert_eq!(status.ok(), "3 2 3 SufficientPods");
    // Validation as Kubernetes words it.
    c.file(
        "both.yaml",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: both\nspec:\n  minAvailable: 1\n  maxUnavailable: 1\n",
    );
    let refused = c.kubectl(&["create", "-f", "both.yaml"]);
    assert!(
        refused
            .err()
            .contains("minAvailable and maxUnavailable cannot be both set"),
        "{}",
        refused.stderr
    );

    // One eviction is allowed; it charges the budget, and the next is refused.
    let eviction = |pod: &str| {
        c.file(
            &format!("evict-{pod}.json"),
            &format!(
                r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}","namespace":"default"}}}}"#
            ),
        );
        c.kubectl(&[
            "create",
            "--raw",
            &format!("/api/v1/namespaces/default/pods/{pod}/eviction"),
            "-f",
            c.dir
                .path()
                .join(format!("evict-{pod}.json"))
                .to_str()
                .unwrap(),
        ])
    };
    let first = eviction("web-a");
    assert!(
        first.ok().contains(r#""status":"Success""#),
        "{}",
        first.stdout
    );
    let gone = eventually(30, || {
        (c.kubectl(&["get", "pod", "web-a"]).code != 0).then_some(())
    });
    assert!(gone.is_some(), "the evicted pod is deleted");
    wait_allowed(&c, "web", "0");
    let second = eviction("web-b");
    assert!(
        second.err().contains(
            "Error from server (TooManyRequests): Cannot evict pod as it would violate the pod's disruption budget."
        ),
        "{}",
        second.stderr
    );
    let events = c.kubectl(&["get", "pod", "web-b"]);
    assert!(events.ok().contains("Running"), "web-b stays");
}

#[test]
fn kubectl_drain_evicts_what_the_budgets_allow() {
    drain_with(std::path::Path::new(KUBECTL), "drain");
}

#[test]
fn kubelites_own_kubectl_drains_as_kubectl_does() {
    let (_dir, kubectl) = kubelite_kubectl();
    drain_with(&kubectl, "own");
}

fn drain_with(kubectl: &std::path::Path, name: &str) {
    let c = Cluster::start();
    let _node = FakeNode::join(&c, name);
    let node = &format!("{name}-0");
    let run = |args: &[&str]| c.kubectl_with(kubectl, args);
    for name in ["one", "two"] {
        c.file(&format!("{name}.yaml"), &bare_pod(name, "free"));
        c.kubectl(&["create", "-f", &format!("{name}.yaml")]).ok();
    }
    c.file("held.yaml", &bare_pod("held", "held"));
    c.kubectl(&["create", "-f", "held.yaml"]).ok();
    c.kubectl(&[
        "create",
        "pdb",
        "held",
        "--selector=app=held",
        "--min-available=1",
    ])
    .ok();
    let placed = eventually(30, || (pods_on(&c, node).len() == 3).then_some(()));
    assert!(
        placed.is_some(),
        "{}",
        c.kubectl(&["get", "pods", "-o", "wide"]).stdout
    );
    wait_allowed(&c, "held", "0");

    // A server dry run changes nothing and says what it would do; the held pod is refused even so.
    let dry = run(&[
        "drain",
        node,
        "--ignore-daemonsets",
        "--force",
        "--dry-run=server",
        "--pod-selector=app=free",
    ]);
    let stdout = dry.ok();
    for line in [
        &format!("node/{node} cordoned (server dry run)"),
        "evicting pod default/one (server dry run)",
        "evicting pod default/two (server dry run)",
        &format!("node/{node} drained (server dry run)"),
    ] {
        assert!(stdout.contains(line), "{line}:\n{stdout}");
    }
    assert!(
        dry.stderr.contains(
            "Warning: deleting Pods that declare no controller: default/one, default/two"
        ),
        "{}",
        dry.stderr
    );
    assert_eq!(pods_on(&c, node).len(), 3);
    let schedulable = c.kubectl(&["get", "node", node, "-o", "jsonpath={.spec.unschedulable}"]);
    assert_eq!(schedulable.ok(), "", "a dry run does not cordon");

    // For real: the free pods go, the held one is refused until the budget goes.
    let blocked = run(&[
        "drain",
        node,
        "--ignore-daemonsets",
        "--force",
        "--timeout=12s",
    ]);
    assert!(
        blocked.stdout.contains(&format!("node/{node} cordoned")),
        "{}",
        blocked.stdout
    );
    assert!(
        blocked.err().contains(
            r#"error when evicting pods/"held" -n "default" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."#
        ),
        "{}",
        blocked.stderr
    );
    for pod in ["pod/one evicted", "pod/two evicted"] {
        assert!(blocked.stdout.contains(pod), "{pod}:\n{}", blocked.stdout);
    }
    assert_eq!(pods_on(&c, node), ["pod/held"]);
    let nodes = c.kubectl(&["get", "node", node, "--no-headers"]);
    assert!(
        nodes.ok().contains("SchedulingDisabled"),
        "{}",
        nodes.stdout
    );

    c.kubectl(&["delete", "pdb", "held"]).ok();
    let drained = run(&[
        "drain",
        node,
        "--ignore-daemonsets",
        "--force",
        "--timeout=30s",
    ]);
    let stdout = drained.ok();
    for line in [
        &format!("node/{node} already cordoned"),
        "pod/held evicted",
        &format!("node/{node} drained"),
    ] {
        assert!(stdout.contains(line), "{line}:\n{stdout}");
    }
    assert!(pods_on(&c, node).is_empty());
    let uncordoned = run(&["uncordon", node]);
    assert_eq!(uncordoned.ok(), format!("node/{node} uncordoned\n"));
    let again = run(&["uncordon", node]);
    assert_eq!(again.ok(), format!("node/{node} already uncordoned\n"));
}
