//! "Connecting to a pod": `kubectl exec` (pipes, a real terminal, exit codes) and
//! `kubectl port-forward` (one port, two at once, many concurrent connections) with kubectl 1.27
//! (SPDY), 1.33 (WebSocket, and SPDY tunnelled in a WebSocket for port-forward) and the installed
//! kubectl; and the official Python client's exec and port-forward.

mod common;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

fn running_pod(c: &Cluster) {
    c.file("pod.yaml", KUARD_POD);
    c.kubectl(&["create", "-f", "pod.yaml"]).ok();
    let ready = eventually(60, || {
        let out = c.kubectl(&[
            "get",
            "pod",
            "kubernetes-up-and-running",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.running.startedAt}",
        ]);
        (!out.stdout.is_empty()).then_some(())
    });
    assert!(ready.is_some(), "the pod runs:\n{}", c.log());
}

const POD: &str = "kubernetes-up-and-running";

fn exec_flows(c: &Cluster, kubectl: &Path) {
    let ls = c.kubectl_with(kubectl, &["exec", POD, "--", "ls", "/"]);
    assert!(ls.ok().lines().any(|l| l == "kuard"), "{}", ls.stdout);
    let help = c.kubectl_with(kubectl, &["exec", POD, "--", "/kuard", "-h"]);
    assert!(
        format!("{}{}", help.stdout, help.stderr).contains("--address"),
        "{} {}",
        help.stdout,
        help.stderr
    );
    // Exit codes come back as kubectl's own exit code.
    let failed = c.kubectl_with(
        kubectl,
        &[
            "exec",
            POD,
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(failed.code, 3, "{} {}", failed.stdout, failed.stderr);
    assert_eq!(failed.stdout, "out\n");
    assert!(failed.stderr.contains("err\n"), "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains("command terminated with exit code 3"),
        "{}",
        failed.stderr
    );
    // Standard input is piped through, and its end reaches the process.
    let mut child = c
        .kubectl_cmd(kubectl)
        .args(["exec", "-i", POD, "--", "sh", "-c", "wc -c; cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"twelve bytes")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "12");
    // A container the pod does not have.
    let wrong = c.kubectl_with(kubectl, &["exec", POD, "-c", "nope", "--", "true"]);
    assert!(
        wrong
            .err()
            .contains("container nope is not valid for pod kubernetes-up-and-running"),
        "{}",
        wrong.stderr
    );
    // A container that is not running: the node's words, as kubectl prints them.
    let ended = eventually(30, || {
        let out = c.kubectl(&[
            "get",
            "pod",
            "ticker",
            "-o",
            "jsonpath={.status.containerStatuses[?(@.name==\"done\")].state.terminated.reason}",
        ]);
        (out.stdout == "Completed").then_some(())
    });
    assert!(ended.is_some(), "the short-lived container did not end");
    let stopped = c.kubectl_with(kubectl, &["exec", "ticker", "-c", "done", "--", "true"]);
    assert!(
        stopped
            .err()
            .contains("unable to upgrade connection: container not found (\"done\")"),
        "{}",
        stopped.stderr
    );
    terminal_session(c, kubectl);
}

/// `kubectl exec -it POD -- sh` under a pseudo-terminal the test drives, as a person would.
fn terminal_session(c: &Cluster, kubectl: &Path) {
    use std::os::unix::process::CommandExt;
    let start = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&start), None).unwrap();
    let slave = || Stdio::from(std::fs::File::from(pty.slave.try_clone().unwrap()));
    let mut cmd = c.kubectl_cmd(kubectl);
    cmd.args(["exec", "-it", POD, "--", "sh"])
        .stdin(slave())
        .stdout(slave())
        .stderr(slave());
    // kubectl runs in a session of its own with the pty as its controlling terminal, as in a
    // terminal emulator, so that a window change reaches it as SIGWINCH.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut master = std::fs::File::from(pty.master);
    let reader = master.try_clone().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut reader = reader;
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0
                || tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                return;
            }
        }
    });
    let mut screen = String::new();
    let expect = |what: &str, screen: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !screen.contains(what) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(text) => screen.push_str(&text),
                Err(_) => panic!("{what:?} never appeared; the terminal shows:\n{screen}"),
            }
        }
    };
    // Markers the shell computes, so the terminal's echo of the typed line does not match.
    master.write_all(b"tty; echo tty-$((1+1))\r").unwrap();
    expect("tty-2\r\n", &mut screen);
    assert!(screen.contains("/dev/pts/"), "{screen}");
    master.write_all(b"ls; echo ls-$((1+1))\r").unwrap();
    expect("ls-2\r\n", &mut screen);
    assert!(screen.contains("kuard"), "{screen}");
    // The window changes size: kubectl hears SIGWINCH and resizes the remote terminal.
    let size = nix::libc::winsize {
        ws_row: 33,
        ws_col: 111,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a pointer that outlives the call.
    unsafe { nix::libc::ioctl(master.as_raw_fd(), nix::libc::TIOCSWINSZ, &size) };
    let resized = eventually(10, || {
        master.write_all(b"stty size\r").unwrap();
        let before = screen.len();
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if let Ok(text) = rx.recv_timeout(Duration::from_millis(100)) {
                screen.push_str(&text);
            }
        }
        screen[before..].contains("33 111").then_some(())
    });
    assert!(resized.is_some(), "the terminal was not resized:\n{screen}");
    master.write_all(b"exit 0\r").unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status, Some(0), "kubectl exec -it did not end:\n{screen}");
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A port-forward running in the background, stopped on drop.
struct Forwarding(Child);

