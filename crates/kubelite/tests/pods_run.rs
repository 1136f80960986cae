//! Pods run as real containers: the tutorial's kuard pod reaches Running with its own IP, its logs
//! are served, the duplicate-containers pod crash-loops exactly as the tutorial describes, a
//! restarted agent keeps containers running, and deleted pods leave nothing behind.

mod common;

use std::process::Command;

use common::*;

fn wait_for_status(c: &Cluster, pod: &str, want: &str, secs: u64) -> String {
    eventually(secs, || {
        let out = c.kubectl(&["get", "pod", pod, "--no-headers"]);
        out.stdout.contains(want).then(|| out.stdout.clone())
    })
    .unwrap_or_else(|| {
        panic!(
            "pod {pod} never showed {want}:\n{}\n{}",
            c.kubectl(&["describe", "pod", pod]).stdout,
            c.log()
                .lines()
                .filter(|l| !l.contains("DEBUG"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

const DUPLICATES: &str = "apiVersion: v1
kind: Pod
metadata:
  name: duplicate-containers
spec:
  containers:
    - name: one
      image: gcr.io/kuar-demo/kuard-amd64:1
    - name: two
      image: gcr.io/kuar-demo/kuard-amd64:1
";

#[test]
fn the_tutorial_pod_runs_and_answers_on_its_ip() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file("pod.yaml", KUARD_POD);
    c.kubectl(&["create", "-f", "pod.yaml"]).ok();
    let row = wait_for_status(&c, "kubernetes-up-and-running", "Running", 60);
    assert!(row.contains("1/1"), "{row}");
    let ip = c
        .kubectl(&[
            "get",
            "pod",
            "kubernetes-up-and-running",
            "-o",
            "jsonpath={.status.podIP}",
        ])
        .ok()
        .to_string();
    assert!(ip.starts_with("10."), "{ip}");
    let curl = Command::new("curl")
        .args(["-s", "-m", "5", &format!("http://{ip}:8080/healthy")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "ok");
    let logs = c.kubectl(&["logs", "kubernetes-up-and-running"]);
    assert!(
        logs.ok().contains("Serving on HTTP on :8080"),
        "{}",
        logs.stdout
    );
    let ready = c.kubectl(&[
        "get",
        "pod",
        "kubernetes-up-and-running",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert_eq!(ready.ok(), "True");
    let describe = c
        .kubectl(&["describe", "pod", "kubernetes-up-and-running"])
        .ok()
        .to_string();
    for line in [
        "Scheduled",
        "Pulled",
        "Created container: kuard",
        "Started container kuard",
        "Container ID:   crun://",
    ] {
        assert!(
            describe.contains(line),
            "describe lacks {line}:\n{describe}"
        );
    }
}

#[test]
fn duplicate_containers_crash_loop_and_the_custom_port_variant_runs() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file("dup.yaml", DUPLICATES);
    c.kubectl(&["create", "-f", "dup.yaml"]).ok();
    let row = wait_for_status(&c, "duplicate-containers", "CrashLoopBackOff", 60);
    assert!(row.contains("1/2"), "{row}");
    let previous = eventually(30, || {
        let out = c.kubectl(&["logs", "duplicate-containers", "-c", "two", "-p"]);
        out.stdout
            .contains("address already in use")
            .then_some(out.stdout)
    });
    assert!(previous.is_some(), "logs -p of two show the bind failure");
    let one = c.kubectl(&["logs", "duplicate-containers", "-c", "one"]);
    assert_eq!(one.ok().trim(), "Serving on HTTP on :8080");
    // kubectl 1.33 picks the first container itself; the API insists on a name, as Kubernetes does.
    let defaulted = c.kubectl(&["logs", "duplicate-containers"]);
    assert!(
        defaulted
            .stderr
            .contains("Defaulted container \"one\" out of: one, two"),
        "{}",
        defaulted.stderr
    );
    let (code, body) = c.curl(
        "GET",
        "/api/v1/namespaces/default/pods/duplicate-containers/log",
        &[],
        None,
        false,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("a container name must be specified for pod duplicate-containers, choose one of: [one two]"), "{body}");
    let describe = c
        .kubectl(&["describe", "pod", "duplicate-containers"])
        .ok()
        .to_string();
    assert!(
        describe.contains(
            "Back-off restarting failed container two in pod duplicate-containers_default("
        ),
        "{describe}"
    );
    let restarts: i64 = c
        .kubectl(&[
            "get",
            "pod",
            "duplicate-containers",
            "-o",
            "jsonpath={.status.containerStatuses[1].restartCount}",
        ])
        .ok()
        .parse()
        .unwrap();
    assert!(restarts >= 1);
    c.kubectl(&["delete", "pod", "duplicate-containers"]).ok();
    c.file("custom.yaml", &DUPLICATES.replace("    - name: two\n      image: gcr.io/kuar-demo/kuard-amd64:1\n", "    - name: two\n      image: gcr.io/kuar-demo/kuard-amd64:1\n      args: [\"--address\", \":8081\"]\n"));
    c.kubectl(&["create", "-f", "custom.yaml"]).ok();
    let row = wait_for_status(&c, "duplicate-containers", "Running", 60);
    assert!(row.contains("2/2"), "{row}");
    let two = eventually(10, || {
        let out = c.kubectl(&["logs", "duplicate-containers", "-c", "two"]);
        out.stdout.contains(":8081").then_some(out.stdout)
    });
    assert_eq!(
        two.expect("two logs its address").trim(),
        "Serving on HTTP on :8081"
    );
}

#[test]
fn restarting_the_server_keeps_containers_running() {
    require_container_host();
    let mut c = Cluster::start_with_agent(&[]);
    c.file("pod.yaml", KUARD_POD);
    c.kubectl(&["create", "-f", "pod.yaml"]).ok();
    wait_for_status(&c, "kubernetes-up-and-running", "Running", 60);
    let id = |c: &Cluster| {
        c.kubectl(&["get", "pod", "kubernetes-up-and-running", "-o", "jsonpath={.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount}"]).ok().to_string()
    };
    let before = id(&c);
    let container_id = before
        .split_whitespace()
        .next()
        .and_then(|id| id.split_once("://"))
        .map(|(_, id)| id.to_string())
        .expect("a container ID");
    c.restart();
    // The restarted agent says when it has taken the running container back; only then is the
    // status it keeps publishing the new agent's word.
    eventually(60, || {
        c.log()
            .lines()
            .any(|l| l.contains("adopted a running container") && l.contains(&container_id))
            .then_some(())
    })
    .expect("the restarted agent adopts the running container");
    let after = id(&c);
    assert_eq!(before, after, "the same container, no restart");
    let logs = c.kubectl(&["logs", "kubernetes-up-and-running"]);
    assert!(logs.ok().contains("Serving on HTTP on :8080"));
}

#[test]
fn deleted_pods_leave_nothing_behind() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    let state = c.data_dir().join("agent");
    let mut uids: Vec<String> = Vec::new();
    let mut pauses: Vec<i64> = Vec::new();
    // 50 create/delete cycles, two pods at a time.
    for round in 0..25 {
        c.file("gen.yaml", GENERIC_POD);
        for _ in 0..2 {
            c.kubectl(&["create", "-f", "gen.yaml"]).ok();
        }
        let running = eventually(60, || {
            let out = c.kubectl(&["get", "pods", "--no-headers"]);
            (out.stdout.lines().count() == 2 && out.stdout.lines().all(|l| l.contains("Running")))
                .then_some(())
        });
        assert!(
            running.is_some(),
            "round {round}: {}\n{}",
            c.kubectl(&["get", "pods"]).stdout,
            c.log()
                .lines()
                .filter(|l| !l.contains("DEBUG"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let listed = c.kubectl(&["get", "pods", "-o", "jsonpath={.items[*].metadata.uid}"]);
        uids.extend(listed.ok().split_whitespace().map(str::to_string));
        pauses.extend(
            leftovers(&state)
                .iter()
                .filter_map(|s| s["pause_pid"].as_i64()),
        );
        c.kubectl(&["delete", "pods", "--all", "--timeout=60s"])
            .ok();
    }
    assert_eq!(uids.len(), 50);
    let prefix = state.display().to_string();
    // The agent's own runtime state is a tmpfs that lasts as long as the agent; no pod's is.
    let own = format!("{prefix}/run ");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&prefix) && !l.contains(&own)),
        "mounts left:\n{mounts}"
    );
    assert!(leftovers(&state).is_empty(), "sandboxes left");
    let netns = String::from_utf8(
        Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for uid in &uids {
        assert!(
            !netns.contains(&format!("kl-{}", &uid[..20])),
            "netns of pod {uid} left"
        );
        // cgroup v1 has a hierarchy per controller, v2 one for all.
        let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let hierarchies: &[&str] = if unified {
            &[""]
        } else {
            &["memory/", "cpu/", "pids/"]
        };
        for h in hierarchies {
            let cgroup = format!("/sys/fs/cgroup/{h}kubelite/pod{uid}");
            assert!(!std::path::Path::new(&cgroup).exists(), "{cgroup} left");
        }
    }
    assert_eq!(pauses.len(), 50, "a pause process per pod");
    for pid in pauses {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains("catatonit"),
            "pause process {pid} left"
        );
    }
    for dir in ["logs", "run/exits", "run/sockets", "run/oci", "run/conmon"] {
        let left: Vec<_> = std::fs::read_dir(state.join(dir))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir} still holds {left:?}");
    }
    let uids_dir = std::fs::read_dir(state.join("pods"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(uids_dir, 0, "pod directories left");
    let conmons = Command::new("pgrep")
        .args(["-f", &format!("conmon.*{prefix}")])
        .output()
        .unwrap();
    assert!(
        conmons.stdout.is_empty(),
        "conmon processes left: {}",
        String::from_utf8_lossy(&conmons.stdout)
    );
    let leases: Vec<_> = std::fs::read_dir(state.join("cni").join("kubelite"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("10."))
                .collect()
        })
        .unwrap_or_default();
    assert!(leases.is_empty(), "IP leases left: {leases:?}");
}

#[test]
fn a_missing_image_and_a_bad_command_back_off_with_kubernetes_reasons() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file(
        "missing.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: missing\nspec:\n  containers:\n  - name: c\n    image: localhost:5999/nothing:1\n",
    );
    c.kubectl(&["create", "-f", "missing.yaml"]).ok();
    // ErrImagePull first (briefly), then ImagePullBackOff while backing off; both leave events.
    wait_for_status(&c, "missing", "ImagePullBackOff", 30);
    let events = c
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=missing",
        ])
        .ok()
        .to_string();
    assert!(events.contains("Error: ErrImagePull"), "{events}");
    assert!(
        events.contains("Back-off pulling image \"localhost:5999/nothing:1\""),
        "{events}"
    );
    c.file(
        "badcmd.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: badcmd\nspec:\n  containers:\n  - name: c\n    image: gcr.io/kuar-demo/kuard-amd64:1\n    command: [\"/no/such/binary\"]\n",
    );
    c.kubectl(&["create", "-f", "badcmd.yaml"]).ok();
    let row = wait_for_status(&c, "badcmd", "Error", 30);
    assert!(row.contains("0/1"), "{row}");
    let message = c
        .kubectl(&[
            "get",
            "pod",
            "badcmd",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.message}",
        ])
        .ok()
        .to_string();
    assert!(message.contains("/no/such/binary"), "{message}");
}

/// A throwaway registry v2 (Debian's docker-registry) on a free loopback port.
struct Registry {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    addr: String,
    /// The user and password it asks for, if it asks.
    login: Option<(String, String)>,
}

impl Registry {
    fn start() -> Registry {
        Registry::launch(None)
    }

    /// A registry that serves only `user` with `password` (an htpasswd file, bcrypt as the
    /// registry wants it, made with the system's crypt).
    fn start_with_login(user: &str, password: &str) -> Registry {
        Registry::launch(Some((user.to_string(), password.to_string())))
    }

    fn launch(login: Option<(String, String)>) -> Registry {
        assert!(
            std::path::Path::new("/usr/bin/docker-registry").exists(),
            "docker-registry is missing: scripts/deps.sh installs it"
        );
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("config.yml");
        let mut yaml = format!("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n", dir.path().join("data").display());
        if let Some((user, password)) = &login {
            let hashed = Command::new("python3")
                .args(["-W", "ignore", "-c", "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))", password])
                .output()
                .unwrap();
            assert!(
                hashed.status.success(),
                "hashing the registry password failed"
            );
            let htpasswd = dir.path().join("htpasswd");
            let line = format!("{user}:{}", String::from_utf8_lossy(&hashed.stdout).trim());
            std::fs::write(&htpasswd, line + "\n").unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&config, yaml).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let ready = eventually(10, || std::net::TcpStream::connect(&addr).ok());
        assert!(ready.is_some(), "the registry did not start");
        Registry {
            child,
            _dir: dir,
            addr,
            login,
        }
    }

    /// Pushes the demo image as `demo/kuard:TAG` and returns its reference.
    fn push(&self, tag: &str) -> String {
        let target = format!("{}/demo/kuard:{tag}", self.addr);
        let mut skopeo = Command::new("skopeo");
        skopeo.args(["copy", "--dest-tls-verify=false"]);
        if let Some((user, password)) = &self.login {
            skopeo.arg(format!("--dest-creds={user}:{password}"));
        }
        let out = skopeo
            .arg(format!("oci-archive:{}", demo_image().display()))
            .arg(format!("docker://{target}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        target
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_image_is_pulled_from_a_registry() {
    require_container_host();
    let registry = Registry::start();
    let target = registry.push("pulled");
    let c = Cluster::start_with_agent(&[]);
    c.kubectl(&["run", "pulled", &format!("--image={target}")])
        .ok();
    wait_for_status(&c, "pulled", "Running", 60);
    let events = c
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=pulled",
        ])
        .ok()
        .to_string();
    assert!(
        events.contains(&format!("Successfully pulled image \"{target}\"")),
        "{events}"
    );
    let logs = c.kubectl(&["logs", "pulled"]);
    assert!(logs.ok().contains("Serving on HTTP on :8080"));
}

#[test]
fn images_are_managed_from_the_command_line() {
    require_container_host();
    let kubelite = env!("CARGO_BIN_EXE_kubelite");
    let run = |args: &[&str], data: &std::path::Path| {
        let out = Command::new(kubelite)
            .arg("images")
            .args(args)
            .arg("--data-dir")
            .arg(data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // No agent running: the store is used directly.
    let offline = tempfile::tempdir().unwrap();
    let image = demo_image();
    assert!(run(&["import", image.to_str().unwrap()], offline.path())
        .contains("imported gcr.io/kuar-demo/kuard-amd64:1"));
    assert!(run(&["ls"], offline.path()).contains("gcr.io/kuar-demo/kuard-amd64:1"));
    run(&["rm", "gcr.io/kuar-demo/kuard-amd64:1"], offline.path());
    assert!(!run(&["ls"], offline.path()).contains("kuard"));

    // A running agent takes the archive (here a `docker save`-format one) through its import folder.
    let c = Cluster::start_with_agent(&[]);
    let archive = c.dir.path().join("queued.tar");
    let copy = Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}", image.display()))
        .arg(format!(
            "docker-archive:{}:local/kuard:queued",
            archive.display()
        ))
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    assert!(run(&["import", archive.to_str().unwrap()], &c.data_dir()).contains("queued"));
    let listed = eventually(20, || {
        let out = run(&["ls"], &c.data_dir());
        out.contains("docker.io/local/kuard:queued").then_some(out)
    });
    assert!(listed.is_some(), "the agent imported the queued archive");
    c.file(
        "never.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: never\nspec:\n  containers:\n  - name: c\n    image: local/kuard:queued\n    imagePullPolicy: Never\n",
    );
    c.kubectl(&["create", "-f", "never.yaml"]).ok();
    wait_for_status(&c, "never", "Running", 60);
}

/// A second "host": a network namespace joined to this one by a veth pair.
struct Host {
    netns: String,
    host_ip: String,
    peer_ip: String,
}

impl Host {
    fn create() -> Host {
        let id = std::process::id() % 10000;
        let netns = format!("h2-{id}");
        let (a, b) = (format!("h2a{id}"), format!("h2b{id}"));
        let subnet = id % 250;
        let host_ip = format!("10.250.{subnet}.1");
        let peer_ip = format!("10.250.{subnet}.2");
        let sh = |cmd: &str| {
            let ok = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .status()
                .unwrap()
                .success();
            assert!(ok, "{cmd}");
        };
        let _ = Command::new("ip")
            .args(["netns", "delete", &netns])
            .status();
        sh(&format!("ip netns add {netns}"));
        sh(&format!("ip link add {a} type veth peer name {b}"));
        sh(&format!("ip link set {b} netns {netns}"));
        sh(&format!(
            "ip addr add {host_ip}/30 dev {a} && ip link set {a} up"
        ));
        sh(&format!("ip -n {netns} addr add {peer_ip}/30 dev {b} && ip -n {netns} link set {b} up && ip -n {netns} link set lo up"));
        Host {
            netns,
            host_ip,
            peer_ip,
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Deleting the namespace removes the veth pair too.
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.netns])
            .status();
    }
}

#[test]
fn an_agent_on_a_second_host_runs_pods() {
    require_container_host();
    let host = Host::create();
    let c = Cluster::start_on(&host.host_ip);
    let port = c.port;
    let token = std::fs::read_to_string(c.data_dir().join("server/tls/node-token")).unwrap();
    let state = c.dir.path().join("host2");
    let images = state.join("agent").join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::copy(demo_image(), images.join("kuard.tar")).unwrap();
    let bridge = format!("h2br{}", std::process::id() % 10000);
    // Only the network namespace differs (like a second machine's network); `ip netns exec` would
    // also hide the cgroup mounts.
    let mut agent = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", host.netns))
        .args([env!("CARGO_BIN_EXE_kubelite"), "agent"])
        .args([
            "--server",
            &format!("https://{}:{port}", host.host_ip),
            "--token",
            token.trim(),
            "--node-name",
            "host2",
        ])
        .args([
            "--pod-bridge",
            &bridge,
            "--pod-cidr",
            "10.252.0.0/24",
            "--kubelet-port",
            "10251",
        ])
        .arg("--data-dir")
        .arg(&state)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(c.dir.path().join("host2.log")).unwrap())
        .spawn()
        .unwrap();
    // A token given on the command line is moved out of it when the agent re-executes itself.
    let secret = token.trim().rsplit_once(':').unwrap().1.to_string();
    let cmdline = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default()
    };
    let ready = eventually(30, || {
        let out = c.kubectl(&[
            "get",
            "node",
            "host2",
            "-o",
            "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}",
        ]);
        (out.stdout == host.peer_ip).then_some(())
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert!(
            ready.is_some(),
            "host2 registers with its own address: {}",
            std::fs::read_to_string(c.dir.path().join("host2.log")).unwrap_or_default()
        );
        let shown = cmdline(agent.id());
        assert!(shown.contains("agent"), "{shown}");
        assert!(
            !shown.contains(&secret),
            "the token is on the command line: {shown}"
        );
        c.file("pod.yaml", KUARD_POD);
        c.kubectl(&["create", "-f", "pod.yaml"]).ok();
        let running = eventually(60, || {
            let out = c.kubectl(&["get", "pod", "kubernetes-up-and-running", "--no-headers"]);
            out.stdout.contains("Running").then_some(())
        });
        assert!(
            running.is_some(),
            "{}\n{}",
            c.kubectl(&["describe", "pod", "kubernetes-up-and-running"])
                .stdout,
            std::fs::read_to_string(c.dir.path().join("host2.log")).unwrap_or_default()
        );
        let node = c.kubectl(&[
            "get",
            "pod",
            "kubernetes-up-and-running",
            "-o",
            "jsonpath={.spec.nodeName}",
        ]);
        assert_eq!(node.ok(), "host2");
        let logs = eventually(10, || {
            let out = c.kubectl(&["logs", "kubernetes-up-and-running"]);
            out.stdout.contains("Serving on HTTP").then_some(())
        });
        assert!(
            logs.is_some(),
            "logs are proxied to the second host's agent"
        );
        c.kubectl(&[
            "delete",
            "pod",
            "kubernetes-up-and-running",
            "--timeout=60s",
        ])
        .ok();
    }));
    let _ = agent.kill();
    let _ = agent.wait();
    // The agent's pods were deleted above; sweep in case the test failed half-way.
    let _ = Command::new("ip")
        .args([
            "netns",
            "exec",
            &host.netns,
            "ip",
            "link",
            "delete",
            &bridge,
        ])
        .status();
    sweep_node(&state.join("agent"), &bridge);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn a_memory_limit_is_enforced_by_the_kernel() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file(
        "limits.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: limited\nspec:\n  containers:\n  - name: kuard\n    image: gcr.io/kuar-demo/kuard-amd64:1\n    resources:\n      limits:\n        memory: 256M\n",
    );
    c.kubectl(&["create", "-f", "limits.yaml"]).ok();
    wait_for_status(&c, "limited", "Running", 60);
    let describe = c.kubectl(&["describe", "pod", "limited"]).ok().to_string();
    assert!(
        describe.contains("Limits:\n      memory:  256M\n    Requests:\n      memory:     256M"),
        "{describe}"
    );
    let ip = c
        .kubectl(&["get", "pod", "limited", "-o", "jsonpath={.status.podIP}"])
        .ok()
        .to_string();
    // The tutorial's "Allocate 500 MiB" link: more than the limit, so the kernel kills it.
    let _ = Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-X",
            "POST",
            &format!("http://{ip}:8080/mem/api/alloc?size=524288000"),
        ])
        .output();
    let reason = eventually(30, || {
        let out = c.kubectl(&["get", "pod", "limited", "-o", "jsonpath={.status.containerStatuses[0].lastState.terminated.reason} {.status.containerStatuses[0].restartCount}"]);
        out.stdout.starts_with("OOMKilled").then_some(out.stdout)
    });
    let reason = reason.expect("the container is OOM-killed and restarted");
    assert!(reason.ends_with(" 1") || reason.ends_with(" 2"), "{reason}");
}

