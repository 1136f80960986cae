//! What this machine is, read from the kernel: CPUs, memory, disk, kernel and OS, identity and
//! its primary address. Nothing here is hard-coded.

use std::net::IpAddr;

#[derive(Clone, Debug)]
pub struct Host {
    pub hostname: String,
    pub cpus: usize,
    pub memory_kib: u64,
    pub ephemeral_storage_kib: u64,
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
    pub arch: &'static str,
    pub runtime_version: String,
    pub internal_ip: Option<String>,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `MemTotal` from /proc/meminfo, in KiB.
fn memory_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn os_image() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

fn disk_kib(path: &str) -> u64 {
    nix::sys::statvfs::statvfs(path)
        .map(|s| s.blocks() * s.fragment_size() / 1024)
        .unwrap_or(0)
}

/// The first IPv4 address of an interface that is up, not loopback, and not one of ours.
fn internal_ip() -> Option<String> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for a in addrs {
        let ours = a.interface_name.starts_with("kl")
            || a.interface_name.starts_with("cni")
            || a.interface_name.starts_with("veth");
        if ours
            || !a.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP)
            || a.flags
                .contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK)
        {
            continue;
        }
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            return Some(IpAddr::V4(sin.ip()).to_string());
        }
    }
    None
}

/// `crun://1.8.1` from `crun --version`, as the node's container runtime version.
fn runtime_version() -> String {
    std::process::Command::new("crun")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.strip_prefix("crun version "))
                .map(|v| format!("crun://{}", v.trim()))
        })
        .unwrap_or_else(|| "unknown://0.0.0".into())
}

impl Host {
    pub fn read() -> Host {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        Host {
            hostname,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_kib: memory_kib(),
            ephemeral_storage_kib: disk_kib("/"),
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
            os_image: os_image(),
            machine_id: read_trimmed("/etc/machine-id"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            arch: if cfg!(target_arch = "x86_64") {
                "amd64"
            } else if cfg!(target_arch = "aarch64") {
                "arm64"
            } else {
                std::env::consts::ARCH
            },
            runtime_version: runtime_version(),
            internal_ip: internal_ip(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_real_figures() {
        let h = Host::read();
        assert!(h.cpus >= 1);
        assert!(h.memory_kib > 100 * 1024, "{h:?}");
        assert!(!h.kernel_version.is_empty());
        assert!(h.ephemeral_storage_kib > 0);
    }
}
