//! Pod sandboxes: the network namespace every container of a pod shares (pinned on disk under
//! `/run/netns`, its loopback up, wired by the real CNI plugins bridge + host-local), the UTS and IPC
//! namespaces held by a pause process, and the pod's `/etc/hosts`, `/etc/hostname` and
//! `/etc/resolv.conf`.
//!
//! A sandbox is described by a small JSON record in its directory, so an agent that restarts finds
//! it again and tears it down with the same CNI configuration that set it up.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How pods are wired on this node.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// The Linux bridge pods attach to (unique per agent on a machine).
    pub bridge: String,
    /// The pod subnet, e.g. `10.42.0.0/24`.
    pub subnet: String,
    /// Where the CNI plugins are (`/usr/lib/cni` on Debian).
    pub cni_bin_dir: PathBuf,
    /// Where host-local keeps its leases.
    pub ipam_dir: PathBuf,
}

/// A running sandbox, as recorded in `<dir>/sandbox.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sandbox {
    pub id: String,
    pub dir: PathBuf,
    pub netns: String,
    pub ip: String,
    pub pause_pid: i32,
    pub hostname: String,
    /// How the pod shares the node's namespaces.
    #[serde(default)]
    pub sharing: Sharing,
}

/// Which of the node's namespaces a pod uses (`hostNetwork`, `hostPID`, `hostIPC`), and whether
/// its containers share one PID namespace (`shareProcessNamespace`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sharing {
    #[serde(default)]
    pub host_network: bool,
    #[serde(default)]
    pub host_pid: bool,
    #[serde(default)]
    pub host_ipc: bool,
    #[serde(default)]
    pub shared_pid: bool,
}

impl Sandbox {
    pub fn netns_path(&self) -> PathBuf {
        if self.sharing.host_network {
            return PathBuf::from("/proc/1/ns/net");
        }
        Path::new(NETNS_DIR).join(&self.netns)
    }
    /// The pause process's PID namespace, which containers share with `shareProcessNamespace`.
    pub fn pid_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/pid", self.pause_pid))
    }
    pub fn ipc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/ipc", self.pause_pid))
    }
    pub fn uts_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/uts", self.pause_pid))
    }

    /// Reads the record of a sandbox made earlier (e.g. before the agent restarted).
    pub fn load(dir: &Path) -> Result<Option<Sandbox>> {
        let path = dir.join("sandbox.json");
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Whether the pause process still holds the namespaces.
    pub fn alive(&self) -> bool {
        self.pause_is_ours() && self.netns_path().exists()
    }

    /// Whether `pause_pid` is still this sandbox's pause process, and not some process that got
    /// the number after it ended: it must be in the pod's network namespace (for a pod on the
    /// node's network: be a pause program).
    fn pause_is_ours(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let proc = PathBuf::from(format!("/proc/{}", self.pause_pid));
        if self.sharing.host_network {
            let comm = std::fs::read_to_string(proc.join("comm")).unwrap_or_default();
            return matches!(comm.trim(), "catatonit" | "kubelite");
        }
        let inode = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
        let theirs = inode(&proc.join("ns/net"));
        theirs.is_some() && theirs == inode(&self.netns_path())
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    let rendered = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: rendered.clone(),
            message: e.to_string(),
        })?;
    checked(rendered, out)
}

