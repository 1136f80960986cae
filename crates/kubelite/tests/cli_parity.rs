//! `kubelite kubectl` against the real kubectl: the same commands against one cluster must print
//! the same thing (stdout, stderr and exit code), ages and a crash-looping pod's changing restart
//! times aside.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const CRASHING: &str = "apiVersion: v1
kind: Pod
metadata:
  name: crashing
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sh
    image: gcr.io/kuar-demo/kuard-amd64:1
    command: [\"sh\", \"-c\", \"echo going down; exit 3\"]
";

const GREEDY: &str = "apiVersion: v1
kind: Pod
metadata:
  name: greedy
  labels:
    app: greedy
spec:
  containers:
  - name: kuard
    image: gcr.io/kuar-demo/kuard-amd64:1
    resources:
      requests:
        cpu: \"64\"
      limits:
        memory: 256M
";

/// Replaces what differs between two runs a moment apart: ages (`5s`, `2m3s`, `(x2 over 10s)`)
/// and the time since a restart.
fn normalise(text: &str) -> String {
    let age = regex::Regex::new(r"\b\d+[smhdy](\d+[smh])?\b").unwrap();
    let count = regex::Regex::new(r"\(x\d+ over").unwrap();
    let restarts = regex::Regex::new(r"\b\d+ \(AGE ago\)").unwrap();
    let text = age.replace_all(text, "AGE");
    let text = count.replace_all(&text, "(xN over");
    restarts.replace_all(&text, "N (AGE ago)").into_owned()
}

struct Clis<'a> {
    cluster: &'a Cluster,
    ours: PathBuf,
}

impl Clis<'_> {
    /// Runs `args` through both and asserts the same output; a live cluster can change between
    /// the two runs, so a difference is looked at again before it fails the test.
    #[track_caller]
    fn same(&self, args: &[&str]) {
        let mut last = (String::new(), String::new());
        for _ in 0..3 {
            let theirs = self.cluster.kubectl_with(Path::new(KUBECTL), args);
            let ours = self.cluster.kubectl_with(&self.ours, args);
            let show = |o: &Out| {
                normalise(&format!(
                    "exit {}\n--- stdout\n{}--- stderr\n{}",
                    o.code, o.stdout, o.stderr
                ))
            };
            last = (show(&theirs), show(&ours));
            if last.0 == last.1 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!(
            "kubectl {} differs\n=== kubectl\n{}\n=== kubelite kubectl\n{}",
            args.join(" "),
            last.0,
            last.1
        );
    }
}

#[test]
fn kubelite_kubectl_prints_what_kubectl_prints() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    let link_dir = tempfile::tempdir().unwrap();
    let ours = link_dir.path().join("kubectl");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kubelite"), &ours).unwrap();
    let clis = Clis { cluster: &c, ours };
    let kuard = c.file("kuard.yaml", KUARD_POD);
    let crashing = c.file("crashing.yaml", CRASHING);
    let greedy = c.file("greedy.yaml", GREEDY);
    for file in [&kuard, &crashing, &greedy] {
        c.kubectl(&["create", "-f", file.to_str().unwrap()]).ok();
    }
    eventually(60, || {
        let out = c.kubectl(&[
            "get",
            "pod",
            "kubernetes-up-and-running",
            "-o",
            "jsonpath={.status.containerStatuses[0].ready}",
        ]);
        (out.stdout == "true").then_some(())
    })
    .expect("kuard never became ready");
    eventually(60, || {
        let out = c.kubectl(&[
            "get",
            "pod",
            "crashing",
            "-o",
            "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode}",
        ]);
        (out.stdout == "3").then_some(())
    })
    .expect("the crashing pod never crashed");
    eventually(30, || {
        let out = c.kubectl(&["describe", "pod", "greedy"]);
        out.stdout.contains("FailedScheduling").then_some(())
    })
    .expect("the greedy pod was never reported unschedulable");

    // Tables, default and wide, one object and all, several namespaces, labels.
    clis.same(&["get", "pods"]);
    clis.same(&["get", "pods", "-o", "wide"]);
    clis.same(&["get", "pod", "kubernetes-up-and-running"]);
    clis.same(&["get", "pods", "-A", "--show-labels"]);
    clis.same(&["get", "pods", "-l", "app=greedy"]);
    clis.same(&["get", "nodes"]);
    clis.same(&["get", "namespaces"]);
    clis.same(&["get", "pods", "-n", "kube-system"]);
    // Objects in every format.
    clis.same(&["get", "pod", "kubernetes-up-and-running", "-o", "yaml"]);
    clis.same(&["get", "pod", "greedy", "-o", "json"]);
    clis.same(&["get", "pods", "-o", "yaml"]);
    clis.same(&["get", "pods", "-o", "name"]);
    clis.same(&[
        "get",
        "pod",
        "greedy",
        "-o",
        "jsonpath={.spec.containers[*].name} {.status.phase}",
    ]);
    clis.same(&[
        "get",
        "pods",
        "-o",
        "custom-columns=NAME:.metadata.name,PHASE:.status.phase",
        "--sort-by=.metadata.name",
    ]);
    // describe: running, crash-looping, pending with FailedScheduling; a namespace.
    clis.same(&["describe", "pod", "kubernetes-up-and-running"]);
    clis.same(&["describe", "pod", "crashing"]);
    clis.same(&["describe", "pod", "greedy"]);
    clis.same(&["describe", "namespace", "default"]);
    // Errors and exit codes.
    clis.same(&["get", "pod", "nope"]);
    clis.same(&["get", "pods", "nope", "kubernetes-up-and-running"]);
    clis.same(&["describe", "pod", "nope"]);
    clis.same(&["get", "nosuchthings"]);
    clis.same(&["create", "-f", kuard.to_str().unwrap()]);
    clis.same(&["delete", "pod", "nope"]);
    clis.same(&["logs", "nope"]);
    clis.same(&[
        "exec",
        "kubernetes-up-and-running",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    // Discovery and schema.
    clis.same(&["api-resources"]);
    clis.same(&["api-versions"]);
    clis.same(&["explain", "pod"]);
    clis.same(&["explain", "pod.spec.containers.image"]);
    clis.same(&["config", "current-context"]);
    clis.same(&["config", "view"]);
}
