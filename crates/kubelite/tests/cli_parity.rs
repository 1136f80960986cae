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

/// Replaces what differs between two runs a moment apart: ages (`5s`, `2m3s`, `(x2 over 10s)`),
/// the time since a restart, and generated name suffixes.
fn normalise(text: &str) -> String {
    let age = regex::Regex::new(r"\b\d+[smhdy](\d+[smh])?\b").unwrap();
    let count = regex::Regex::new(r"\(x\d+ over").unwrap();
    let restarts = regex::Regex::new(r"\b\d+ \(AGE ago\)").unwrap();
    let generated = regex::Regex::new(r"\bkube-api-access-[a-z0-9]{5}\b").unwrap();
    let text = generated.replace_all(text, "kube-api-access-XXXXX");
    let text = age.replace_all(&text, "AGE");
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
    let (_link_dir, ours) = kubelite_kubectl();
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
    clis.same(&["describe", "node"]);
    clis.same(&["events"]);
    clis.same(&["events", "--for", "pod/greedy"]);
    clis.same(&["events", "-A", "--types", "Warning"]);
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

const WEB: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: kuard
    image: gcr.io/kuar-demo/kuard-amd64:1
";

const WEB_LABELLED: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    tier: front
spec:
  containers:
  - name: kuard
    image: gcr.io/kuar-demo/kuard-amd64:1
";

/// One command of a sequence, with an editor for `edit`.
struct Step<'a>(&'a [&'a str], Option<&'a Path>);

impl Clis<'_> {
    fn run_steps(&self, binary: &Path, steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|Step(args, editor)| {
                let mut cmd = self.cluster.kubectl_cmd(binary);
                if let Some(editor) = editor {
                    cmd.env("KUBE_EDITOR", editor);
                }
                let o = cmd.args(*args).output().expect("run kubectl");
                normalise(&format!(
                    "$ kubectl {}\nexit {}\n--- stdout\n{}--- stderr\n{}",
                    args.join(" "),
                    o.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ))
            })
            .collect()
    }

    /// Runs the same sequence of changes through each CLI on a clean namespace and compares
    /// every step's output.
    #[track_caller]
    fn same_steps(&self, steps: &[Step], cleanup: &[&str]) {
        let theirs = self.run_steps(Path::new(KUBECTL), steps);
        self.cluster.kubectl(cleanup);
        let ours = self.run_steps(&self.ours, steps);
        self.cluster.kubectl(cleanup);
        for (t, o) in theirs.iter().zip(&ours) {
            assert_eq!(t, o, "\n=== kubectl\n{t}\n=== kubelite kubectl\n{o}");
        }
    }
}

