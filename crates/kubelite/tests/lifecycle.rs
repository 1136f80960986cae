//! What a new user meets first: the server stops promptly on a signal and leaves its containers
//! running, its files hold secrets with owner-only modes, its log file is plain text, and a new
//! pod is reachable at once even when a stale neighbour entry names its address.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn container_state(c: &Cluster, id: &str) -> String {
    let root = c.data_dir().join("agent/run/oci");
    let out = Command::new("crun")
        .arg("--root")
        .arg(root)
        .args(["state", id])
        .output()
        .unwrap();
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    state["status"].as_str().unwrap_or("gone").to_string()
}

#[test]
fn sigterm_stops_the_server_at_once_and_a_restart_adopts_the_running_containers() {
    require_container_host();
    let mut c = Cluster::start_with_agent(&[]);
    c.file("pod.yaml", KUARD_POD);
    c.kubectl(&["create", "-f", "pod.yaml"]).ok();
    let status = "jsonpath={.status.containerStatuses[0].state.running.startedAt} {.status.containerStatuses[0].containerID}";
    let running = eventually(60, || {
        let out = c.kubectl(&["get", "pod", "kubernetes-up-and-running", "-o", status]);
        out.stdout
            .split_once(" ")
            .filter(|(started, id)| !started.is_empty() && !id.is_empty())
            .map(|(_, id)| id.to_string())
    })
    .expect("the pod runs");
    let id = running.split_once("://").unwrap().1.to_string();

    let took = c.stop().expect("the server exits on SIGTERM");
    assert!(
        took < Duration::from_secs(2),
        "SIGTERM took {took:?}:\n{}",
        c.log()
    );
    assert_eq!(
        container_state(&c, &id),
        "running",
        "conmon keeps the container"
    );

    c.start_again();
    eventually(60, || {
        c.log()
            .lines()
            .any(|l| l.contains("adopted a running container") && l.contains(&id))
            .then_some(())
    })
    .expect("the restarted server adopts the container");
    let after = c.kubectl(&["get", "pod", "kubernetes-up-and-running", "-o", status]);
    assert!(after.ok().ends_with(&running), "{}", after.stdout);

    // SIGINT (Ctrl-C in a terminal) stops it as quickly.
    let took = c.stop_with("INT").expect("the server exits on SIGINT");
    assert!(took < Duration::from_secs(2), "SIGINT took {took:?}");
    // The server log went to a file: no terminal colour codes in it.
    assert!(!c.log().contains('\u{1b}'), "colour codes in a log file");
    c.start_again();
}

#[test]
fn secrets_are_written_for_the_owner_only() {
    let c = Cluster::start();
    assert_eq!(mode(&c.kubeconfig), 0o600, "the admin kubeconfig");
    let data = c.data_dir();
    assert_eq!(mode(&data), 0o700, "the data dir");
    assert_eq!(mode(&data.join("server")), 0o700);
    assert_eq!(mode(&data.join("server/db")), 0o700);
    assert_eq!(mode(&data.join("server/db/state.db")), 0o600, "the store");
    assert_eq!(mode(&data.join("server/tls/admin.key")), 0o600);
    assert_eq!(mode(&data.join("server/tls/node-token")), 0o600);
    // The kubeconfig is a real one: kubectl uses it.
    c.kubectl(&["get", "ns", "default"]).ok();
    // No temporary files are left beside it.
    let siblings: Vec<_> = std::fs::read_dir(c.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".kubelite-"))
        .collect();
    assert!(siblings.is_empty(), "{siblings:?}");
    assert!(!c.log().contains('\u{1b}'), "colour codes in a log file");

    let wider = Cluster::start_with(&["--write-kubeconfig-mode", "0640"]);
    assert_eq!(mode(&wider.kubeconfig), 0o640);
    let bad = Command::new(env!("CARGO_BIN_EXE_kubelite"))
        .args(["server", "--write-kubeconfig-mode", "rw-"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("octal file mode"));
}

#[test]
fn a_new_pod_is_reachable_despite_a_stale_neighbour_entry() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    let bridge = c.bridge.clone().unwrap();
    // A first pod brings the bridge up.
    c.file("pod.yaml", KUARD_POD);
    c.kubectl(&["create", "-f", "pod.yaml"]).ok();
    let first = eventually(60, || {
        let out = c.kubectl(&[
            "get",
            "pod",
            "kubernetes-up-and-running",
            "-o",
            "jsonpath={.status.podIP}",
        ]);
        (!out.stdout.is_empty()).then(|| out.stdout.clone())
    })
    .expect("the first pod gets an IP");
    // The addresses the next pod may get still name a MAC that no longer exists, as they do when
    // a data dir is reset while the bridge survives. Permanent entries never expire by themselves.
    let (prefix, last) = first.rsplit_once('.').unwrap();
    let last: u8 = last.parse().unwrap();
    for n in last + 1..last + 6 {
        let ip = format!("{prefix}.{n}");
        let out = Command::new("ip")
            .args(["neigh", "replace", &ip, "lladdr", "02:00:5e:00:00:99"])
            .args(["dev", &bridge, "nud", "permanent"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    c.file(
        "second.yaml",
        &KUARD_POD.replace("kubernetes-up-and-running", "second"),
    );
    c.kubectl(&["create", "-f", "second.yaml"]).ok();
    let ip = eventually(60, || {
        let out = c.kubectl(&["get", "pod", "second", "-o", "jsonpath={.status.podIP}"]);
        (!out.stdout.is_empty()).then(|| out.stdout.clone())
    })
    .expect("the second pod gets an IP");
    let answered = eventually(10, || {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "1",
                &format!("http://{ip}:8080/healthy"),
            ])
            .output()
            .unwrap();
        out.status.success().then_some(())
    });
    let neigh = Command::new("ip")
        .args(["neigh", "show", &ip, "dev", &bridge])
        .output()
        .unwrap();
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    assert!(
        !neigh.contains("02:00:5e:00:00:99"),
        "stale entry kept: {neigh}"
    );
    assert!(answered.is_some(), "the second pod ({ip}) does not answer");
}
