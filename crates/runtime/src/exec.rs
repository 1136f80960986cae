//! Processes run inside a running container (`kubectl exec`), always through the OCI runtime:
//! `crun exec` joins the container's namespaces and cgroup and starts the process there. Without a
//! terminal the process's stdio are pipes; with one, the runtime makes a pseudo-terminal inside
//! the container and hands its master end over a console socket (SCM_RIGHTS).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::container::Runtime;
use crate::{Error, Result};

/// What to run, and which streams the caller wants.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    pub command: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// What ends the session: the exec'd process, or (attach) the container's output ending.
enum Session {
    Process(tokio::process::Child),
    Attached(tokio::task::JoinHandle<()>),
}

/// A process running in a container (or a container attached to), with the ends of its streams.
pub struct Exec {
    session: Session,
    pub stdin: Option<Writer>,
    pub stdout: Option<Reader>,
    pub stderr: Option<Reader>,
    /// The terminal's master end, to resize it.
    pub terminal: Option<Terminal>,
    /// Keeps the console socket's directory until the process ends.
    _console_dir: Option<tempfile::TempDir>,
}

/// The master end of an exec's pseudo-terminal.
pub struct Terminal(OwnedFd);

impl Terminal {
    /// Sets the terminal's size, as a terminal emulator does when its window changes.
    pub fn resize(&self, columns: u16, rows: u16) -> std::io::Result<()> {
        let size = nix::libc::winsize {
            ws_row: rows,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
        let rc = unsafe { nix::libc::ioctl(self.0.as_raw_fd(), nix::libc::TIOCSWINSZ, &size) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

impl Exec {
    /// Waits for the process and returns its exit code (128 + the signal when it was killed).
    pub async fn wait(&mut self) -> Result<i32> {
        use std::os::unix::process::ExitStatusExt;
        let child = match &mut self.session {
            Session::Process(child) => child,
            Session::Attached(demux) => {
                let _ = demux.await;
                return Ok(0);
            }
        };
        let status = child.wait().await.map_err(|e| Error::Command {
            command: "exec".into(),
            message: e.to_string(),
        })?;
        Ok(status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(1))
    }
}

fn failed(message: impl ToString) -> Error {
    Error::Command {
        command: "exec".into(),
        message: message.to_string(),
    }
}

impl Runtime {
    /// Starts `request.command` in running container `id`.
    pub async fn exec(&self, id: &str, request: &ExecRequest) -> Result<Exec> {
        if request.command.is_empty() {
            return Err(failed("no command"));
        }
        let process_dir = tempfile::Builder::new()
            .prefix("process")
            .tempdir_in(&self.sockets)
            .map_err(|e| Error::io(&self.sockets, e))?;
        let process = self.process_file(id, request, process_dir.path()).await?;
        let mut cmd = tokio::process::Command::new(&self.oci_runtime);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("exec")
            .arg("--process")
            .arg(&process);
        if request.tty {
            return self.exec_with_terminal(cmd, id, request, process_dir).await;
        }
        let pipe = |wanted: bool| {
            if wanted {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        cmd.arg(id)
            .stdin(pipe(request.stdin))
            .stdout(pipe(request.stdout))
            .stderr(pipe(request.stderr))
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(failed)?;
        Ok(Exec {
            stdin: child.stdin.take().map(|s| Box::new(s) as Writer),
            stdout: child.stdout.take().map(|s| Box::new(s) as Reader),
            stderr: child.stderr.take().map(|s| Box::new(s) as Reader),
            session: Session::Process(child),
            terminal: None,
            _console_dir: Some(process_dir),
        })
    }

    /// The process an exec runs, written to `dir`: the container's own (user, groups,
    /// capabilities, no_new_privs, environment, working directory), with the request's command,
    /// as Kubernetes runs exec'd processes.
    async fn process_file(
        &self,
        id: &str,
        request: &ExecRequest,
        dir: &std::path::Path,
    ) -> Result<std::path::PathBuf> {
        let (rt, owned_id) = (self.clone(), id.to_string());
        let state = tokio::task::spawn_blocking(move || rt.state(&owned_id))
            .await
            .map_err(failed)??
            .ok_or_else(|| failed(format!("container {id} does not exist")))?;
        let bundle = state
            .bundle
            .ok_or_else(|| failed("the runtime did not say where the container's bundle is"))?;
        let config_path = bundle.join("config.json");
        let config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&config_path).map_err(|e| Error::io(&config_path, e))?,
        )?;
        let mut process = config["process"].clone();
        process["args"] = serde_json::json!(request.command);
        process["terminal"] = serde_json::json!(request.tty);
        let path = dir.join("process.json");
        std::fs::write(&path, serde_json::to_vec(&process)?).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }

    async fn exec_with_terminal(
        &self,
        mut cmd: tokio::process::Command,
        id: &str,
        request: &ExecRequest,
        dir: tempfile::TempDir,
    ) -> Result<Exec> {
        let socket = dir.path().join("console.sock");
        let listener =
            tokio::net::UnixListener::bind(&socket).map_err(|e| Error::io(&socket, e))?;
        // The terminal is asked for in the process file.
        cmd.arg("--console-socket")
            .arg(&socket)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(failed)?;
        let accepted = tokio::select! {
            accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()) => accepted,
            status = child.wait() => {
                let mut message = String::new();
                if let Some(mut err) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = err.read_to_string(&mut message).await;
                }
                return Err(failed(format!("{} ({})", message.trim(), status.map(|s| s.to_string()).unwrap_or_default())));
            }
        };
        let (stream, _) = accepted
            .map_err(|_| failed("the runtime did not hand over the terminal"))?
            .map_err(failed)?;
        let stream = stream.into_std().map_err(failed)?;
        stream.set_nonblocking(false).map_err(failed)?;
        let master = tokio::task::spawn_blocking(move || receive_fd(&stream))
            .await
            .map_err(failed)??;
        let reader = std::fs::File::from(master.try_clone().map_err(failed)?);
        let writer = std::fs::File::from(master.try_clone().map_err(failed)?);
        Ok(Exec {
            stdin: request
                .stdin
                .then(|| Box::new(tokio::fs::File::from_std(writer)) as Writer),
            stdout: Some(Box::new(tokio::fs::File::from_std(reader))),
            stderr: None,
            session: Session::Process(child),
            terminal: Some(Terminal(master)),
            _console_dir: Some(dir),
        })
    }
}

/// conmon tags what it relays on the attach socket with the pipe it came from.
const ATTACH_STDOUT: u8 = 2;
const ATTACH_STDERR: u8 = 3;

impl Runtime {
    /// Attaches to the running container `id` through its conmon's attach socket: its output as
    /// it is written from now on, and stdin when conmon keeps one. The session ends when the
    /// container's output ends (it exited) or the caller stops reading.
    pub async fn attach(&self, id: &str, request: &ExecRequest) -> Result<Exec> {
        use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
        let path = self.sockets.join(id).join("attach");
        let fd = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(failed)?;
        let addr = UnixAddr::new(&path).map_err(failed)?;
        connect(fd.as_raw_fd(), &addr).map_err(|e| failed(format!("{}: {e}", path.display())))?;
        let timeout = nix::sys::time::TimeVal::new(1, 0);
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReceiveTimeout, &timeout)
            .map_err(failed)?;
        let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(failed);
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stdin = fd.try_clone().map_err(failed)?;
        let demux = tokio::task::spawn_blocking(move || demux_attach(fd, out_w, err_w));
        let reader =
            |fd: OwnedFd| Box::new(tokio::fs::File::from_std(std::fs::File::from(fd))) as Reader;
        Ok(Exec {
            session: Session::Attached(demux),
            stdin: request
                .stdin
                .then(|| Box::new(tokio::fs::File::from_std(std::fs::File::from(stdin))) as Writer),
            stdout: request.stdout.then(|| reader(out_r)),
            stderr: request.stderr.then(|| reader(err_r)),
            terminal: None,
            _console_dir: None,
        })
    }
}

/// Copies conmon's tagged packets to the stdout and stderr pipes until the socket ends, or nobody
/// reads the pipes any more.
fn demux_attach(socket: OwnedFd, stdout: OwnedFd, stderr: OwnedFd) {
    use std::io::Write;
    let (mut out, mut err) = (std::fs::File::from(stdout), std::fs::File::from(stderr));
    let mut buf = vec![0u8; 8193];
    loop {
        match nix::sys::socket::recv(
            socket.as_raw_fd(),
            &mut buf,
            nix::sys::socket::MsgFlags::empty(),
        ) {
            Ok(0) => return,
            Ok(n) => {
                let written = match buf[0] {
                    ATTACH_STDOUT => out.write_all(&buf[1..n]),
                    ATTACH_STDERR => err.write_all(&buf[1..n]),
                    _ => Ok(()),
                };
                if written.is_err() {
                    return;
                }
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {
                if !readers_left(&out) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Whether a pipe's read end is still open (a pipe without readers polls as an error).
fn readers_left(pipe: &std::fs::File) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => !fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)),
        Err(_) => true,
    }
}

/// Receives one file descriptor sent with SCM_RIGHTS on `stream`.
fn receive_fd(stream: &std::os::unix::net::UnixStream) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(failed)?;
    for cmsg in msg.cmsgs().map_err(failed)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just gave this process the descriptor; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(failed("the console socket carried no terminal"))
}
