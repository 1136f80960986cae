//! OCI bundles: the container's root filesystem (an overlay of the image's unpacked layers with a
//! private upper dir) and its `config.json`, written from the pod's and the image's settings and
//! checked against the OCI runtime-spec types (oci-spec) before the runtime sees it.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::sandbox::Sandbox;
use crate::{Error, Result};

/// The capabilities containers get by default (the container-runtime default set).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Kubernetes' rule for what a container runs: `command` replaces the image's entrypoint (and then
/// the image's cmd is dropped), `args` replace the image's cmd.
pub fn merge_command(
    entrypoint: &[String],
    cmd: &[String],
    command: Option<&[String]>,
    args: Option<&[String]>,
) -> Vec<String> {
    match (command, args) {
        (Some(c), Some(a)) => c.iter().chain(a).cloned().collect(),
        (Some(c), None) => c.to_vec(),
        (None, Some(a)) => entrypoint.iter().chain(a).cloned().collect(),
        (None, None) => entrypoint.iter().chain(cmd).cloned().collect(),
    }
}

/// The image's environment with the container's variables applied on top (same name wins).
pub fn merge_env(image: &[String], container: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = image
        .iter()
        .filter(|kv| {
            let name = kv.split('=').next().unwrap_or("");
            !container.iter().any(|(n, _)| n == name)
        })
        .cloned()
        .collect();
    out.extend(container.iter().map(|(n, v)| format!("{n}={v}")));
    out
}

/// Resource limits as the kernel enforces them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
}

impl Limits {
    /// From Kubernetes quantities in milli-CPU and bytes: requests give CPU shares, limits give
    /// the CFS quota (period 100 ms) and the memory limit.
    pub fn from_resources(
        cpu_request_milli: Option<i64>,
        cpu_limit_milli: Option<i64>,
        memory_limit: Option<i64>,
    ) -> Limits {
        Limits {
            memory_bytes: memory_limit,
            cpu_shares: Some(
                cpu_request_milli
                    .map(|m| (m * 1024 / 1000).max(2) as u64)
                    .unwrap_or(2),
            ),
            cpu_quota: cpu_limit_milli.map(|m| (m * 100_000 / 1000).max(1000)),
        }
    }
}

/// The seccomp filter a container runs under.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Seccomp {
    #[default]
    Unconfined,
    /// This runtime's default: the system calls that reach past a container (modules, kernel
    /// keyring, reboot, clock, tracing other processes, new namespaces, mounts …) fail with EPERM.
    RuntimeDefault,
}

/// The system calls [`Seccomp::RuntimeDefault`] refuses.
const REFUSED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
];

/// Who the container's process is and what it may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Security {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Capability names (`CAP_NET_ADMIN`); `None` for [`DEFAULT_CAPABILITIES`].
    pub capabilities: Option<Vec<String>>,
    pub no_new_privileges: bool,
    pub readonly_rootfs: bool,
    /// Every capability, the host's devices, no masked paths, writable /sys.
    pub privileged: bool,
    pub seccomp: Seccomp,
    /// Namespaced sysctls (`net.ipv4.ip_local_port_range`), set in the pod's namespaces.
    pub sysctls: std::collections::BTreeMap<String, String>,
}

/// Every capability a container can be given.
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYSLOG",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_WAKE_ALARM",
];

/// What goes into one container's `config.json`.
pub struct BundleSpec<'a> {
    pub rootfs: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub security: Security,
    pub sandbox: &'a Sandbox,
    pub cgroups_path: String,
    pub limits: Limits,
    /// Bind mounts: (container path, host path, read-only).
    pub mounts: Vec<(String, PathBuf, bool)>,
}

/// The namespaces a container of `sandbox` joins or makes; one it does not list is the node's.
fn namespaces(sandbox: &Sandbox) -> Vec<serde_json::Value> {
    let sharing = sandbox.sharing;
    let mut list = vec![json!({"type": "mount"})];
    match (sharing.host_pid, sharing.shared_pid) {
        (true, _) => {}
        (false, true) => list.push(json!({"type": "pid", "path": sandbox.pid_path()})),
        (false, false) => list.push(json!({"type": "pid"})),
    }
    if !sharing.host_network {
        list.push(json!({"type": "network", "path": sandbox.netns_path()}));
        list.push(json!({"type": "uts", "path": sandbox.uts_path()}));
    }
    if !sharing.host_ipc {
        list.push(json!({"type": "ipc", "path": sandbox.ipc_path()}));
    }
    list
}