impl Drop for Forwarding {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn forward(c: &Cluster, kubectl: &Path, mappings: &[String]) -> Forwarding {
    let mut child = c
        .kubectl_cmd(kubectl)
        .arg("port-forward")
        .arg(POD)
        .args(mappings)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(child.stdout.take().unwrap());
    let forwarding = Forwarding(child);
    // kubectl prints one "Forwarding from 127.0.0.1:L -> R" line per mapping once it listens.
    let mut seen = 0;
    while seen < mappings.len() {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("kubectl port-forward says where it listens");
        if line.starts_with("Forwarding from 127.0.0.1:") {
            seen += 1;
        }
    }
    forwarding
}

/// A plain HTTP GET over a fresh connection; the response body.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    Ok(response)
}

fn port_forward_flows(c: &Cluster, kubectl: &Path) {
    let port = free_port();
    {
        let _f = forward(c, kubectl, &[format!("{port}:8080")]);
        let page = http_get(port, "/").unwrap();
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("kuard"), "{page}");
        // Many connections at once through the one forward.
        let failures: Vec<String> = concurrent_requests(port, 100)
            .into_iter()
            .filter_map(|r| match r {
                Ok(page) if page.starts_with("HTTP/1.1 200") => None,
                Ok(page) => Some(page),
                Err(e) => Some(e.to_string()),
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{} of 100 failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(3)]
        );
    }
    // Nothing listens on 9999 in the pod: kubectl reports the node's error and gives up.
    {
        let closed = free_port();
        let mut f = c
            .kubectl_cmd(kubectl)
            .args(["port-forward", POD, &format!("{closed}:9999")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let ready = eventually(20, || {
            std::net::TcpStream::connect(("127.0.0.1", closed)).ok()
        });
        drop(ready.expect("kubectl listens"));
        let _ = http_get(closed, "/");
        let status = wait_exit(&mut f, Duration::from_secs(20));
        let mut stderr = String::new();
        f.stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status, Some(1), "{stderr}");
        assert!(
            stderr.contains("error forwarding port 9999 to pod")
                && stderr.contains("connect: connection refused"),
            "{stderr}"
        );
        assert!(stderr.contains("lost connection to pod"), "{stderr}");
    }
    let (a, b) = (free_port(), free_port());
    let _f = forward(c, kubectl, &[format!("{a}:8080"), format!("{b}:8080")]);
    for p in [a, b] {
        let page = http_get(p, "/ready").unwrap();
        assert!(page.starts_with("HTTP/1.1 200"), "port {p}: {page}");
    }
}