/// Stdout of a finished command, or an error carrying everything it printed.
fn checked(command: String, out: std::process::Output) -> Result<String> {
    if !out.status.success() {
        return Err(Error::Command {
            command,
            message: format!(
                "{} {}",
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn bridge_conf(cfg: &NetworkConfig) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "kubelite",
        "type": "bridge",
        "bridge": cfg.bridge,
        "isGateway": true,
        "ipMasq": false,
        "hairpinMode": true,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": cfg.subnet}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": cfg.ipam_dir,
        },
    })
}

/// Runs one CNI plugin and returns its result JSON.
fn cni(
    cfg: &NetworkConfig,
    command: &str,
    plugin: &str,
    conf: &serde_json::Value,
    id: &str,
    netns: &Path,
    ifname: &str,
) -> Result<String> {
    let binary = cfg.cni_bin_dir.join(plugin);
    let rendered = format!("CNI {command} {} ({ifname})", binary.display());
    let mut child = Command::new(&binary)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", &cfg.cni_bin_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Command {
            command: rendered.clone(),
            message: e.to_string(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(conf.to_string().as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| Error::Command {
        command: rendered.clone(),
        message: e.to_string(),
    })?;
    checked(rendered, out)
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|e| Error::io(path, e))
}

/// Creates a sandbox for pod `id` in `dir` that uses the node's network (`host_ip` is then the
/// pod's address): no netns or CNI; the pause process holds what else the pod has of its own.
pub fn create_on_host_network(
    id: &str,
    host_ip: &str,
    dir: &Path,
    pause: &[String],
    sharing: Sharing,
) -> Result<Sandbox> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let pause_pid = start_pause(pause, None, None, dir, sharing)?;
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let hosts = format!("# Kubernetes-managed hosts file (host network).\n{hosts}");
    write_etc_files(dir, &hostname, &hosts)?;
    let sandbox = Sandbox {
        id: id.to_string(),
        dir: dir.to_path_buf(),
        netns: String::new(),
        ip: host_ip.to_string(),
        pause_pid,
        hostname,
        sharing: Sharing {
            host_network: true,
            ..sharing
        },
    };
    write(&dir.join("sandbox.json"), &serde_json::to_string(&sandbox)?)?;
    Ok(sandbox)
}

/// The `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` every container of the pod mounts
/// (the node's resolver: there is no cluster DNS).
fn write_etc_files(dir: &Path, hostname: &str, hosts: &str) -> Result<()> {
    write(&dir.join("hostname"), &format!("{hostname}\n"))?;
    write(&dir.join("hosts"), hosts)?;
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write(&dir.join("resolv.conf"), &resolv)
}

/// The tiny static pause program podman uses, when installed.
fn catatonit() -> Option<&'static Path> {
    ["/usr/bin/catatonit", "/usr/libexec/podman/catatonit"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
}

/// Starts the pod's pause process; its pid. With catatonit installed it is started directly in
/// the pod's namespaces; otherwise `pause` (which must accept `--pidfile FILE` and optionally
/// `--hostname H`, `--netns PATH`, `--share-pid`, and fork itself into the background) is run.
fn start_pause(
    pause: &[String],
    hostname: Option<&str>,
    netns: Option<&Path>,
    dir: &Path,
    sharing: Sharing,
) -> Result<i32> {
    let share_pid = sharing.shared_pid && !sharing.host_pid;
    if let Some(program) = catatonit() {
        return spawn_in_namespaces(program, hostname, netns, share_pid);
    }
    let pidfile = dir.join("pause.pid");
    let _ = std::fs::remove_file(&pidfile);
    let (program, args) = pause.split_first().ok_or_else(|| Error::Command {
        command: "pause".into(),
        message: "no pause command".into(),
    })?;
    let mut cmd = Command::new(program);
    cmd.args(args).arg("--pidfile").arg(&pidfile);
    if let Some(h) = hostname {
        cmd.arg("--hostname").arg(h);
    }
    if let Some(n) = netns {
        cmd.arg("--netns").arg(n);
    }
    if share_pid {
        cmd.arg("--share-pid");
    }
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| Error::Command {
            command: program.clone(),
            message: e.to_string(),
        })?;
    if !status.success() {
        return Err(Error::Command {
            command: format!("{program} pause"),
            message: format!("exited with {status}"),
        });
    }
    std::fs::read_to_string(&pidfile)
        .map_err(|e| Error::io(&pidfile, e))?
        .trim()
        .parse()
        .map_err(|_| Error::Command {
            command: "pause".into(),
            message: "bad pid file".into(),
        })
}

