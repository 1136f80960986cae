//! A server started with a low soft limit on open files (Debian's default is 1,024) still
//! serves `/readyz` while 2,000 idle TLS connections are open. A test binary of its own: it
//! lowers its own limit, which every thread of the process shares.

mod common;

use common::*;

#[test]
fn two_thousand_idle_tls_connections_do_not_starve_readyz() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert!(
        hard >= 4096,
        "the hard limit on open files ({hard}) is too low for this test"
    );
    // The server inherits this, as it would from a login shell.
    setrlimit(Resource::RLIMIT_NOFILE, 512, hard).expect("setrlimit");
    let c = Cluster::start();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit back");
    let port = c.url().rsplit(':').next().unwrap().to_string();
    // A client process of its own holds the connections (TLS done, nothing sent).
    let script = r#"
import socket, ssl, sys, subprocess
port = int(sys.argv[1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
held = [ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10)) for _ in range(2000)]
out = subprocess.run(["curl", "-sk", "-m", "10", "https://127.0.0.1:%d/readyz" % port], capture_output=True, text=True)
print(len(held), out.stdout)
"#;
    let f = c.file("idle.py", script);
    let out = std::process::Command::new("python3")
        .arg(&f)
        .arg(&port)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        "2000 ok",
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = c.pid().expect("running");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        numbers[0], numbers[1],
        "soft limit raised to the hard one: {line}"
    );
}