/// Writes `<bundle>/config.json`.
pub fn write_config(bundle: &Path, spec: &BundleSpec) -> Result<()> {
    let sec = &spec.security;
    let caps: Vec<String> = match (&sec.capabilities, sec.privileged) {
        (_, true) => ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        (Some(caps), false) => caps.clone(),
        (None, false) => DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
    };
    let dev = if sec.privileged {
        json!({"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind", "rslave", "nosuid"]})
    } else {
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]})
    };
    let sys_access = if sec.privileged { "rw" } else { "ro" };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        dev,
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", sys_access]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", sys_access]}),
    ];
    let sandbox_files = [
        ("/etc/hosts", spec.sandbox.dir.join("hosts")),
        ("/etc/hostname", spec.sandbox.dir.join("hostname")),
        ("/etc/resolv.conf", spec.sandbox.dir.join("resolv.conf")),
    ];
    for (dest, src) in sandbox_files
        .iter()
        .map(|(d, s)| (d.to_string(), s.clone()))
        .chain(spec.mounts.iter().map(|(d, s, _)| (d.clone(), s.clone())))
    {
        let ro = spec.mounts.iter().any(|(d, _, ro)| *d == dest && *ro);
        let mut options = vec!["rbind", "rprivate"];
        if ro {
            options.push("ro");
        }
        mounts
            .push(json!({"destination": dest, "type": "bind", "source": src, "options": options}));
    }
    let mut memory = serde_json::Map::new();
    if let Some(m) = spec.limits.memory_bytes {
        memory.insert("limit".into(), json!(m));
        memory.insert("swap".into(), json!(m));
    }
    let mut cpu = serde_json::Map::new();
    if let Some(s) = spec.limits.cpu_shares {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(q) = spec.limits.cpu_quota {
        cpu.insert("quota".into(), json!(q));
        cpu.insert("period".into(), json!(100_000));
    }
    let config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": sec.uid, "gid": sec.gid, "additionalGids": sec.additional_gids},
            "args": spec.args,
            "env": spec.env,
            "cwd": if spec.cwd.is_empty() { "/" } else { spec.cwd.as_str() },
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            // This machine's hard limit; asking for more fails in the runtime.
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 20000u64, "soft": 20000u64}],
            "noNewPrivileges": sec.no_new_privileges,
        },
        "root": {"path": spec.rootfs, "readonly": sec.readonly_rootfs},
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces(spec.sandbox),
            "cgroupsPath": spec.cgroups_path,
            "resources": {
                "devices": [{"allow": sec.privileged, "access": "rwm"}],
                "memory": memory,
                "cpu": cpu,
            },
            "sysctl": sec.sysctls,
        },
    });
    let mut config = config;
    if !sec.privileged {
        config["linux"]["maskedPaths"] = json!([
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi"
        ]);
        config["linux"]["readonlyPaths"] = json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]);
    }
    if sec.seccomp == Seccomp::RuntimeDefault && !sec.privileged {
        config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": REFUSED_SYSCALLS, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
        });
    }
    // The OCI types are the schema: refuse to hand the runtime anything they do not accept.
    let config = config;
    let _checked: oci_spec::runtime::Spec = serde_json::from_value(config.clone())?;
    let path = bundle.join("config.json");
    std::fs::create_dir_all(bundle).map_err(|e| Error::io(bundle, e))?;
    std::fs::write(&path, serde_json::to_vec_pretty(&config)?).map_err(|e| Error::io(&path, e))
}

/// The numeric user an image's `USER` (`1000`, `1000:50`, `nobody`, `app:staff`) names, read
/// from the root filesystem's `/etc/passwd` and `/etc/group` where it is a name: the uid, and
/// the gid when the spec or the user's passwd entry gives one.
pub fn resolve_user(rootfs: &Path, user: &str) -> std::result::Result<(u32, Option<u32>), String> {
    let (who, group) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let entry = |matches: &dyn Fn(&[&str]) -> bool| {
        passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 4 && matches(f))
    };
    let (uid, primary) = match who.parse::<u32>() {
        Ok(uid) => {
            let gid = entry(&|f| f[2] == who).and_then(|f| f[3].parse().ok());
            (uid, gid)
        }
        Err(_) => {
            let f = entry(&|f| f[0] == who).ok_or_else(|| {
                format!("unable to find user {who}: no matching entries in passwd file")
            })?;
            (
                f[2].parse().map_err(|_| format!("bad uid for {who}"))?,
                f[3].parse().ok(),
            )
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => Some(match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => std::fs::read_to_string(rootfs.join("etc/group"))
                .unwrap_or_default()
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        }),
    };
    Ok((uid, gid))
}

/// Mounts an overlay of `layers` (lowest first) with a private upper dir at `<dir>/rootfs`.
pub fn mount_rootfs(layers: &[PathBuf], dir: &Path) -> Result<PathBuf> {
    let (upper, work, rootfs) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
    for d in [&upper, &work, &rootfs] {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    if is_mountpoint(&rootfs) {
        return Ok(rootfs);
    }
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| Error::Command {
        command: format!("mount -t overlay -o {options}"),
        message: e.to_string(),
    })?;
    Ok(rootfs)
}

fn is_mountpoint(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = path.display().to_string();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(target.as_str()))
}