#[test]
fn an_image_change_restarts_the_container_on_the_new_image() {
    require_container_host();
    let registry = Registry::start();
    let (one, two) = (registry.push("one"), registry.push("two"));
    let c = Cluster::start_with_agent(&[]);
    c.kubectl(&["run", "updated", &format!("--image={one}")])
        .ok();
    wait_for_status(&c, "updated", "Running", 60);
    c.kubectl(&["set", "image", "pod/updated", &format!("updated={two}")])
        .ok();
    let restarted = eventually(60, || {
        let out = c.kubectl(&[
            "get",
            "pod",
            "updated",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].image} {.status.containerStatuses[0].state.running.startedAt}",
        ]);
        let words: Vec<&str> = out.stdout.split_whitespace().collect();
        (words.len() == 3 && words[0] == "1" && words[1] == two).then_some(())
    });
    let events = c
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=updated",
        ])
        .ok()
        .to_string();
    assert!(restarted.is_some(), "not restarted on {two}:\n{events}");
    for want in [
        "Container updated definition changed, will be restarted".to_string(),
        format!("Pulling image \"{two}\""),
        format!("Successfully pulled image \"{two}\""),
        "Created container: updated".to_string(),
        "Started container updated".to_string(),
    ] {
        assert!(events.contains(&want), "{want}:\n{events}");
    }
    // Other changes are refused, with the old value as `-` and the new one as `+`.
    let refused = c.kubectl(&[
        "patch",
        "pod",
        "updated",
        "-p",
        "{\"spec\":{\"containers\":[{\"name\":\"updated\",\"args\":[\"-x\"]}]}}",
    ]);
    let text = refused.err();
    assert!(
        text.contains("spec: Forbidden: pod updates may not change fields other than"),
        "{text}"
    );
}