/// Runs `program -P` (catatonit's pause mode) in the pod's namespaces, detached from this
/// process: the child joins `netns`, takes new IPC and UTS namespaces (and a PID namespace with
/// `share_pid`), sets `hostname`, and forks; the grandchild, whose pid this returns, becomes the
/// pause process, and the child exits at once, so no zombie is left for this process to reap.
fn spawn_in_namespaces(
    program: &Path,
    hostname: Option<&str>,
    netns: Option<&Path>,
    share_pid: bool,
) -> Result<i32> {
    use nix::sched::{setns, unshare, CloneFlags};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let failed = |message: String| Error::Command {
        command: format!("{} -P", program.display()),
        message,
    };
    let netns = netns
        .map(|p| std::fs::File::open(p).map_err(|e| Error::io(p, e)))
        .transpose()?;
    let hostname = hostname.map(str::to_owned);
    let mut flags = CloneFlags::CLONE_NEWIPC;
    if hostname.is_some() {
        flags |= CloneFlags::CLONE_NEWUTS;
    }
    if share_pid {
        flags |= CloneFlags::CLONE_NEWPID;
    }
    let (pid_read, pid_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| failed(format!("pipe: {e}")))?;
    let write_fd = pid_write.as_raw_fd();
    let mut cmd = Command::new(program);
    cmd.arg("-P")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec the closure makes only system calls (setns, unshare,
    // sethostname, fork, write, setsid, _exit) on data prepared before the fork; it allocates
    // nothing and takes no locks.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(ns) = &netns {
                setns(ns, CloneFlags::CLONE_NEWNET)?;
            }
            unshare(flags)?;
            if let Some(name) = &hostname {
                nix::unistd::sethostname(name)?;
            }
            match nix::unistd::fork()? {
                nix::unistd::ForkResult::Parent { child } => {
                    let pid = child.as_raw().to_ne_bytes();
                    let written = nix::libc::write(write_fd, pid.as_ptr().cast(), pid.len());
                    nix::libc::_exit(if written == pid.len() as isize { 0 } else { 1 });
                }
                nix::unistd::ForkResult::Child => {
                    nix::unistd::setsid()?;
                    Ok(())
                }
            }
        });
    }
    let mut child = cmd.spawn().map_err(|e| failed(e.to_string()))?;
    drop(cmd);
    drop(pid_write);
    let status = child.wait().map_err(|e| failed(e.to_string()))?;
    let mut pid = [0u8; 4];
    let read = std::io::Read::read_exact(&mut std::fs::File::from(pid_read), &mut pid);
    match (status.success(), read) {
        (true, Ok(())) => Ok(i32::from_ne_bytes(pid)),
        (_, read) => Err(failed(format!(
            "the pause process did not start ({status}{})",
            read.err().map(|e| format!(", {e}")).unwrap_or_default()
        ))),
    }
}

/// Creates a sandbox for pod `id` in `dir`: netns, CNI, pause process, /etc files.
/// `pause` is the command that becomes the pause process (see [`start_pause`]).
pub fn create(
    cfg: &NetworkConfig,
    id: &str,
    hostname: &str,
    dir: &Path,
    pause: &[String],
    sharing: Sharing,
) -> Result<Sandbox> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    std::fs::create_dir_all(&cfg.ipam_dir).map_err(|e| Error::io(&cfg.ipam_dir, e))?;
    let netns = format!("kl-{}", &id[..id.len().min(20)]);
    let netns_path = Path::new(NETNS_DIR).join(&netns);
    if !netns_path.exists() {
        add_netns(&netns_path)?;
    }
    let result = (|| -> Result<Sandbox> {
        let added = cni(
            cfg,
            "ADD",
            "bridge",
            &bridge_conf(cfg),
            id,
            &netns_path,
            "eth0",
        )?;
        let parsed: serde_json::Value = serde_json::from_str(&added)?;
        let ip = parsed["ips"][0]["address"]
            .as_str()
            .and_then(|a| a.split('/').next())
            .ok_or_else(|| Error::Command {
                command: "CNI ADD bridge".into(),
                message: format!("no IP in the result: {added}"),
            })?
            .to_string();
        forget_neighbour(&cfg.bridge, &ip);
        let pause_pid = start_pause(pause, Some(hostname), Some(&netns_path), dir, sharing)?;
        let hosts = format!("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{hostname}\n");
        write_etc_files(dir, hostname, &hosts)?;
        let sandbox = Sandbox {
            id: id.to_string(),
            dir: dir.to_path_buf(),
            netns: netns.clone(),
            ip,
            pause_pid,
            hostname: hostname.to_string(),
            sharing,
        };
        write(&dir.join("sandbox.json"), &serde_json::to_string(&sandbox)?)?;
        Ok(sandbox)
    })();
    if result.is_err() {
        let _ = teardown_network(cfg, id, &netns);
    }
    result
}

