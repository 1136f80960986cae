//! The whole "Kubernetes Pods" hands-on as a reader follows it: `tests/tutorial/pods-hands-on.sh`
//! runs every section against a real cluster with a real kubectl.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn hands_on(kubectl: &Path) {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/tutorial/pods-hands-on.sh");
    let work = c.dir.path().join("hands-on");
    std::fs::create_dir_all(&work).unwrap();
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(&work)
        .env("KUBECONFIG", &c.kubeconfig)
        .env("KUBECTL", kubectl)
        .env("KUBECACHEDIR", c.dir.path().join("kube-cache"))
        .env("KUBELITE", env!("CARGO_BIN_EXE_kubelite"))
        .env("SERVER_URL", c.url())
        .env("TOKEN_FILE", c.data_dir().join("server/tls/node-token"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the hands-on failed:\n{}\n{}\nserver log (tail):\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        c.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_pods_hands_on_with_installed_kubectl() {
    hands_on(Path::new(KUBECTL));
}

#[test]
fn the_pods_hands_on_with_kubectl_1_27() {
    hands_on(&kubectl_version(27));
}

#[test]
fn the_pods_hands_on_with_kubectl_1_33() {
    hands_on(&kubectl_version(33));
}

#[test]
fn the_pods_hands_on_with_kubelites_own_kubectl() {
    let (_dir, link) = kubelite_kubectl();
    hands_on(&link);
}