#[test]
fn image_pull_secrets_log_in_to_a_private_registry() {
    require_container_host();
    let registry = Registry::start_with_login("puller", "let-me-in");
    let image = registry.push("private");
    let c = Cluster::start_with_agent(&[]);
    let pod = |name: &str, secret: bool| {
        let secrets = if secret {
            "  imagePullSecrets: [{name: regcred}]\n"
        } else {
            ""
        };
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{secrets}  containers:\n  - name: kuard\n    image: {image}\n")
    };
    c.file("anonymous.yaml", &pod("anonymous", false));
    c.kubectl(&["apply", "-f", "anonymous.yaml"]).ok();
    let reason = || {
        c.pod_field(
            "anonymous",
            "{.status.containerStatuses[0].state.waiting.reason}",
        )
    };
    let refused = eventually(60, || {
        let r = reason();
        (r == "ErrImagePull" || r == "ImagePullBackOff").then_some(r)
    });
    assert!(
        refused.is_some(),
        "an anonymous pull was not refused: {}",
        reason()
    );
    c.kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={}", registry.addr),
        "--docker-username=puller",
        "--docker-password=let-me-in",
    ])
    .ok();
    c.file("private.yaml", &pod("private", true));
    c.kubectl(&["apply", "-f", "private.yaml"]).ok();
    wait_running(&c, "private");
}

