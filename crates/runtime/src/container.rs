//! Containers: OCI bundles run by an OCI runtime binary (crun by default, runc accepted) under a
//! per-container conmon shim. conmon owns the container's stdio and writes CRI-format log lines
//! (`<time> stdout F <line>`), records the exit code in an exit file and an `oom` marker when the
//! kernel OOM-killed the container, and keeps running when the agent restarts. The agent never
//! becomes the parent of container processes.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::{Error, Result};

/// How long one OCI runtime command may take before it is killed.
pub const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Where the runtime binaries are and where their state lives.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// The OCI runtime binary (crun or runc).
    pub oci_runtime: PathBuf,
    pub conmon: PathBuf,
    /// `--root` of the OCI runtime: its container state, private to this agent.
    pub root: PathBuf,
    /// conmon writes `<id>` files with exit codes here.
    pub exits: PathBuf,
    /// conmon's attach sockets.
    pub sockets: PathBuf,
    /// `<id>.pid` files with the pid of each container's conmon.
    pub monitors: PathBuf,
    /// How long one OCI runtime command may take ([`COMMAND_TIMEOUT`]).
    pub command_timeout: std::time::Duration,
}

/// Whether a container's stdin stays open for `kubectl attach -i`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stdin {
    #[default]
    Closed,
    /// Open; closed for good when the first attached client closes it.
    Once,
    /// Open for every attached client.
    Open,
}

impl Stdin {
    /// From a container's `stdin` and `stdinOnce`.
    pub fn from_spec(stdin: bool, once: bool) -> Self {
        match (stdin, once) {
            (false, _) => Stdin::Closed,
            (true, true) => Stdin::Once,
            (true, false) => Stdin::Open,
        }
    }

    fn conmon_args(self) -> &'static [&'static str] {
        match self {
            Stdin::Closed => &[],
            Stdin::Once => &["--stdin"],
            Stdin::Open => &["--stdin", "--leave-stdin-open"],
        }
    }
}

/// What `crun state` reports.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct State {
    pub status: String,
    #[serde(default)]
    pub pid: i32,
    /// The container's bundle directory (its `config.json`).
    #[serde(default)]
    pub bundle: Option<PathBuf>,
}

/// How long deleting a container waits for its conmon to record the exit and leave.
const MONITOR_EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether `pid` is a conmon (a pid is reused once its process is gone).
fn is_conmon(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "conmon")
}