/// Makes the node forget the MAC it last saw at `ip` on `bridge`. A pod that gets the address of
/// one that just went away has a new MAC; until a stale entry expired, the node would send the
/// new pod's traffic to the old MAC and the pod would be unreachable for seconds.
fn forget_neighbour(bridge: &str, ip: &str) {
    // Looking costs a file read; `ip` is a process of its own, run only when there is an entry.
    let arp = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
    let known = arp.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.first() == Some(&ip) && fields.last() == Some(&bridge)
    });
    if !known {
        return;
    }
    let out = Command::new("ip")
        .args(["neigh", "del", ip, "dev", bridge])
        .stdin(Stdio::null())
        .output();
    if let Ok(out) = out {
        if out.status.success() {
            tracing::debug!(%ip, %bridge, "forgot a stale neighbour entry");
        }
    }
}

fn teardown_network(cfg: &NetworkConfig, id: &str, netns: &str) -> Result<()> {
    let path = Path::new(NETNS_DIR).join(netns);
    let bridge = cni(cfg, "DEL", "bridge", &bridge_conf(cfg), id, &path, "eth0");
    if path.exists() {
        delete_netns(&path)?;
    }
    bridge.map(|_| ())
}

/// Where network namespaces are pinned, as `ip netns` keeps them.
const NETNS_DIR: &str = "/run/netns";

/// Makes a network namespace pinned at `path` (what `ip netns add` does, without a process of
/// its own per pod) with its loopback interface up (what the CNI loopback plugin would do).
fn add_netns(path: &Path) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    let dir = Path::new(NETNS_DIR);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // As `ip` does: the directory is a shared mount, so that other mount namespaces see pins.
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    if mount(None::<&str>, dir, None::<&str>, shared, None::<&str>).is_err() {
        let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
        mount(Some(dir), dir, None::<&str>, bind, None::<&str>)
            .and_then(|_| mount(None::<&str>, dir, None::<&str>, shared, None::<&str>))
            .map_err(|e| Error::io(dir, e.into()))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let target = path.to_path_buf();
    // A thread of its own enters the new namespace, so no other thread's namespace changes.
    let pinned = std::thread::Builder::new()
        .name("netns-add".into())
        .spawn(move || -> std::io::Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
            let own = "/proc/thread-self/ns/net";
            mount(
                Some(own),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            loopback_up()
        })
        .map_err(|e| Error::io(path, e))?
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")));
    if let Err(e) = pinned {
        let _ = delete_netns(path);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Sets `lo` up in the calling thread's network namespace.
fn loopback_up() -> std::io::Result<()> {
    use nix::libc;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: a plain socket call; its result is checked and owned below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a socket this function just opened and nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `req`, which lives across both calls.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Unpins and removes the network namespace at `path` (what `ip netns delete` does).
fn delete_netns(path: &Path) -> Result<()> {
    use nix::mount::{umount2, MntFlags};
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(Error::io(path, e.into())),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// Stops the pause process, releases the IP and removes the netns and the sandbox record.
pub fn destroy(cfg: &NetworkConfig, sandbox: &Sandbox) -> Result<()> {
    if sandbox.pause_is_ours() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sandbox.pause_pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    if !sandbox.sharing.host_network {
        teardown_network(cfg, &sandbox.id, &sandbox.netns)?;
    }
    let _ = std::fs::remove_dir_all(&sandbox.dir);
    Ok(())
}

/// Removes the bridge once no pod uses it (CNI DEL never does).
pub fn remove_bridge(cfg: &NetworkConfig) -> Result<()> {
    if Path::new("/sys/class/net").join(&cfg.bridge).exists() {
        run(Command::new("ip").args(["link", "delete", &cfg.bridge]))?;
    }
    Ok(())
}

/// The pause process: joins the pod's netns (when it has one), takes new IPC and UTS namespaces
/// (UTS only with a hostname of the pod's own; with `share_pid` a PID namespace, of which its
/// child is then process 1), sets the pod's hostname, forks into the background (writing its pid
/// to `pidfile`) and then sleeps forever, reaping whatever is re-parented to it. Call it before
/// any threads are started.
pub fn pause_main(
    hostname: Option<&str>,
    netns: Option<&Path>,
    pidfile: &Path,
    share_pid: bool,
) -> std::result::Result<(), String> {
    use nix::sched::{setns, unshare, CloneFlags};
    use nix::unistd::{fork, setsid, ForkResult};
    if let Some(netns) = netns {
        let ns = std::fs::File::open(netns).map_err(|e| format!("{}: {e}", netns.display()))?;
        setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
    }
    let mut flags = CloneFlags::CLONE_NEWIPC;
    if hostname.is_some() {
        flags |= CloneFlags::CLONE_NEWUTS;
    }
    if share_pid {
        flags |= CloneFlags::CLONE_NEWPID;
    }
    unshare(flags).map_err(|e| format!("unshare: {e}"))?;
    if let Some(hostname) = hostname {
        nix::unistd::sethostname(hostname).map_err(|e| format!("sethostname: {e}"))?;
    }
    // SAFETY-free: fork in a process that has not started threads.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Parent { child } => {
            std::fs::write(pidfile, child.as_raw().to_string())
                .map_err(|e| format!("{}: {e}", pidfile.display()))?;
            Ok(())
        }
        ForkResult::Child => {
            let _ = setsid();
            let _ = std::env::set_current_dir("/");
            // Hold the namespaces with as little memory as possible: a tiny static pause program
            // (catatonit, the one podman uses) when present, this process otherwise.
            for pause in ["/usr/bin/catatonit", "/usr/libexec/podman/catatonit"] {
                if Path::new(pause).exists() {
                    use std::os::unix::process::CommandExt;
                    let err = std::process::Command::new(pause).arg("-P").exec();
                    eprintln!("exec {pause}: {err}");
                }
            }
            loop {
                nix::unistd::pause();
                while let Ok(status) =
                    nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
                {
                    if status == nix::sys::wait::WaitStatus::StillAlive {
                        break;
                    }
                }
            }
        }
    }
}

/// Runs `work` on a thread of its own that enters the network namespace at `netns`, so no other
/// thread's namespace ever changes. Sockets it makes stay in that namespace.
pub fn in_netns<T: Send + 'static>(
    netns: &Path,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let netns = netns.to_path_buf();
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            let ns = std::fs::File::open(&netns)?;
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            work()
        })?
        .join()
        .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
}