#[test]
fn container_logs_are_rotated_and_kept_to_a_number_of_files() {
    require_container_host();
    let c = Cluster::start_with_agent(&[
        "--container-log-max-size",
        "64Ki",
        "--container-log-max-files",
        "3",
        "--container-log-monitor-seconds",
        "1",
    ]);
    // About 90 KiB a second, each line numbered.
    c.file(
        "chatty.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: chatty\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: talk\n    image: gcr.io/kuar-demo/kuard-amd64:1\n    command: [sh, -c, 'i=0; pad=$(printf %0900d 0); while true; do i=$((i+1)); echo \"line $i $pad\"; sleep 0.01; done']\n",
    );
    c.kubectl(&["apply", "-f", "chatty.yaml"]).ok();
    wait_running(&c, "chatty");
    let uid = c.pod_field("chatty", "{.metadata.uid}");
    let dir = c
        .data_dir()
        .join("agent/logs")
        .join(format!("default_chatty_{uid}"))
        .join("talk");
    let files = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let mut rotations = 0;
    for _ in 0..40 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let names = files();
        assert!(names.len() <= 3, "more files than kept: {names:?}");
        rotations = names.iter().filter(|n| n.starts_with("0.log.")).count();
        if rotations == 2 {
            break;
        }
    }
    assert_eq!(rotations, 2, "rotated files: {:?}", files());
    // conmon writes to the reopened file, which `kubectl logs` reads: the newest lines.
    let numbers = |text: &str| -> Vec<u64> {
        text.lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .collect()
    };
    let rotated = files()
        .into_iter()
        .find(|n| n != "0.log")
        .expect("a rotated file");
    let old = numbers(&std::fs::read_to_string(dir.join(rotated)).unwrap_or_default());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let current = numbers(c.kubectl(&["logs", "chatty"]).ok());
    assert!(
        current.first() > old.last(),
        "kubectl logs shows lines written after the rotation"
    );
    assert!(
        current.windows(2).all(|w| w[1] == w[0] + 1),
        "no line lost within the file"
    );
    assert_eq!(
        c.pod_field("chatty", "{.status.containerStatuses[0].restartCount}"),
        "0"
    );
}

