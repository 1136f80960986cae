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
        "{} is missing: the project's setup installs the kubectl versions",
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

    /// Starts a server with its in-process node agent.
    pub fn start_with_agent(extra: &[&str]) -> Self {
        Self::launch(extra, true)
    }

    /// Starts a server (without a node agent) with extra `kubelite server` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::launch(extra, false)
    }

    fn launch(extra: &[&str], agent: bool) -> Self {
        assert!(
            Path::new(KUBECTL).exists(),
            "kubectl is not installed at {KUBECTL}"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cluster {
            child: None,
            port: free_port(),
            kubeconfig: dir.path().join("kubeconfig.yaml"),
            dir,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        };
        if !agent {
            c.extra_args.push("--disable-agent".into());
        }
        c.spawn();
        c
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self) {
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
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--write-kubeconfig")
            .arg(&self.kubeconfig)
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kubelite");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.kubeconfig.exists()
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("kubelite exited with {status}:\n{}", self.log());
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

    /// Stops the server gracefully (SIGTERM).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            send_sigterm(c.id());
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data dir and port.
    pub fn restart(&mut self) {
        self.stop();
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

    /// Writes a file into the test's directory and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
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

fn send_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill9();
    }
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
