//! The official Python client (`kubernetes` on PyPI) creates, lists, watches, patches and deletes
//! pods. The project's setup installs it into `target/pyenv`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn python() -> PathBuf {
    let path = std::env::var_os("KUBELITE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python")
        });
    assert!(
        path.exists(),
        "{} is missing: run the project's setup (scripts/setup.sh), which installs the Python client",
        path.display()
    );
    path
}

#[test]
fn python_client_drives_pods() {
    let c = Cluster::start();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/client_flow.py");
    let out = Command::new(python())
        .arg(script)
        .arg(&c.kubeconfig)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client flow failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
}

/// Reads a file out of a running pod's first container.
fn pod_file(c: &Cluster, pod: &str, path: &str) -> String {
    c.kubectl(&["exec", pod, "--", "cat", path])
        .ok()
        .to_string()
}

#[test]
fn an_in_cluster_client_lists_pods_from_inside_a_pod() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file("client.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: client\nspec:\n  containers:\n  - name: kuard\n    image: gcr.io/kuar-demo/kuard-amd64:1\n");
    c.kubectl(&["apply", "-f", "client.yaml"]).ok();
    wait_running(&c, "client");
    let env = c.kubectl(&["exec", "client", "--", "env"]).ok().to_string();
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} is not set in the pod:\n{env}"))
            .to_string()
    };
    let (host, port) = (
        var("KUBERNETES_SERVICE_HOST"),
        var("KUBERNETES_SERVICE_PORT"),
    );
    let dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let files: Vec<PathBuf> = ["token", "ca.crt", "namespace"]
        .iter()
        .map(|f| {
            c.file(
                &format!("sa-{f}"),
                &pod_file(&c, "client", &format!("{dir}/{f}")),
            )
        })
        .collect();
    // The client runs in the pod's network namespace, so it reaches the API server the way
    // the pod's own processes do.
    let uid = c.pod_field("client", "{.metadata.uid}");
    let sandbox = c
        .data_dir()
        .join("agent/pods")
        .join(uid)
        .join("sandbox/sandbox.json");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sandbox).expect("sandbox record")).expect("json");
    let netns = format!(
        "--net=/run/netns/{}",
        record["netns"].as_str().expect("netns")
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/in_cluster.py");
    let out = Command::new("nsenter")
        .arg(netns)
        .arg(python())
        .arg(script)
        .args([&host, &port])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the in-cluster client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "client");
}
