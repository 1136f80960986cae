//! Test support: start the real `kubelite` binary on a temporary data dir and a free port, and
//! drive it with the real kubectl. Everything a test starts is stopped and removed on drop.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const KUBECTL: &str = "/usr/bin/kubectl";
pub const KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";

/// A kubectl binary of a given minor version (1.27–1.33), failing loudly when it is missing.
pub fn kubectl_version(minor: u32) -> PathBuf {
    let p = PathBuf::from(format!("{KUBECTL_DIR}/kubectl.1.{minor}"));
    assert!(
        p.exists(),
        "{} is missing: the tests drive the kubectl versions of the machine image's Google Cloud CLI packages",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One running server.
pub struct Cluster {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub kubeconfig: PathBuf,
    extra_args: Vec<String>,
    /// The pod bridge of this cluster's node agent, if it runs one.
    pub bridge: Option<String>,
    /// The pod subnet of this cluster's node agent, if it runs one.
    pub cidr: Option<String>,
    /// The address the API server listens on.
    pub host: String,
}

static CLUSTERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The kuard demo image archive `cargo xtask demo-image` builds.
pub fn demo_image() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/images/kuard-amd64-1.tar");
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask demo-image` (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Fails loudly when the machine cannot run containers (the project's setup provides all of it).
pub fn require_container_host() {
    assert!(nix_is_root(), "running pods needs root");
    for tool in [
        "/usr/bin/crun",
        "/usr/bin/conmon",
        "/usr/lib/cni/bridge",
        "/usr/lib/cni/host-local",
        "/usr/lib/cni/loopback",
    ] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: scripts/deps.sh installs it"
        );
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn from(o: Output) -> Self {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }
    /// Asserts failure and returns stderr.
    #[track_caller]
    pub fn err(&self) -> &str {
        assert_ne!(
            self.code, 0,
            "command unexpectedly succeeded:\nstdout: {}",
            self.stdout
        );
        &self.stderr
    }
}

impl Cluster {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with its in-process node agent, on a pod network of its own, with the demo
    /// image ready to import.
    pub fn start_with_agent(extra: &[&str]) -> Self {
        Self::launch(extra, true)
    }

    /// Starts a server without a node agent, listening on `host` (an address of this machine).
    pub fn start_on(host: &str) -> Self {
        let mut c = Self::launch_prepared(&[], false, host);
        c.spawn();
        c
    }

    /// Starts a server (without a node agent) with extra `kubelite server` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::launch(extra, false)
    }

    fn launch(extra: &[&str], agent: bool) -> Self {
        let mut c = Self::launch_prepared(extra, agent, "127.0.0.1");
        c.spawn();
        c
    }

    fn launch_prepared(extra: &[&str], agent: bool, host: &str) -> Self {
        assert!(
            Path::new(KUBECTL).exists(),
            "kubectl is not installed at {KUBECTL} (the machine image's Google Cloud CLI packages provide it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cluster {
            child: None,
            port: free_port(),
            kubeconfig: dir.path().join("kubeconfig.yaml"),
            dir,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            bridge: None,
            cidr: None,
            host: host.into(),
        };
        if agent {
            // Tests run in parallel: every agent gets its own bridge, subnet and port.
            let n = CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let pid = std::process::id();
            let bridge = format!("kt{}x{n}", pid % 100000);
            let cidr = format!("10.{}.{}.0/24", 100 + pid % 100, n % 250);
            c.extra_args.extend([
                "--pod-bridge".into(),
                bridge.clone(),
                "--pod-cidr".into(),
                cidr.clone(),
                "--kubelet-port".into(),
                free_port().to_string(),
                "--node-name".into(),
                format!("node-{n}"),
            ]);
            c.bridge = Some(bridge);
            c.cidr = Some(cidr);
            let images = c.data_dir().join("agent").join("images");
            std::fs::create_dir_all(&images).unwrap();
            if let Ok(src) = std::fs::metadata(demo_image()).map(|_| demo_image()) {
                std::fs::copy(src, images.join("kuard-amd64-1.tar")).unwrap();
            }
        } else {
            c.extra_args.push("--disable-agent".into());
        }
        c
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self) {
        // A port found free can be taken (by any connection's local port) before the server
        // binds it: start again on another one when that happened.
        for _ in 0..5 {
            self.spawn_once();
            if self.wait_ready() {
                return;
            }
            self.port = free_port();
        }
        panic!("kubelite found no free port:\n{}", self.log());
    }

    fn spawn_once(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kubelite"))
            .arg("server")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--https-listen")
            .arg(format!("{}:{}", self.host, self.port))
            .arg("--write-kubeconfig")
            .arg(&self.kubeconfig)
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kubelite");
        self.child = Some(child);
    }

    /// Waits for the server to serve; false when it could not listen on its port.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.kubeconfig.exists()
                && std::net::TcpStream::connect((self.host.as_str(), self.port)).is_ok()
            {
                return true;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = self.log();
                if log.contains("Address already in use") {
                    self.child = None;
                    return false;
                }
                panic!("kubelite exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "kubelite did not become ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server with SIGKILL (no chance to flush anything).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server gracefully (SIGTERM) and returns how long it took to exit; after 10 s it
    /// is killed and the answer is None.
    pub fn stop(&mut self) -> Option<Duration> {
        self.stop_with("TERM")
    }

    /// Sends the server `signal` (`TERM`, `INT`) and returns how long it took to exit; after
    /// 10 s it is killed and the answer is None.
    pub fn stop_with(&mut self, signal: &str) -> Option<Duration> {
        let mut c = self.child.take()?;
        let sent = Instant::now();
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(c.id().to_string())
            .status();
        while sent.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = c.try_wait() {
                return Some(sent.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// The server's process ID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the server again on the same data dir and port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Whether the next start runs the node agent too (its pod network flags stay as they were).
    pub fn set_agent(&mut self, on: bool) {
        self.extra_args.retain(|a| a != "--disable-agent");
        if !on {
            self.extra_args.push("--disable-agent".into());
        }
    }

    /// Starts a stopped server again on the same data dir and port.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server still runs");
        self.spawn();
    }

    pub fn kubectl_cmd(&self, binary: &Path) -> Command {
        let mut cmd = Command::new(binary);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.path().join("kube-cache"))
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    pub fn kubectl_with(&self, binary: &Path, args: &[&str]) -> Out {
        Out::from(
            self.kubectl_cmd(binary)
                .args(args)
                .output()
                .expect("run kubectl"),
        )
    }

    pub fn kubectl(&self, args: &[&str]) -> Out {
        self.kubectl_with(Path::new(KUBECTL), args)
    }

    /// The namespace's events as `REASON  MESSAGE` lines.
    pub fn events(&self) -> String {
        self.kubectl(&[
            "get",
            "events",
            "-o",
            "custom-columns=REASON:.reason,MESSAGE:.message",
        ])
        .stdout
    }

    /// A JSONPath of pod `pod` as `kubectl get -o jsonpath` prints it, trimmed.
    pub fn pod_field(&self, pod: &str, jsonpath: &str) -> String {
        let template = format!("jsonpath={jsonpath}");
        self.kubectl(&["get", "pod", pod, "-o", &template])
            .stdout
            .trim()
            .to_string()
    }

    /// Writes a file into the test's directory and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    pub fn url(&self) -> String {
        format!("https://{}:{}", self.host, self.port)
    }

    /// PEM paths of the cluster CA and the admin client certificate, for raw HTTPS clients.
    pub fn tls_files(&self) -> (PathBuf, PathBuf, PathBuf) {
        let tls = self.data_dir().join("server").join("tls");
        (
            tls.join("ca.crt"),
            tls.join("admin.crt"),
            tls.join("admin.key"),
        )
    }

    /// A raw request with curl (admin client certificate unless `anonymous`): (status, body).
    pub fn curl(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: Option<&Path>,
        anonymous: bool,
    ) -> (u16, String) {
        let (ca, cert, key) = self.tls_files();
        let mut cmd = Command::new("curl");
        cmd.arg("-sS")
            .arg("-o")
            .arg("-")
            .arg("-w")
            .arg("\n%{http_code}")
            .arg("-X")
            .arg(method)
            .arg("--cacert")
            .arg(ca);
        if !anonymous {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        for h in headers {
            cmd.arg("-H").arg(h);
        }
        if let Some(b) = body {
            cmd.arg("--data-binary").arg(format!("@{}", b.display()));
        }
        cmd.arg(format!("{}{path}", self.url()));
        let out = cmd.output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.bridge.is_some() && self.child.is_some() {
            // Let the agent take every pod down, as a user would.
            let _ = self.kubectl(&[
                "delete",
                "pods",
                "--all",
                "--all-namespaces",
                "--timeout=60s",
            ]);
        }
        self.kill9();
        if let Some(bridge) = self.bridge.take() {
            sweep_node(&self.data_dir().join("agent"), &bridge);
        }
    }
}

/// Waits up to a minute for the first container of `pod` to run; fails with the pod described.
pub fn wait_running(c: &Cluster, pod: &str) {
    let running = eventually(60, || {
        let started = c.pod_field(
            pod,
            "{.status.containerStatuses[0].state.running.startedAt}",
        );
        (!started.is_empty()).then_some(())
    });
    assert!(
        running.is_some(),
        "{} does not run:\n{}",
        pod,
        c.kubectl(&["describe", "pod", pod]).stdout
    );
}

/// Waits up to `secs` until `f` gives `want`; fails with the pod described.
pub fn wait_for(c: &Cluster, pod: &str, secs: u64, want: &str, f: impl Fn() -> String) {
    let seen = eventually(secs, || (f() == want).then_some(()));
    assert!(
        seen.is_some(),
        "{pod}: never {want} (last {}):\n{}",
        f(),
        c.kubectl(&["describe", "pod", pod]).stdout
    );
}

/// Removes whatever an agent with this state dir left on the machine (after a failed test).
pub fn sweep_node(state: &Path, bridge: &str) {
    let oci = state.join("run").join("oci");
    if let Ok(out) = Command::new("crun")
        .arg("--root")
        .arg(&oci)
        .args(["list", "-q"])
        .output()
    {
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = Command::new("crun")
                .arg("--root")
                .arg(&oci)
                .args(["delete", "--force", id])
                .status();
        }
    }
    for sandbox in leftovers(state) {
        if let Some(pid) = sandbox["pause_pid"].as_i64() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        if let Some(ns) = sandbox["netns"].as_str() {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
    // The pod cgroups of whatever pods are left, in every hierarchy (v1) or the one (v2).
    let hierarchies: Vec<PathBuf> = std::iter::once(PathBuf::from("/sys/fs/cgroup"))
        .chain(
            std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path()),
        )
        .collect();
    for pod in std::fs::read_dir(state.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let uid = pod.file_name().to_string_lossy().into_owned();
        for root in &hierarchies {
            let group = root.join("kubelite").join(format!("pod{uid}"));
            for child in std::fs::read_dir(&group).into_iter().flatten().flatten() {
                let _ = std::fs::remove_dir(child.path());
            }
            let _ = std::fs::remove_dir(&group);
        }
    }
    let prefix = state.display().to_string();
    if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
        for target in mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|t| t.starts_with(&prefix))
        {
            let _ = Command::new("umount").arg("-l").arg(target).status();
        }
    }
    let _ = Command::new("ip")
        .args(["link", "delete", bridge])
        .stderr(Stdio::null())
        .status();
}

/// The sandbox records under an agent's state dir.
pub fn leftovers(state: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(state.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("sandbox").join("sandbox.json")).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect()
}

pub const KUARD_POD: &str = "kind: Pod
apiVersion: v1
metadata:
  name: kubernetes-up-and-running
spec:
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
";

pub const GENERIC_POD: &str = "kind: Pod
apiVersion: v1
metadata:
  generateName: kuard-
spec:
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
";

/// The lines `output` yields, read on a thread of their own, as a channel. The thread reads to
/// the end even when nobody listens any more, so the writer never dies of a closed pipe.
pub fn lines_of(output: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(output)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Polls `f` until it returns Some, for up to `secs` seconds.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes terminal colour codes (older kubectl colours `cluster-info`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// kubelite's own kubectl: a link named `kubectl` to the binary (called by that name, it is the
/// command line tool), in a directory that is removed when the first value is dropped.
pub fn kubelite_kubectl() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("kubectl");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kubelite"), &link).unwrap();
    (dir, link)
}
