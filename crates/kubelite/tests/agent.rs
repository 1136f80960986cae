//! A standalone `kubelite agent` beside a server without one: its containers outlive a graceful
//! restart and a kill -9 of the agent, and an API server that is away for a while; "not
//! restarted" is proved by the container's process ID and `startedAt`, not by its name.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// A node agent process joined to `server`, on a state dir, bridge and subnet of its own.
struct Agent {
    child: Option<Child>,
    dir: tempfile::TempDir,
    args: Vec<String>,
    kubeconfig: PathBuf,
    bridge: String,
}

impl Agent {
    fn start(c: &Cluster) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("agent").join("images");
        std::fs::create_dir_all(&images).unwrap();
        std::fs::copy(demo_image(), images.join("kuard-amd64-1.tar")).unwrap();
        let pid = std::process::id();
        let bridge = format!("ka{}", pid % 100000);
        let token = c.data_dir().join("server/tls/node-token");
        let args = [
            "agent",
            "--server",
            &c.url(),
            "--token-file",
            token.to_str().unwrap(),
            "--node-name",
            "standalone",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--pod-bridge",
            &bridge,
            "--pod-cidr",
            &format!("10.252.{}.0/24", pid % 250),
            "--kubelet-port",
            &free_port().to_string(),
        ]
        .map(str::to_string)
        .to_vec();
        let kubeconfig = c.data_dir().parent().unwrap().join("kubeconfig.yaml");
        let mut agent = Agent {
            child: None,
            dir,
            args,
            kubeconfig,
            bridge,
        };
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kubelite"))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the agent");
        self.child = Some(child);
    }

    fn signal(&mut self, signal: &str) {
        let mut child = self.child.take().expect("the agent runs");
        Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("agent")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Let the agent take its pods down, as a user would.
            let _ = Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args([
                    "delete",
                    "pods",
                    "--all",
                    "--all-namespaces",
                    "--timeout=60s",
                ])
                .output();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        sweep_node(&self.state(), &self.bridge);
    }
}

/// The process ID of the pod's first container (from the runtime) and its `startedAt`.
fn process_and_start(c: &Cluster, agent: &Agent, pod: &str) -> (i64, String) {
    let id = c.pod_field(pod, "{.status.containerStatuses[0].containerID}");
    let id = id
        .split_once("://")
        .map(|(_, id)| id.to_string())
        .expect("an ID");
    let state = Command::new("crun")
        .arg("--root")
        .arg(agent.state().join("run/oci"))
        .args(["state", &id])
        .output()
        .unwrap();
    let state: serde_json::Value = serde_json::from_slice(&state.stdout).expect("crun state");
    let started = c.pod_field(
        pod,
        "{.status.containerStatuses[0].state.running.startedAt}",
    );
    (state["pid"].as_i64().expect("a pid"), started)
}

fn adoptions(agent: &Agent) -> usize {
    agent
        .log()
        .lines()
        .filter(|l| l.contains("adopted a running container"))
        .count()
}

#[test]
fn containers_outlive_a_restart_and_a_kill_of_their_agent() {
    require_container_host();
    let c = Cluster::start();
    let mut agent = Agent::start(&c);
    c.file("kuard.yaml", KUARD_POD);
    c.kubectl(&["apply", "-f", "kuard.yaml"]).ok();
    wait_running(&c, "kubernetes-up-and-running");
    let before = process_and_start(&c, &agent, "kubernetes-up-and-running");
    for (round, signal) in ["TERM", "KILL"].into_iter().enumerate() {
        agent.signal(signal);
        assert!(
            std::path::Path::new(&format!("/proc/{}", before.0)).exists(),
            "the container died with its agent (SIG{signal})"
        );
        agent.spawn();
        let adopted = eventually(60, || (adoptions(&agent) > round).then_some(()));
        assert!(
            adopted.is_some(),
            "not adopted after SIG{signal}:\n{}",
            agent.log()
        );
        let after = process_and_start(&c, &agent, "kubernetes-up-and-running");
        assert_eq!(
            before, after,
            "the same process, started once (SIG{signal})"
        );
        let restarts = c.pod_field(
            "kubernetes-up-and-running",
            "{.status.containerStatuses[0].restartCount}",
        );
        assert_eq!(restarts, "0");
    }
}

#[test]
fn pods_keep_running_while_the_api_server_is_away_and_the_agent_catches_up() {
    require_container_host();
    let mut c = Cluster::start();
    let agent = Agent::start(&c);
    c.file("kuard.yaml", KUARD_POD);
    c.kubectl(&["apply", "-f", "kuard.yaml"]).ok();
    wait_running(&c, "kubernetes-up-and-running");
    let before = process_and_start(&c, &agent, "kubernetes-up-and-running");
    c.stop();
    std::thread::sleep(Duration::from_secs(15));
    assert!(
        std::path::Path::new(&format!("/proc/{}", before.0)).exists(),
        "the container died while the API server was away"
    );
    c.start_again();
    // The agent's watch comes back: a pod made now runs, one deleted now goes.
    c.file(
        "second.yaml",
        &KUARD_POD.replace("kubernetes-up-and-running", "second"),
    );
    c.kubectl(&["apply", "-f", "second.yaml"]).ok();
    wait_running(&c, "second");
    assert_eq!(
        process_and_start(&c, &agent, "kubernetes-up-and-running"),
        before,
        "the first pod's container was left alone"
    );
    c.kubectl(&[
        "delete",
        "pod",
        "kubernetes-up-and-running",
        "--timeout=60s",
    ])
    .ok();
    let gone = eventually(30, || {
        (!std::path::Path::new(&format!("/proc/{}", before.0)).exists()).then_some(())
    });
    assert!(gone.is_some(), "the deleted pod's container still runs");
}
