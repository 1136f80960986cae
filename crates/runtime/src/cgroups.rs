//! cgroups: which hierarchy the machine has, the one fix crun needs on hybrid machines, and the
//! per-pod parent cgroups the agent owns (containers get theirs from the OCI runtime).
//!
//! On a "hybrid" machine every controller is mounted as cgroup v1 but a cgroup2 hierarchy at
//! `/sys/fs/cgroup/unified` still holds a controller (usually hugetlb). crun then refuses to run
//! ("cgroups in hybrid mode not supported"). Mounting that controller as a v1 hierarchy moves it
//! off cgroup2 and crun works; [`prepare`] does that and says so.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

const ROOT: &str = "/sys/fs/cgroup";

/// The cgroup layout of this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Pure cgroup v2 at /sys/fs/cgroup.
    V2,
    /// Every controller on v1; `unified_controllers` are still on the cgroup2 hierarchy.
    V1 { unified_controllers: Vec<String> },
}

fn fs_type(path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|l| {
        let mut halves = l.split(" - ");
        let left: Vec<&str> = halves.next()?.split_whitespace().collect();
        let right: Vec<&str> = halves.next()?.split_whitespace().collect();
        (left.get(4).map(Path::new) == Some(path)).then(|| right.first().map(|s| s.to_string()))?
    })
}

/// Reads the layout from the mount table.
pub fn detect() -> Layout {
    if fs_type(Path::new(ROOT)).as_deref() == Some("cgroup2") {
        return Layout::V2;
    }
    let unified = Path::new(ROOT).join("unified");
    let unified_controllers = std::fs::read_to_string(unified.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    Layout::V1 {
        unified_controllers,
    }
}

/// Makes the machine usable by crun: on a hybrid v1 machine, every controller still on cgroup2 is
/// mounted as its own v1 hierarchy. Returns what it changed, to be logged.
pub fn prepare() -> Result<Vec<String>> {
    let mut changed = Vec::new();
    if let Layout::V1 {
        unified_controllers,
    } = detect()
    {
        for controller in unified_controllers {
            let target = Path::new(ROOT).join(&controller);
            std::fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
            let mounted = nix::mount::mount(
                Some("cgroup"),
                &target,
                Some("cgroup"),
                nix::mount::MsFlags::empty(),
                Some(controller.as_str()),
            );
            if let Err(e) = mounted {
                // Another agent on this machine may have moved it first.
                let still_there = matches!(detect(), Layout::V1 { unified_controllers } if unified_controllers.contains(&controller));
                if still_there {
                    return Err(Error::Command {
                        command: format!(
                            "mount -t cgroup -o {controller} cgroup {}",
                            target.display()
                        ),
                        message: e.to_string(),
                    });
                }
                continue;
            }
            changed.push(format!(
                "moved the {controller} controller from cgroup2 to a v1 hierarchy at {} (crun refuses hybrid cgroups)",
                target.display()
            ));
        }
    }
    Ok(changed)
}

/// The v1 controller directories a cgroup path lives under (or the v2 directory).
pub fn directories(relative: &str) -> Vec<PathBuf> {
    let rel = relative.trim_start_matches('/');
    match detect() {
        Layout::V2 => vec![Path::new(ROOT).join(rel)],
        Layout::V1 { .. } => std::fs::read_dir(ROOT)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name() != "unified")
            .map(|e| e.path().join(rel))
            .collect(),
    }
}

/// Puts process `pid` into the cgroup at `relative` in every hierarchy (the pod's cgroup, for its
/// pause process, so that the pod's cgroup accounts for everything the pod runs). A new v1
/// cpuset cgroup gets its parent's CPUs and memory nodes first, as the kernel requires.
pub fn enter(relative: &str, pid: i32) -> Result<()> {
    for dir in directories(relative) {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        if dir.starts_with(Path::new(ROOT).join("cpuset")) {
            inherit_cpuset(&dir)?;
        }
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).map_err(|e| Error::io(&procs, e))?;
    }
    Ok(())
}

/// Fills an empty `cpuset.cpus`/`cpuset.mems` from the nearest ancestor that has them.
fn inherit_cpuset(dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        let empty = std::fs::read_to_string(&own).map_or(true, |v| v.trim().is_empty());
        if !empty {
            continue;
        }
        let inherited = dir
            .ancestors()
            .skip(1)
            .take_while(|a| a.starts_with(ROOT))
            .find_map(|a| {
                std::fs::read_to_string(a.join(file))
                    .ok()
                    .filter(|v| !v.trim().is_empty())
            });
        if let Some(value) = inherited {
            // Parents first: a child's set must be within its parent's.
            let chain: Vec<&Path> = dir
                .ancestors()
                .take_while(|a| a.starts_with(ROOT))
                .collect();
            for d in chain.into_iter().rev() {
                let f = d.join(file);
                let unset = std::fs::read_to_string(&f).is_ok_and(|v| v.trim().is_empty());
                if unset {
                    std::fs::write(&f, value.trim()).map_err(|e| Error::io(&f, e))?;
                }
            }
        }
    }
    Ok(())
}

/// How many processes the kernel's OOM killer has killed in the cgroup at `relative` (or below
/// it): `oom_kill` in `memory.oom_control` (v1) or `memory.events` (v2). None when the cgroup or
/// the counter is missing (older kernels have no counter).
pub fn oom_kills(relative: &str) -> Option<u64> {
    let rel = relative.trim_start_matches('/');
    let file = match detect() {
        Layout::V2 => Path::new(ROOT).join(rel).join("memory.events"),
        Layout::V1 { .. } => Path::new(ROOT)
            .join("memory")
            .join(rel)
            .join("memory.oom_control"),
    };
    parse_oom_kills(&std::fs::read_to_string(file).ok()?)
}

fn parse_oom_kills(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// Removes a (pod) cgroup and everything below it, deepest first. The runtime removes container
/// cgroups; the parent it created for them is ours to remove.
pub fn remove(relative: &str) -> Result<()> {
    for dir in directories(relative) {
        remove_tree(&dir)?;
    }
    Ok(())
}

fn remove_tree(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
    {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    // A process just killed may still be leaving the group (EBUSY): give it a moment.
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) && tries < 40 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(Error::io(dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_counters_parse_in_both_versions() {
        assert_eq!(
            parse_oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            Some(2)
        );
        assert_eq!(
            parse_oom_kills("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
            Some(1)
        );
        assert_eq!(parse_oom_kills("oom_kill_disable 0\nunder_oom 0\n"), None);
    }

    #[test]
    fn detects_a_layout() {
        match detect() {
            Layout::V2 => assert!(Path::new("/sys/fs/cgroup/cgroup.controllers").exists()),
            Layout::V1 { .. } => assert!(Path::new("/sys/fs/cgroup/memory").exists()),
        }
    }
}