/// Waits, at most `limit`, until the conmon `pid` has gone.
fn wait_for_exit(pid: u32, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while is_conmon(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Runtime {
    /// Finds conmon and the OCI runtime (`preferred`, e.g. "crun"; runc if it is missing) and
    /// makes the state directories under `state_dir`.
    pub fn new(state_dir: &Path, preferred: &str) -> Result<Runtime> {
        let conmon = which("conmon").ok_or_else(|| Error::Command {
            command: "conmon".into(),
            message: "conmon is not installed (Debian package conmon)".into(),
        })?;
        let oci_runtime =
            which(preferred)
                .or_else(|| which("runc"))
                .ok_or_else(|| Error::Command {
                    command: preferred.into(),
                    message: "no OCI runtime found (install crun or runc)".into(),
                })?;
        let rt = Runtime {
            oci_runtime,
            conmon,
            root: state_dir.join("oci"),
            exits: state_dir.join("exits"),
            sockets: state_dir.join("sockets"),
            monitors: state_dir.join("conmon"),
            command_timeout: COMMAND_TIMEOUT,
        };
        for d in [&rt.root, &rt.exits, &rt.sockets, &rt.monitors] {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        Ok(rt)
    }

    fn oci(&self) -> Command {
        let mut cmd = Command::new(&self.oci_runtime);
        cmd.arg("--root").arg(&self.root).stdin(Stdio::null());
        cmd
    }

    /// Creates container `id` from `bundle` under a new conmon (stopped in "created" state);
    /// stdout and stderr go to `log_path` in CRI format. With `stdin`, conmon keeps a pipe to the
    /// container's stdin that attached clients write to (left open between them unless
    /// `stdin_once`). Returns the container's init pid.
    pub fn create(
        &self,
        id: &str,
        name: &str,
        bundle: &Path,
        log_path: &Path,
        stdin: Stdin,
    ) -> Result<i32> {
        let _ = std::fs::remove_file(self.exits.join(id));
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let persist = bundle.join("persist");
        std::fs::create_dir_all(&persist).map_err(|e| Error::io(&persist, e))?;
        let (read_end, write_end): (OwnedFd, OwnedFd) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Command {
                command: "pipe".into(),
                message: e.to_string(),
            })?;
        let write_fd = write_end.as_raw_fd();
        let mut cmd = Command::new(&self.conmon);
        cmd.args(["--api-version", "1", "-c", id, "-u", id, "-n", name, "-r"])
            .arg(&self.oci_runtime)
            .arg("-b")
            .arg(bundle)
            .arg("-p")
            .arg(bundle.join("pidfile"))
            .arg("-P")
            .arg(self.monitor_pidfile(id))
            .arg("--exit-dir")
            .arg(&self.exits)
            .arg("--persist-dir")
            .arg(&persist)
            .arg("--socket-dir-path")
            .arg(&self.sockets)
            .arg("-l")
            .arg(format!("k8s-file:{}", log_path.display()))
            .args(["--log-level", "error"])
            .args(stdin.conmon_args())
            .arg(format!("--runtime-arg=--root={}", self.root.display()))
            .env("_OCI_SYNCPIPE", "3")
            .current_dir(bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The sync pipe becomes fd 3 in conmon; it reports the container pid there.
        unsafe {
            cmd.pre_exec(move || {
                if nix::libc::dup2(write_fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| Error::Command {
            command: "conmon".into(),
            message: e.to_string(),
        })?;
        drop(write_end);
        let out = child.wait_with_output().map_err(|e| Error::Command {
            command: "conmon".into(),
            message: e.to_string(),
        })?;
        let mut reply = String::new();
        let _ = BufReader::new(std::fs::File::from(read_end)).read_line(&mut reply);
        #[derive(Deserialize)]
        struct Sync {
            data: i64,
            #[serde(default)]
            message: Option<String>,
        }
        let sync: Option<Sync> = serde_json::from_str(reply.trim()).ok();
        match sync {
            Some(Sync { data, .. }) if data > 0 => Ok(data as i32),
            Some(Sync { message, .. }) => Err(Error::Command {
                command: format!("{} create {id}", self.oci_runtime.display()),
                message: message
                    .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string()),
            }),
            None => Err(Error::Command {
                command: format!("conmon for {id}"),
                message: format!(
                    "no pid reported ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            }),
        }
    }

    /// Runs the OCI runtime; one that does not answer within `command_timeout` is killed and
    /// reported as an error, so that no caller waits forever on a hung runtime.
    fn run(&self, args: &[&str]) -> Result<String> {
        let command = format!("{} {}", self.oci_runtime.display(), args.join(" "));
        let failed = |message: String| Error::Command {
            command: command.clone(),
            message,
        };
        let child = self
            .oci()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(self.command_timeout) {
            Ok(result) => result.map_err(|e| failed(e.to_string()))?,
            Err(_) => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                return Err(failed(format!(
                    "no answer within {} ms; killed",
                    self.command_timeout.as_millis()
                )));
            }
        };
        if !out.status.success() {
            return Err(failed(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn start(&self, id: &str) -> Result<()> {
        self.run(&["start", id]).map(|_| ())
    }

    /// The container's state, or None when the runtime does not know it.
    pub fn state(&self, id: &str) -> Result<Option<State>> {
        match self.run(&["state", id]) {
            Ok(json) => Ok(Some(serde_json::from_str(&json)?)),
            Err(Error::Command { message, .. })
                if message.contains("does not exist") || message.contains("not found") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends `signal` (e.g. "TERM", "KILL") to the container's init.
    pub fn kill(&self, id: &str, signal: &str) -> Result<()> {
        match self.run(&["kill", id, signal]) {
            Err(Error::Command { message, .. })
                if message.contains("not running") || message.contains("does not exist") =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// Deletes container `id` (killing it if it still runs) and what conmon kept of it: its
    /// exit file and its sockets.
    pub fn delete(&self, id: &str) -> Result<()> {
        let monitor = self.monitor_pid(id);
        let deleted = match self.run(&["delete", "--force", id]) {
            Err(Error::Command { message, .. })
                if message.contains("does not exist") || message.contains("not found") =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        };
        if deleted.is_ok() {
            // conmon writes the exit file of a container killed here as it leaves: removed before
            // that, the file would come back and outlive the container.
            if let Some(pid) = monitor {
                wait_for_exit(pid, MONITOR_EXIT_WAIT);
            }
            let _ = std::fs::remove_file(self.exits.join(id));
            let _ = std::fs::remove_dir_all(self.sockets.join(id));
            let _ = std::fs::remove_file(self.monitor_pidfile(id));
        }
        deleted
    }

    fn monitor_pidfile(&self, id: &str) -> PathBuf {
        self.monitors.join(format!("{id}.pid"))
    }

    /// Whether the conmon watching container `id` still runs (two small reads, cheap enough to
    /// ask often). Without conmon nobody records the container's exit. Unknown counts as alive.
    pub fn monitor_alive(&self, id: &str) -> bool {
        let Ok(pid) = std::fs::read_to_string(self.monitor_pidfile(id)) else {
            return true;
        };
        let Ok(pid) = pid.trim().parse::<u32>() else {
            return true;
        };
        is_conmon(pid)
    }

    /// The pid of the conmon watching container `id`, while that process is still a conmon.
    fn monitor_pid(&self, id: &str) -> Option<u32> {
        let pid = std::fs::read_to_string(self.monitor_pidfile(id)).ok()?;
        let pid = pid.trim().parse::<u32>().ok()?;
        is_conmon(pid).then_some(pid)
    }

    /// Whether conmon has recorded the container's exit (a stat, cheap enough to ask often).
    pub fn has_exited(&self, id: &str) -> bool {
        self.exits.join(id).exists()
    }

    /// The exit code conmon recorded, once the container has exited.
    pub fn exit_code(&self, id: &str) -> Option<i32> {
        std::fs::read_to_string(self.exits.join(id))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether conmon saw the kernel OOM-kill this container.
    pub fn oom_killed(bundle: &Path) -> bool {
        bundle.join("persist").join("oom").exists()
    }

    /// Removes the exit files, sockets and conmon pid files of containers the OCI runtime no
    /// longer knows and no conmon watches (left by a delete that was cut short).
    pub fn sweep_leftovers(&self) {
        let known: std::collections::HashSet<String> = self.list().into_iter().collect();
        let names = |dir: &Path| -> Vec<(String, PathBuf)> {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
                .collect()
        };
        for (name, path) in names(&self.exits).into_iter().chain(names(&self.sockets)) {
            if !known.contains(&name) && self.monitor_pid(&name).is_none() {
                let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
            }
        }
        for (name, path) in names(&self.monitors) {
            let id = name.trim_end_matches(".pid");
            if !known.contains(id) && self.monitor_pid(id).is_none() {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// The names of the containers this runtime's state directory knows.
    pub fn list(&self) -> Vec<String> {
        std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A runtime whose OCI binary is the shell script `body`.
    fn scripted(dir: &Path, body: &str) -> Runtime {
        let script = dir.join("oci");
        std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Runtime {
            oci_runtime: script,
            conmon: PathBuf::from("/bin/false"),
            root: dir.join("root"),
            exits: dir.join("exits"),
            sockets: dir.join("sockets"),
            monitors: dir.join("conmon"),
            command_timeout: std::time::Duration::from_millis(300),
        }
    }

    /// `rt.state(id)`, again while the script just written is still open in a process another
    /// test forked at that moment (ETXTBSY).
    fn state(rt: &Runtime, id: &str) -> Result<Option<State>> {
        for _ in 0..100 {
            match rt.state(id) {
                Err(e) if e.to_string().contains("Text file busy") => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                other => return other,
            }
        }
        rt.state(id)
    }

    #[test]
    fn leftovers_of_containers_the_runtime_no_longer_knows_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let rt = scripted(dir.path(), "exit 0");
        for d in [&rt.root, &rt.exits, &rt.sockets, &rt.monitors] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir(rt.root.join("kept")).unwrap();
        for id in ["kept", "gone"] {
            std::fs::write(rt.exits.join(id), "0").unwrap();
            std::fs::create_dir(rt.sockets.join(id)).unwrap();
            // This test's own pid: a live process, but no conmon.
            std::fs::write(rt.monitor_pidfile(id), std::process::id().to_string()).unwrap();
        }
        rt.sweep_leftovers();
        for id in ["kept", "gone"] {
            let here = id == "kept";
            assert_eq!(rt.exits.join(id).exists(), here, "exit file of {id}");
            assert_eq!(rt.sockets.join(id).exists(), here, "sockets of {id}");
            assert_eq!(rt.monitor_pidfile(id).exists(), here, "pid file of {id}");
        }
    }

    #[test]
    fn a_runtime_that_hangs_is_an_error_not_a_missing_container() {
        let dir = tempfile::tempdir().unwrap();
        let rt = scripted(dir.path(), "sleep 30");
        let started = std::time::Instant::now();
        let err = state(&rt, "c1").unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(err.to_string().contains("no answer within 300 ms"), "{err}");
    }

    #[test]
    fn states_and_unknown_containers_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let rt = scripted(
            dir.path(),
            r#"case "$4" in known) echo '{"id":"known","status":"running","pid":7}';; *) echo "container does not exist" >&2; exit 1;; esac"#,
        );
        assert_eq!(state(&rt, "known").unwrap().unwrap().status, "running");
        assert_eq!(state(&rt, "gone").unwrap(), None);
        let other = tempfile::tempdir().unwrap();
        let broken = scripted(other.path(), "echo 'permission denied' >&2; exit 1");
        assert!(
            state(&broken, "x").is_err(),
            "a failing runtime is not a gone container"
        );
    }
}