fn concurrent_requests(port: u16, n: usize) -> Vec<std::io::Result<String>> {
    let handles: Vec<_> = (0..n)
        .map(|_| std::thread::spawn(move || http_get(port, "/healthy")))
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// `kubectl attach` shows what the container writes from then on.
fn attach_flow(c: &Cluster, kubectl: &Path) {
    let mut child = c
        .kubectl_cmd(kubectl)
        .args(["attach", "ticker", "-c", "ticker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(child.stdout.take().unwrap());
    let ticks = (0..3)
        .filter_map(|_| rx.recv_timeout(Duration::from_secs(10)).ok())
        .filter(|l| l.starts_with("tick "))
        .count();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        ticks, 3,
        "kubectl attach did not show the container's output"
    );
    // With -i, what the user types reaches the container's stdin (the container asked for one).
    let mut child = c
        .kubectl_cmd(kubectl)
        .args(["attach", "-i", "ticker", "-c", "reader"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let rx = lines_of(child.stdout.take().unwrap());
    let echoed = eventually(20, || {
        let _ = stdin.write_all(b"hello\n");
        rx.recv_timeout(Duration::from_millis(500))
            .ok()
            .filter(|l| l == "got hello")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        echoed.is_some(),
        "kubectl attach -i did not reach the container's stdin"
    );
}

fn streaming_with(kubectl: &Path) {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file(
        "ticker.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ticker\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: ticker\n    image: gcr.io/kuar-demo/kuard-amd64:1\n    command: [\"sh\", \"-c\", \"i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done\"]\n  - name: done\n    image: gcr.io/kuar-demo/kuard-amd64:1\n    command: [\"true\"]\n  - name: reader\n    image: gcr.io/kuar-demo/kuard-amd64:1\n    stdin: true\n    command: [\"sh\", \"-c\", \"while read l; do echo got $l; done\"]\n  restartPolicy: Never\n",
    );
    c.kubectl(&["create", "-f", "ticker.yaml"]).ok();
    running_pod(&c);
    exec_flows(&c, kubectl);
    attach_flow(&c, kubectl);
    port_forward_flows(&c, kubectl);
}

#[test]
fn exec_and_port_forward_with_installed_kubectl() {
    streaming_with(Path::new(KUBECTL));
}

#[test]
fn exec_and_port_forward_with_kubectl_1_27() {
    streaming_with(&kubectl_version(27));
}

#[test]
fn exec_and_port_forward_with_kubectl_1_33() {
    streaming_with(&kubectl_version(33));
}

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python")
}

#[test]
fn the_python_client_execs_and_forwards_ports() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    running_pod(&c);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/streams.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .arg(&c.kubeconfig)
        .arg(POD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python streams failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
}

// kubectl 1.28 and 1.29 speak SPDY; 1.30 execs over WebSocket and forwards ports over SPDY; 1.31
// and later tunnel port-forward's SPDY in a WebSocket.
#[test]
fn exec_and_port_forward_with_kubectl_1_28() {
    streaming_with(&kubectl_version(28));
}

#[test]
fn exec_and_port_forward_with_kubectl_1_29() {
    streaming_with(&kubectl_version(29));
}

#[test]
fn exec_and_port_forward_with_kubectl_1_30() {
    streaming_with(&kubectl_version(30));
}

#[test]
fn exec_and_port_forward_with_kubectl_1_31() {
    streaming_with(&kubectl_version(31));
}

#[test]
fn exec_attach_and_port_forward_with_kubelites_own_kubectl() {
    let (_dir, link) = kubelite_kubectl();
    streaming_with(&link);
}
