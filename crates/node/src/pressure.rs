//! The node's MemoryPressure, DiskPressure and PIDPressure conditions, computed from the host
//! against the kubelet's default hard eviction thresholds (`memory.available<100Mi`,
//! `nodefs.available<10%`, `nodefs.inodesFree<5%`) and reported with the kubelet's reasons.

use std::path::Path;

use serde_json::{json, Value};

/// Memory that must stay available (`memory.available<100Mi`).
const MEMORY_THRESHOLD: u64 = 100 << 20;
/// The share of the node's disk and inodes that must stay free.
const DISK_PERCENT: u64 = 10;
const INODES_PERCENT: u64 = 5;

/// What the host has left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signals {
    pub memory_available: u64,
    pub disk_available: u64,
    pub disk_capacity: u64,
    pub inodes_free: u64,
    pub inodes: u64,
}

impl Signals {
    /// The host's figures now: `MemAvailable`, and the filesystem holding `state_dir`.
    pub fn read(state_dir: &Path) -> Signals {
        let memory_available = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemAvailable:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .map_or(u64::MAX, |kib| kib * 1024);
        let fs = nix::sys::statvfs::statvfs(state_dir).ok();
        Signals {
            memory_available,
            disk_available: fs.map_or(0, |s| s.blocks_available() * s.fragment_size()),
            disk_capacity: fs.map_or(0, |s| s.blocks() * s.fragment_size()),
            inodes_free: fs.map_or(0, |s| s.files_available()),
            inodes: fs.map_or(0, |s| s.files()),
        }
    }
}

/// Which pressures the node is under.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    /// The kubelet has no default PID threshold: only a configured one would set it.
    pub pid: bool,
}

pub fn pressure(s: &Signals) -> Pressure {
    let below = |free: u64, total: u64, percent: u64| total > 0 && free * 100 < total * percent;
    Pressure {
        memory: s.memory_available < MEMORY_THRESHOLD,
        disk: below(s.disk_available, s.disk_capacity, DISK_PERCENT)
            || below(s.inodes_free, s.inodes, INODES_PERCENT),
        pid: false,
    }
}

/// The three conditions as the kubelet words them, stamped `now`.
pub fn conditions(p: Pressure, now: &Value) -> Vec<Value> {
    let condition = |type_: &str, on: bool, yes: (&str, &str), no: (&str, &str)| {
        let (reason, message) = if on { yes } else { no };
        json!({
            "type": type_,
            "status": if on { "True" } else { "False" },
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        })
    };
    vec![
        condition(
            "MemoryPressure",
            p.memory,
            (
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            ),
            (
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
        ),
        condition(
            "DiskPressure",
            p.disk,
            ("KubeletHasDiskPressure", "kubelet has disk pressure"),
            ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ),
        condition(
            "PIDPressure",
            p.pid,
            (
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
            ),
            (
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_the_kubelets_defaults() {
        let plenty = Signals {
            memory_available: 8 << 30,
            disk_available: 50,
            disk_capacity: 100,
            inodes_free: 50,
            inodes: 100,
        };
        assert_eq!(pressure(&plenty), Pressure::default());
        let low_memory = Signals {
            memory_available: 99 << 20,
            ..plenty
        };
        assert!(pressure(&low_memory).memory);
        let full_disk = Signals {
            disk_available: 9,
            ..plenty
        };
        assert!(pressure(&full_disk).disk);
        let no_inodes = Signals {
            inodes_free: 4,
            ..plenty
        };
        assert!(pressure(&no_inodes).disk);
        let now = json!("2026-12-01T00:00:00Z");
        let c = conditions(pressure(&low_memory), &now);
        assert_eq!(c[0]["status"], "True");
        assert_eq!(c[0]["reason"], "KubeletHasInsufficientMemory");
        assert_eq!(c[1]["reason"], "KubeletHasNoDiskPressure");
        assert_eq!(c[2]["status"], "False");
    }
}