#[test]
fn a_container_whose_conmon_died_ends_failed_not_succeeded() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file(
        "orphan.yaml",
        &KUARD_POD
            .replace("kubernetes-up-and-running", "orphan")
            .replace("spec:\n", "spec:\n  restartPolicy: Never\n"),
    );
    c.kubectl(&["apply", "-f", "orphan.yaml"]).ok();
    wait_running(&c, "orphan");
    let id = c.pod_field("orphan", "{.status.containerStatuses[0].containerID}");
    let id = id
        .split_once("://")
        .map(|(_, id)| id.to_string())
        .expect("an ID");
    let run = c.data_dir().join("agent/run");
    let conmon = std::fs::read_to_string(run.join("conmon").join(format!("{id}.pid")))
        .expect("conmon's pid file");
    let state = Command::new("crun")
        .arg("--root")
        .arg(run.join("oci"))
        .args(["state", &id])
        .output()
        .expect("crun state");
    let state: serde_json::Value = serde_json::from_slice(&state.stdout).expect("state JSON");
    let pid = state["pid"]
        .as_i64()
        .expect("the container's pid")
        .to_string();
    // Its monitor goes first, then the container: nobody writes its exit code down.
    for victim in [conmon.trim(), pid.as_str()] {
        assert!(Command::new("kill")
            .args(["-9", victim])
            .status()
            .unwrap()
            .success());
    }
    wait_for(&c, "orphan", 30, "Failed", || {
        c.pod_field("orphan", "{.status.phase}")
    });
    let terminated = c.pod_field(
        "orphan",
        "{.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.terminated.reason}",
    );
    assert_eq!(terminated, "255 Error");
}

