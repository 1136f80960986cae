//! The tutorial's pod commands, run with the real kubectl against the real binary: 1.33 through
//! the installed dispatcher, and kubectl 1.27 and 1.33 directly.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;

fn discovery_and_explain(c: &Cluster, kubectl: &Path) {
    let v = c.kubectl_with(kubectl, &["version"]);
    assert!(
        v.ok().contains("Server Version: v1.33") || v.stdout.contains("GitVersion:\"v1.33"),
        "{}",
        v.stdout
    );
    let info = c.kubectl_with(kubectl, &["cluster-info"]);
    let plain = strip_ansi(info.ok());
    assert!(
        plain.contains(&format!(
            "Kubernetes control plane is running at {}",
            c.url()
        )),
        "{plain}"
    );
    let res = c.kubectl_with(kubectl, &["api-resources"]);
    let out = res.ok();
    for line in ["pods", "po", "namespaces", "events", "leases", "nodes"] {
        assert!(out.contains(line), "api-resources lacks {line}:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("pods ") && l.contains(" Pod")),
        "{out}"
    );
    let pod = c.kubectl_with(kubectl, &["explain", "pod"]);
    assert!(pod.ok().contains("KIND:       Pod"), "{}", pod.stdout);
    assert!(
        pod.stdout.contains("Pod is a collection of containers"),
        "{}",
        pod.stdout
    );
    let spec = c.kubectl_with(kubectl, &["explain", "pod.spec"]);
    assert!(spec.ok().contains("containers"), "{}", spec.stdout);
    let image = c.kubectl_with(kubectl, &["explain", "pod.spec.containers.image"]);
    let out = image.ok();
    assert!(out.contains("FIELD: image <string>"), "{out}");
    assert!(out.contains("Container image name."), "{out}");
}

fn create_get_delete(c: &Cluster, kubectl: &Path) {
    let k = |args: &[&str]| c.kubectl_with(kubectl, args);
    c.file("pod.yaml", KUARD_POD);
    assert_eq!(
        k(&["create", "-f", "pod.yaml"]).ok().trim(),
        "pod/kubernetes-up-and-running created"
    );
    let again = k(&["create", "-f", "pod.yaml"]);
    assert_eq!(
        again.err().trim(),
        "Error from server (AlreadyExists): error when creating \"pod.yaml\": pods \"kubernetes-up-and-running\" already exists"
    );
    c.file(
        "pod.json",
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"from-json","labels":{"app":"kuard"}},
           "spec":{"containers":[{"name":"kuard","image":"gcr.io/kuar-demo/kuard-amd64:1","ports":[{"containerPort":8080}]}]}}"#,
    );
    assert_eq!(
        k(&["create", "-f", "pod.json"]).ok().trim(),
        "pod/from-json created"
    );

    let list = k(&["get", "pods"]);
    let lines: Vec<&str> = list.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{}", list.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        &row[..4],
        ["kubernetes-up-and-running", "0/1", "Pending", "0"],
        "{}",
        list.stdout
    );

    let one = k(&["get", "pod", "kubernetes-up-and-running"]);
    assert!(one.ok().starts_with("NAME "), "{}", one.stdout);
    assert!(one.stdout.contains("Pending"), "{}", one.stdout);

    let wide = k(&["get", "pod", "kubernetes-up-and-running", "-o", "wide"]);
    let header: Vec<&str> = wide
        .ok()
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );

    let yaml = k(&["get", "pod", "kubernetes-up-and-running", "-o", "yaml"]);
    let y = yaml.ok();
    for field in [
        "imagePullPolicy: IfNotPresent",
        "restartPolicy: Always",
        "terminationGracePeriodSeconds: 30",
        "dnsPolicy: ClusterFirst",
        "schedulerName: default-scheduler",
        "enableServiceLinks: true",
        "terminationMessagePath: /dev/termination-log",
        "serviceAccountName: default",
        "qosClass: BestEffort",
        "phase: Pending",
        "key: node.kubernetes.io/not-ready",
    ] {
        assert!(y.contains(field), "-o yaml lacks {field}:\n{y}");
    }
    let json = k(&["get", "pod", "from-json", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.ok()).unwrap();
    assert_eq!(v["metadata"]["labels"]["app"], "kuard");
    assert_eq!(v["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
    assert!(
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    assert_eq!(
        k(&["get", "pod", "kubernetes-up-and-running", "-o", "name"])
            .ok()
            .trim(),
        "pod/kubernetes-up-and-running"
    );
    let labelled = k(&["get", "pods", "-l", "app=kuard", "-o", "name"]);
    assert_eq!(labelled.ok().trim(), "pod/from-json");
    let by_field = k(&[
        "get",
        "pods",
        "--field-selector",
        "metadata.name=from-json",
        "-o",
        "name",
    ]);
    assert_eq!(by_field.ok().trim(), "pod/from-json");

    // generateName: every create gets its own name.
    c.file("generic.yaml", GENERIC_POD);
    let a = k(&["create", "-f", "generic.yaml"]);
    let b = k(&["create", "-f", "generic.yaml"]);
    let (a, b) = (a.ok().trim().to_string(), b.ok().trim().to_string());
    assert!(
        a.starts_with("pod/kuard-")
            && a.ends_with(" created")
            && a.len() == "pod/kuard-xxxxx created".len(),
        "{a}"
    );
    assert_ne!(a, b);

    assert_eq!(
        k(&["delete", "pod", "kubernetes-up-and-running"])
            .ok()
            .trim(),
        "pod \"kubernetes-up-and-running\" deleted"
    );
    let gone = k(&["get", "pod", "kubernetes-up-and-running"]);
    assert_eq!(
        gone.err().trim(),
        "Error from server (NotFound): pods \"kubernetes-up-and-running\" not found"
    );
    assert_eq!(
        k(&["delete", "-f", "pod.json"]).ok().trim(),
        "pod \"from-json\" deleted"
    );
    let all = k(&["delete", "pods", "--all"]);
    assert_eq!(all.ok().lines().count(), 2, "{}", all.stdout);
    let empty = k(&["get", "pods"]);
    assert_eq!(empty.ok().trim(), "");
    assert!(
        empty
            .stderr
            .contains("No resources found in default namespace."),
        "{}",
        empty.stderr
    );
}

fn edit(c: &Cluster, kubectl: &Path) {
    let k = |args: &[&str]| c.kubectl_with(kubectl, args);
    c.file("pod.yaml", KUARD_POD);
    k(&["create", "-f", "pod.yaml"]).ok();
    // An allowed change: the image.
    let image_editor = c.file(
        "image-editor.sh",
        "#!/bin/sh\nsed -i 's|kuard-amd64:1|kuard-amd64:2|' \"$1\"\n",
    );
    let args_editor = c.file(
        "args-editor.sh",
        "#!/bin/sh\nif grep -q 'was not valid' \"$1\"; then cp \"$1\" rejected.yaml; exit 0; fi\nsed -i '/^  - image: /a\\    args: [\"--address\", \":8081\"]' \"$1\"\n",
    );
    for e in [&image_editor, &args_editor] {
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(e)
            .status()
            .unwrap();
    }
    let out = c
        .kubectl_cmd(kubectl)
        .env("KUBE_EDITOR", &image_editor)
        .args(["edit", "pod", "kubernetes-up-and-running"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "pod/kubernetes-up-and-running edited"
    );
    let image = k(&[
        "get",
        "pod",
        "kubernetes-up-and-running",
        "-o",
        "jsonpath={.spec.containers[0].image}",
    ]);
    assert_eq!(image.ok(), "gcr.io/kuar-demo/kuard-amd64:2");
    // A forbidden change: args. kubectl reopens the editor with the server's message.
    let out = c
        .kubectl_cmd(kubectl)
        .env("KUBE_EDITOR", &args_editor)
        .args(["edit", "pod", "kubernetes-up-and-running"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pods \"kubernetes-up-and-running\" is invalid"),
        "{stderr}"
    );
    let rejected = std::fs::read_to_string(c.dir.path().join("rejected.yaml"))
        .expect("the editor saw the error");
    assert!(
        rejected.contains("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"),
        "{rejected}"
    );
    // The same rule through a JSON patch.
    let patch = k(&[
        "patch",
        "pod",
        "kubernetes-up-and-running",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/containers/0/args","value":["--address",":8081"]}]"#,
    ]);
    assert!(patch.err().starts_with("The Pod \"kubernetes-up-and-running\" is invalid: spec: Forbidden: pod updates may not change fields other than"), "{}", patch.stderr);
    k(&["delete", "pod", "kubernetes-up-and-running"]).ok();
}

fn watch(c: &Cluster, kubectl: &Path) {
    // kubectl lists, prints what exists, then watches from the list's resourceVersion: once the
    // sentinel's line is out, every later change reaches the watch.
    c.file(
        "sentinel.yaml",
        &KUARD_POD.replace("kubernetes-up-and-running", "watch-sentinel"),
    );
    c.kubectl_with(kubectl, &["create", "-f", "sentinel.yaml"])
        .ok();
    let mut child = c
        .kubectl_cmd(kubectl)
        .args(["get", "pods", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(child.stdout.take().unwrap());
    // The header comes first, then the listed pods.
    let listed = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(15)).ok())
        .find(|line| line.contains("watch-sentinel"));
    assert!(listed.is_some(), "the watch never printed the existing pod");
    c.file("pod.yaml", KUARD_POD);
    c.kubectl_with(kubectl, &["create", "-f", "pod.yaml"]).ok();
    c.kubectl_with(
        kubectl,
        &["label", "pod", "kubernetes-up-and-running", "tier=web"],
    )
    .ok();
    c.kubectl_with(kubectl, &["delete", "pod", "kubernetes-up-and-running"])
        .ok();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            if words.get(1).map(String::as_str) == Some("kubernetes-up-and-running") {
                seen.push(words[0].clone());
            }
        }
        if seen.contains(&"DELETED".to_string()) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen.first().map(String::as_str), Some("ADDED"), "{seen:?}");
    assert!(seen.iter().any(|e| e == "MODIFIED"), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("DELETED"), "{seen:?}");
    c.kubectl_with(
        kubectl,
        &["delete", "pod", "watch-sentinel", "--wait=false"],
    )
    .ok();
}

fn events(c: &Cluster, kubectl: &Path) {
    c.file(
        "event.yaml",
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: web.1\ninvolvedObject:\n  kind: Pod\n  name: web\n  namespace: default\nreason: FailedScheduling\nmessage: \"0/1 nodes are available: 1 Insufficient cpu.\"\ntype: Warning\nsource:\n  component: default-scheduler\ncount: 6\nfirstTimestamp: \"2026-01-01T00:00:00Z\"\nlastTimestamp: \"2026-01-01T00:00:00Z\"\n",
    );
    c.kubectl_with(kubectl, &["create", "-f", "event.yaml"])
        .ok();
    let out = c.kubectl_with(kubectl, &["get", "events"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    // The scheduler records its own events for the pods above; find ours.
    let ours = lines
        .iter()
        .find(|l| l.contains("pod/web"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        ours.contains("Warning") && ours.contains("FailedScheduling"),
        "{ours}"
    );
    assert!(
        ours.contains("0/1 nodes are available: 1 Insufficient cpu."),
        "{ours}"
    );
    let selected = c.kubectl_with(
        kubectl,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=web",
            "-o",
            "name",
        ],
    );
    assert_eq!(selected.ok().trim(), "event/web.1");
    let new_api = c.kubectl_with(
        kubectl,
        &[
            "get",
            "events.v1.events.k8s.io",
            "web.1",
            "-o",
            "jsonpath={.note}",
        ],
    );
    assert_eq!(new_api.ok(), "0/1 nodes are available: 1 Insufficient cpu.");
}

fn all_flows(kubectl: &Path) {
    let c = Cluster::start();
    discovery_and_explain(&c, kubectl);
    create_get_delete(&c, kubectl);
    edit(&c, kubectl);
    events(&c, kubectl);
    watch(&c, kubectl);
}

#[test]
fn tutorial_flows_with_installed_kubectl() {
    all_flows(Path::new(KUBECTL));
}

#[test]
fn tutorial_flows_with_kubectl_1_27() {
    all_flows(&kubectl_version(27));
}

#[test]
fn tutorial_flows_with_kubectl_1_33() {
    all_flows(&kubectl_version(33));
}

#[test]
fn tutorial_flows_on_etcd() {
    let etcd = store::conformance::EtcdServer::start()
        .expect("a real etcd is needed (the project's setup installs etcd-server)");
    let c = Cluster::start_with(&["--datastore", "etcd", "--etcd-endpoints", &etcd.endpoint]);
    let kubectl = Path::new(KUBECTL);
    discovery_and_explain(&c, kubectl);
    create_get_delete(&c, kubectl);
    edit(&c, kubectl);
    events(&c, kubectl);
    watch(&c, kubectl);
}

#[test]
fn kubectl_taint_adds_and_removes_node_taints() {
    let c = Cluster::start_with(&["--node-monitor-grace-period", "600"]);
    c.file(
        "node.yaml",
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: tainted\n",
    );
    c.kubectl(&["create", "-f", "node.yaml"]).ok();
    for taint in [
        "dedicated=a:NoSchedule",
        "dedicated=a:NoExecute",
        "other=b:NoSchedule",
    ] {
        c.kubectl(&["taint", "node", "tainted", taint]).ok();
    }
    let keys = || {
        let out = c.kubectl(&[
            "get",
            "node",
            "tainted",
            "-o",
            "jsonpath={range .spec.taints[*]}{.key}:{.effect} {end}",
        ]);
        let mut keys: Vec<String> = out.ok().split_whitespace().map(str::to_string).collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(),
        [
            "dedicated:NoExecute",
            "dedicated:NoSchedule",
            "node.kubernetes.io/not-ready:NoSchedule",
            "other:NoSchedule"
        ]
    );
    // Removing by key takes every effect of it, and leaves the rest (the list is atomic: kubectl
    // sends the whole new list).
    let out = c.kubectl(&["taint", "node", "tainted", "dedicated-"]);
    assert!(
        out.ok().contains("node/tainted untainted"),
        "{}",
        out.stdout
    );
    assert_eq!(
        keys(),
        [
            "node.kubernetes.io/not-ready:NoSchedule",
            "other:NoSchedule"
        ]
    );
}
