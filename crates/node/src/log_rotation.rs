//! Container log rotation, as the kubelet's container log manager does it: now and then, a running
//! container's log file past `max_size` is renamed `<n>.log.<time>` and conmon is told to reopen
//! its log (a fresh `<n>.log`); of the rotated files only the newest `max_files - 1` are kept.
//! `kubectl logs` reads the current file, as it does against a kubelet.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How big a log may grow and how many files of it are kept (`containerLogMaxSize`,
/// `containerLogMaxFiles`), and how often that is looked at (`containerLogMonitorInterval`).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub max_size: u64,
    pub max_files: usize,
    pub interval: Duration,
}

impl Default for Policy {
    /// The kubelet's defaults: 10 Mi, 5 files, every 10 s.
    fn default() -> Self {
        Policy {
            max_size: 10 << 20,
            max_files: 5,
            interval: Duration::from_secs(10),
        }
    }
}

/// Rotates the logs of the containers an agent with `state_dir` runs, forever.
pub async fn run(state_dir: PathBuf, exits_dir: PathBuf, policy: Policy) {
    loop {
        tokio::time::sleep(policy.interval).await;
        let (state, exits) = (state_dir.clone(), exits_dir.clone());
        let pass = tokio::task::spawn_blocking(move || rotate_all(&state, &exits, policy));
        if let Err(err) = pass.await {
            tracing::warn!(%err, "rotating container logs failed");
        }
    }
}

/// One pass over `<state>/logs/<ns>_<pod>_<uid>/<container>/<restart>.log`.
fn rotate_all(state_dir: &Path, exits_dir: &Path, policy: Policy) {
    for pod in children(&crate::linux::logs_dir(state_dir)) {
        let Some(uid) = pod
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit('_').next())
            .map(str::to_string)
        else {
            continue;
        };
        for container in children(&pod) {
            let Some(name) = container.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            for log in children(&container) {
                let Some(restart) = current_log_restart(&log) else {
                    continue;
                };
                let big = std::fs::metadata(&log).is_ok_and(|m| m.len() > policy.max_size);
                let id = format!("{}-{name}-{restart}", &uid[..uid.len().min(8)]);
                // Only a running container's log is rotated: conmon must reopen it.
                let ctl = state_dir.join("pods").join(&uid).join(&id).join("ctl");
                if big && ctl.exists() && !exits_dir.join(&id).exists() {
                    if let Err(err) = rotate(&log, &ctl, policy.max_files) {
                        tracing::warn!(log = %log.display(), %err, "rotating a container log failed");
                    }
                }
            }
        }
    }
}

/// `N` of a current log file `N.log`; rotated files (`N.log.<time>`) are not current.
fn current_log_restart(path: &Path) -> Option<u32> {
    path.file_name()?
        .to_str()?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn children(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

/// Renames `log` aside, tells conmon (through its control FIFO `ctl`) to reopen it, and keeps
/// the newest `max_files - 1` rotated files.
fn rotate(log: &Path, ctl: &Path, max_files: usize) -> std::io::Result<()> {
    // Opened first: when no conmon listens any more the log is left as it is.
    let mut control = open_control(ctl)?;
    let now = k8s_openapi::jiff::Timestamp::now();
    let stamp = format!(
        "{}.{:06}",
        now.strftime("%Y%m%d-%H%M%S"),
        now.subsec_microsecond()
    );
    let mut rotated = log.as_os_str().to_owned();
    rotated.push(format!(".{stamp}"));
    std::fs::rename(log, &rotated)?;
    // conmon's control message 2: reopen the log files.
    control.write_all(b"2 0 0\n")?;
    let prefix = format!(
        "{}.",
        log.file_name().and_then(|n| n.to_str()).unwrap_or_default()
    );
    let mut old: Vec<PathBuf> = children(log.parent().unwrap_or(Path::new(".")))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    // The time stamps sort as the files were made.
    old.sort();
    let keep = max_files.saturating_sub(1).max(1);
    for path in old.iter().take(old.len().saturating_sub(keep)) {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

/// conmon's control FIFO, for writing; an error when nobody reads it.
fn open_control(ctl: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(ctl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_nobody_reopens_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        let ctl = dir.path().join("ctl");
        nix::unistd::mkfifo(&ctl, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("fifo");
        std::fs::write(&log, "kept\n").expect("write");
        assert!(rotate(&log, &ctl, 5).is_err());
        assert_eq!(std::fs::read_to_string(&log).expect("read"), "kept\n");
    }

    #[test]
    fn only_current_logs_are_candidates() {
        assert_eq!(current_log_restart(Path::new("/x/3.log")), Some(3));
        assert_eq!(
            current_log_restart(Path::new("/x/3.log.20261201-101010")),
            None
        );
        assert_eq!(current_log_restart(Path::new("/x/kuard")), None);
    }

    #[test]
    fn rotation_renames_reopens_and_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        let ctl = dir.path().join("ctl");
        nix::unistd::mkfifo(&ctl, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("fifo");
        // A reader, as conmon holds one.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&ctl)
            .expect("open fifo");
        for round in 0..4 {
            std::fs::write(&log, format!("round {round}\n")).expect("write");
            rotate(&log, &ctl, 3).expect("rotate");
        }
        let mut names: Vec<String> = children(dir.path())
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .filter(|n| n.starts_with("0.log."))
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        let newest = std::fs::read_to_string(dir.path().join(&names[1])).expect("read");
        assert_eq!(newest, "round 3\n");
        let mut messages = String::new();
        std::io::Read::read_to_string(&mut &reader, &mut messages).expect("read fifo");
        assert_eq!(messages, "2 0 0\n".repeat(4));
    }

    use std::os::unix::fs::OpenOptionsExt;
}