#[test]
fn kubelite_kubectl_changes_objects_as_kubectl_does() {
    let c = Cluster::start_with(&[]);
    let (_link_dir, ours) = kubelite_kubectl();
    let clis = Clis { cluster: &c, ours };
    let web = c.file("web.yaml", WEB);
    let labelled = c.file("web-labelled.yaml", WEB_LABELLED);
    let (web, labelled) = (web.to_str().unwrap(), labelled.to_str().unwrap());
    // Editors: one that changes a label, one that changes nothing.
    let relabel = c.file(
        "relabel.sh",
        "#!/bin/sh\nsed -i 's/^    tier: front$/    tier: back/' \"$1\"\n",
    );
    let keep = c.file("keep.sh", "#!/bin/sh\nexit 0\n");
    for script in [&relabel, &keep] {
        std::fs::set_permissions(script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let labels = [
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.metadata.labels} {.metadata.annotations}",
    ];
    clis.same_steps(
        &[
            Step(&["apply", "-f", web], None),
            Step(&["apply", "-f", web], None),
            Step(&["apply", "-f", labelled], None),
            Step(&labels, None),
            Step(&["label", "pod", "web", "a=b"], None),
            Step(&["label", "pod", "web", "a=c"], None),
            Step(&["label", "pod", "web", "a=c", "--overwrite"], None),
            Step(&["label", "pod", "web", "a-"], None),
            Step(&["annotate", "pod", "web", "note=hello"], None),
            Step(
                &[
                    "patch",
                    "pod",
                    "web",
                    "-p",
                    "{\"metadata\":{\"labels\":{\"p\":\"q\"}}}",
                ],
                None,
            ),
            Step(
                &[
                    "patch",
                    "pod",
                    "web",
                    "-p",
                    "{\"metadata\":{\"labels\":{\"p\":\"q\"}}}",
                ],
                None,
            ),
            Step(
                &[
                    "patch",
                    "pod",
                    "web",
                    "--type",
                    "merge",
                    "-p",
                    "{\"metadata\":{\"labels\":{\"p\":null}}}",
                ],
                None,
            ),
            Step(&["edit", "pod", "web"], Some(&relabel)),
            Step(&["edit", "pod", "web"], Some(&keep)),
            Step(&labels, None),
            Step(
                &[
                    "run",
                    "solo",
                    "--image=gcr.io/kuar-demo/kuard-amd64:1",
                    "--",
                    "--address",
                    ":9090",
                ],
                None,
            ),
            Step(
                &[
                    "get",
                    "pod",
                    "solo",
                    "-o",
                    "jsonpath={.metadata.labels} {.spec.containers}",
                ],
                None,
            ),
            Step(&["delete", "pod", "web", "solo"], None),
            Step(&["get", "pods"], None),
            Step(&["create", "-f", web, "-o", "name"], None),
            Step(
                &[
                    "wait",
                    "--for=condition=PodScheduled=False",
                    "pod/web",
                    "--timeout=20s",
                ],
                None,
            ),
            Step(
                &["wait", "--for=jsonpath={.status.phase}=Pending", "pod/web"],
                None,
            ),
            Step(
                &["wait", "--for=condition=Ready", "pod/web", "--timeout=1s"],
                None,
            ),
            Step(&["delete", "-f", web], None),
            Step(&["wait", "--for=delete", "pod/web", "--timeout=5s"], None),
        ],
        &["delete", "pods", "--all"],
    );
}

#[test]
fn bash_completion_asks_the_server_for_names() {
    let c = Cluster::start_with(&[]);
    let (bin, _) = kubelite_kubectl();
    c.file(
        "duplicate.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: duplicate-containers\nspec:\n  containers:\n  - name: one\n    image: gcr.io/kuar-demo/kuard-amd64:1\n  - name: two\n    image: gcr.io/kuar-demo/kuard-amd64:1\n",
    );
    c.kubectl(&["create", "-f", "duplicate.yaml"]).ok();
    // What bash does on TAB: the completion function fills COMPREPLY from the words so far.
    let complete = |words: &str, current: usize| {
        let script = format!(
            "source <(kubectl completion bash)\nCOMP_WORDS=({words})\nCOMP_CWORD={current}\n_kubectl_complete\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
        );
        let mut cmd = c.kubectl_cmd(Path::new("bash"));
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = cmd
            .env("PATH", path)
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        complete("kubectl logs duplicate-containers -c ''", 4),
        "one\ntwo\n"
    );
    assert_eq!(complete("kubectl logs dup", 2), "duplicate-containers\n");
    assert_eq!(
        complete("kubectl get po", 2),
        format!("pods\n{}", extra_pod_types(&c))
    );
    assert_eq!(
        complete("kubectl get pods -n kube-n", 4),
        "kube-node-lease\n"
    );
}

/// The resource types besides `pods` that start with "po" on this server.
fn extra_pod_types(c: &Cluster) -> String {
    let out = c.kubectl(&["api-resources", "-o", "name"]);
    out.ok()
        .lines()
        .filter(|n| n.starts_with("po") && *n != "pods")
        .map(|n| format!("{n}\n"))
        .collect()
}