/// Unmounts a container's root filesystem and removes its directories.
pub fn remove_rootfs(dir: &Path) -> Result<()> {
    let rootfs = dir.join("rootfs");
    if is_mountpoint(&rootfs) {
        nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH).map_err(|e| {
            Error::Command {
                command: format!("umount {}", rootfs.display()),
                message: e.to_string(),
            }
        })?;
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_and_args_follow_kubernetes_rules() {
        let (ep, cmd) = (s(&["/kuard"]), s(&["--debug"]));
        assert_eq!(
            merge_command(&ep, &cmd, None, None),
            s(&["/kuard", "--debug"])
        );
        assert_eq!(
            merge_command(&ep, &cmd, None, Some(&s(&["--address", ":8081"]))),
            s(&["/kuard", "--address", ":8081"])
        );
        assert_eq!(
            merge_command(&ep, &cmd, Some(&s(&["sh"])), None),
            s(&["sh"])
        );
        assert_eq!(
            merge_command(&ep, &cmd, Some(&s(&["sh"])), Some(&s(&["-c", "x"]))),
            s(&["sh", "-c", "x"])
        );
    }

    #[test]
    fn container_env_overrides_the_image() {
        let env = merge_env(
            &s(&["PATH=/bin", "A=1"]),
            &[("A".into(), "2".into()), ("B".into(), "3".into())],
        );
        assert_eq!(env, s(&["PATH=/bin", "A=2", "B=3"]));
    }

    #[test]
    fn limits_from_resources() {
        let l = Limits::from_resources(Some(500), Some(2000), Some(256_000_000));
        assert_eq!(
            l,
            Limits {
                memory_bytes: Some(256_000_000),
                cpu_shares: Some(512),
                cpu_quota: Some(200_000)
            }
        );
        assert_eq!(Limits::from_resources(None, None, None).cpu_shares, Some(2));
    }

    /// A pod sandbox record for bundles written under `dir`.
    fn test_sandbox(dir: &Path) -> Sandbox {
        Sandbox {
            id: "p".into(),
            dir: dir.into(),
            netns: "kl-p".into(),
            ip: "10.42.0.2".into(),
            pause_pid: 1,
            hostname: "p".into(),
            sharing: Default::default(),
        }
    }

    #[test]
    fn image_users_resolve_by_number_or_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_user(dir.path(), "nobody"), Ok((65534, Some(65534))));
        assert_eq!(resolve_user(dir.path(), "1000"), Ok((1000, None)));
        assert_eq!(resolve_user(dir.path(), "0"), Ok((0, Some(0))));
        assert_eq!(
            resolve_user(dir.path(), "nobody:staff"),
            Ok((65534, Some(50)))
        );
        assert_eq!(resolve_user(dir.path(), "1000:7"), Ok((1000, Some(7))));
        assert!(resolve_user(dir.path(), "ghost").is_err());
    }

    #[test]
    fn a_locked_down_config_passes_the_oci_schema() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = test_sandbox(dir.path());
        let spec = BundleSpec {
            rootfs: &dir.path().join("rootfs"),
            args: s(&["/kuard"]),
            env: vec![],
            cwd: "/".into(),
            security: Security {
                uid: 1000,
                gid: 3000,
                additional_gids: vec![2000],
                capabilities: Some(s(&["CAP_NET_BIND_SERVICE"])),
                no_new_privileges: true,
                readonly_rootfs: true,
                seccomp: Seccomp::RuntimeDefault,
                sysctls: [("net.ipv4.ping_group_range".to_string(), "0 0".to_string())].into(),
                ..Default::default()
            },
            sandbox: &sandbox,
            cgroups_path: "/kubelite/pod-p/c".into(),
            limits: Limits::from_resources(None, None, None),
            mounts: vec![],
        };
        write_config(dir.path(), &spec).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(v["process"]["user"]["additionalGids"], json!([2000]));
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            json!(["CAP_NET_BIND_SERVICE"])
        );
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        assert!(v["linux"]["maskedPaths"].is_array());
    }

    #[test]
    fn config_passes_the_oci_schema() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = test_sandbox(dir.path());
        let spec = BundleSpec {
            rootfs: &dir.path().join("rootfs"),
            args: s(&["/kuard"]),
            env: s(&["PATH=/bin"]),
            cwd: "/".into(),
            security: Security::default(),
            sandbox: &sandbox,
            cgroups_path: "/kubelite/pod-p/c".into(),
            limits: Limits::from_resources(None, None, Some(256_000_000)),
            mounts: vec![],
        };
        write_config(dir.path(), &spec).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 256_000_000);
        assert_eq!(v["linux"]["namespaces"][2]["path"], "/run/netns/kl-p");
        let host = Sandbox {
            sharing: crate::sandbox::Sharing {
                host_network: true,
                host_ipc: true,
                shared_pid: true,
                ..Default::default()
            },
            ..sandbox.clone()
        };
        let types: Vec<String> = namespaces(&host)
            .iter()
            .map(|n| n["type"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(types, ["mount", "pid"], "the node's network, UTS and IPC");
        assert_eq!(namespaces(&host)[1]["path"], "/proc/1/ns/pid");
    }
}
