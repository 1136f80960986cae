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