#[test]
fn a_pod_force_deleted_while_the_agent_was_away_is_cleaned_up_when_it_returns() {
    require_container_host();
    let mut c = Cluster::start_with_agent(&[]);
    c.file(
        "gone.yaml",
        &KUARD_POD.replace("kubernetes-up-and-running", "gone"),
    );
    c.kubectl(&["apply", "-f", "gone.yaml"]).ok();
    wait_running(&c, "gone");
    let uid = c.pod_field("gone", "{.metadata.uid}");
    let state = c.data_dir().join("agent");
    let pause = leftovers(&state)[0]["pause_pid"]
        .as_i64()
        .expect("a pause pid");
    // The server comes back without its agent, the pod is force-deleted, then the agent returns.
    c.stop();
    c.set_agent(false);
    c.start_again();
    c.kubectl(&["delete", "pod", "gone", "--force", "--grace-period=0"])
        .ok();
    c.stop();
    c.set_agent(true);
    c.start_again();
    let pod_dir = state.join("pods").join(&uid);
    let cleaned = eventually(30, || (!pod_dir.exists()).then_some(()));
    assert!(cleaned.is_some(), "the pod's directory is still there");
    // Gone or a zombie (an exited process has no command line left).
    let cmdline = std::fs::read(format!("/proc/{pause}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(
        !cmdline.contains("catatonit"),
        "its pause process still runs"
    );
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let netns = String::from_utf8_lossy(&netns.stdout);
    assert!(
        !netns.contains(&format!("kl-{}", &uid[..20])),
        "its netns is left"
    );
    let containers = std::fs::read_dir(state.join("run/oci")).unwrap().count();
    assert_eq!(containers, 0, "its container is left");
    let logs: Vec<_> = std::fs::read_dir(state.join("logs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(logs.is_empty(), "its logs are left: {logs:?}");
    assert!(c
        .log()
        .contains("tearing down a pod no longer bound to this node"));
}

#[test]
fn a_container_the_agent_made_but_never_recorded_does_not_block_the_pod() {
    require_container_host();
    let mut c = Cluster::start_with_agent(&[]);
    c.file(
        "unrecorded.yaml",
        &KUARD_POD.replace("kubernetes-up-and-running", "unrecorded"),
    );
    c.kubectl(&["apply", "-f", "unrecorded.yaml"]).ok();
    wait_running(&c, "unrecorded");
    let uid = c.pod_field("unrecorded", "{.metadata.uid}");
    let state = c.data_dir().join("agent");
    let first_start = c.pod_field(
        "unrecorded",
        "{.status.containerStatuses[0].state.running.startedAt}",
    );
    // As if the agent died between starting the container and writing down that it did.
    c.stop();
    std::fs::remove_file(state.join("pods").join(&uid).join("kuard.json")).expect("the record");
    c.start_again();
    let started = eventually(60, || {
        let line = c
            .log()
            .lines()
            .any(|l| l.contains("removing an unrecorded container of the same name"));
        // The status the old container left says running too: wait for the new one's.
        let running = c.pod_field(
            "unrecorded",
            "{.status.containerStatuses[0].state.running.startedAt}",
        );
        (line && !running.is_empty() && running != first_start).then_some(())
    });
    assert!(
        started.is_some(),
        "{}",
        c.kubectl(&["describe", "pod", "unrecorded"]).stdout
    );
    let containers = std::fs::read_dir(state.join("run/oci")).unwrap().count();
    assert_eq!(containers, 1, "one container, the new one");
    let logs = c.kubectl(&["logs", "unrecorded"]);
    assert!(logs.ok().contains("Serving on HTTP on :8080"));
}