/// Connects to `port` on the loopback address inside the network namespace at `netns` (what
/// `kubectl port-forward` reaches), trying IPv4, then IPv6.
pub fn connect_in_netns(netns: &Path, port: u16) -> std::io::Result<std::net::TcpStream> {
    in_netns(netns, move || {
        let timeout = std::time::Duration::from_secs(5);
        let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        std::net::TcpStream::connect_timeout(&v4, timeout).or_else(|e4| {
            std::net::TcpStream::connect_timeout(&v6, timeout).map_err(|e6| {
                std::io::Error::new(
                    e4.kind(),
                    format!(
                        "IPv4: dial tcp4 {v4}: connect: {} IPv6 dial tcp6 {v6}: connect: {}",
                        os_text(&e4),
                        os_text(&e6)
                    ),
                )
            })
        })
    })
}

/// An I/O error's text as Go prints it ("connection refused"), without Rust's "(os error N)".
pub fn os_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pause_pid: i32, host_network: bool) -> Sandbox {
        Sandbox {
            id: "test".into(),
            dir: PathBuf::from("/nonexistent"),
            netns: "kl-no-such-namespace".into(),
            ip: "10.0.0.2".into(),
            pause_pid,
            hostname: "test".into(),
            sharing: Sharing {
                host_network,
                ..Sharing::default()
            },
        }
    }

    #[test]
    fn a_pid_that_is_not_the_pause_process_is_not_trusted() {
        // This test process: alive, but in no pod's namespace and no pause program.
        let me = std::process::id() as i32;
        assert!(!record(me, false).pause_is_ours());
        assert!(!record(me, true).pause_is_ours());
        assert!(!record(me, false).alive());
    }
}
