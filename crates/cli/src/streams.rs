//! `kubectl exec` and `kubectl port-forward`, over the API server's WebSocket streams (kube-rs).

use std::os::fd::AsFd;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, TerminalSize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::args::{AttachArgs, ExecArgs, PortForwardArgs};
use crate::config::Context;
use crate::get::get_value;
use crate::logs::{default_container, pod_name};
use crate::Error;

/// Puts the terminal in raw mode until dropped.
struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enter() -> Self {
        use nix::sys::termios;
        let stdin = std::io::stdin();
        let Ok(original) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = original.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        RawMode(Some(original))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(original) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                original,
            );
        }
    }
}

fn terminal_size() -> Option<TerminalSize> {
    let mut size: nix::libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass.
    let rc = unsafe { nix::libc::ioctl(1, nix::libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0).then_some(TerminalSize {
        width: size.ws_col,
        height: size.ws_row,
    })
}

/// `kubectl exec`; returns the command's exit code.
pub async fn exec(ctx: &Context, args: ExecArgs) -> Result<i32, Error> {
    let name = pod_name(&args.pod)?;
    if args.command.is_empty() {
        return Err(Error::other(
            "you must specify at least one command for the container",
        ));
    }
    let pod = get_value(
        ctx,
        &format!("/api/v1/namespaces/{}/pods/{name}", ctx.namespace),
    )
    .await?;
    let container = match &args.container {
        Some(c) => c.clone(),
        None => default_container(&pod, args.quiet).unwrap_or_default(),
    };
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return Err(Error::other(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    let tty = args.tty && std::io::IsTerminal::is_terminal(&std::io::stdin());
    if args.tty && !tty && !args.quiet {
        eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
    }
    let params = attach_params(container, args.stdin, tty);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let process = api
        .exec(name, args.command.clone(), &params)
        .await
        .map_err(upgrade_error)?;
    drive(process, tty, args.quiet).await
}

/// `kubectl attach`: the container's own output (and input, with -i) instead of a new process.
pub async fn attach(ctx: &Context, args: AttachArgs) -> Result<i32, Error> {
    let name = pod_name(&args.pod)?;
    let pod = get_value(
        ctx,
        &format!("/api/v1/namespaces/{}/pods/{name}", ctx.namespace),
    )
    .await?;
    let container = args
        .container
        .clone()
        .or_else(|| default_container(&pod, true))
        .unwrap_or_default();
    let tty = args.tty && std::io::IsTerminal::is_terminal(&std::io::stdin());
    let params = attach_params(container, args.stdin, tty);
    if tty && !args.quiet {
        eprintln!("If you don't see a command prompt, try pressing enter.");
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let process = api.attach(name, &params).await.map_err(upgrade_error)?;
    drive(process, tty, args.quiet).await
}

/// The streams of an exec or attach: stdout always, stdin when asked, stderr unless a terminal
/// carries both.
fn attach_params(container: String, stdin: bool, tty: bool) -> AttachParams {
    AttachParams::default()
        .container(container)
        .stdin(stdin)
        .stdout(true)
        .stderr(!tty)
        .tty(tty)
}

/// A refused upgrade answers with plain text (the node's reason), which kubectl reports as
/// "unable to upgrade connection"; a Kubernetes `Status` is reported as any server error.
fn upgrade_error(err: kube::Error) -> Error {
    match err {
        kube::Error::Api(status) if status.reason == "Failed to parse error data" => {
            Error::other(format!("unable to upgrade connection: {}", status.message))
        }
        other => other.into(),
    }
}

/// Connects the process to this terminal until it ends; returns its exit code.
async fn drive(
    mut process: kube::api::AttachedProcess,
    tty: bool,
    quiet: bool,
) -> Result<i32, Error> {
    let _raw = tty.then(RawMode::enter);
    if tty {
        if let (Some(mut sizes), Some(size)) = (process.terminal_size(), terminal_size()) {
            use futures::SinkExt;
            let _ = sizes.send(size).await;
            tokio::spawn(async move {
                let Ok(mut winch) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
                else {
                    return;
                };
                while winch.recv().await.is_some() {
                    if let Some(size) = terminal_size() {
                        if sizes.send(size).await.is_err() {
                            break;
                        }
                    }
                }
            });
        }
    }
    if let Some(mut stdin) = process.stdin() {
        tokio::spawn(async move {
            let mut input = tokio::io::stdin();
            let mut buf = vec![0u8; 8192];
            loop {
                match input.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stdin.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = stdin.shutdown().await;
        });
    }
    let stdout = process.stdout().map(|mut out| {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut out, &mut tokio::io::stdout()).await;
        })
    });
    let stderr = process.stderr().map(|mut err| {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut err, &mut tokio::io::stderr()).await;
        })
    });
    let status = match process.take_status() {
        Some(s) => s.await,
        None => None,
    };
    for task in [stdout, stderr].into_iter().flatten() {
        let _ = task.await;
    }
    let _ = tokio::io::stdout().flush().await;
    drop(_raw);
    let Some(status) = status else { return Ok(0) };
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    let code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.parse::<i32>().ok());
    match code {
        Some(code) => {
            if !quiet {
                eprintln!("command terminated with exit code {code}");
            }
            Ok(code)
        }
        None => Err(Error::other(status.message.unwrap_or_default())),
    }
}

/// `kubectl port-forward POD [LOCAL:]REMOTE ...`: every local connection gets its own stream.
pub async fn port_forward(ctx: &Context, args: PortForwardArgs) -> Result<(), Error> {
    let name = pod_name(&args.args[0])?.to_string();
    let pod = get_value(
        ctx,
        &format!("/api/v1/namespaces/{}/pods/{name}", ctx.namespace),
    )
    .await?;
    if pod["status"]["phase"].as_str() != Some("Running") {
        return Err(Error::other(format!(
            "unable to forward port because pod is not running. Current status={}",
            pod["status"]["phase"].as_str().unwrap_or("")
        )));
    }
    let mut listeners = Vec::new();
    for spec in &args.args[1..] {
        let (local, remote) = match spec.split_once(':') {
            Some((l, r)) => (l.parse::<u16>().unwrap_or(0), r),
            None => (spec.parse::<u16>().unwrap_or(0), spec.as_str()),
        };
        let remote: u16 = remote
            .parse()
            .map_err(|_| Error::other(format!("invalid port: {spec}")))?;
        for address in &args.address {
            let hosts: Vec<&str> = if address == "localhost" {
                vec!["127.0.0.1", "[::1]"]
            } else {
                vec![address.as_str()]
            };
            let mut chosen = local;
            for host in hosts {
                let bind = format!("{host}:{chosen}");
                match tokio::net::TcpListener::bind(&bind).await {
                    Ok(l) => {
                        let port = l.local_addr().map(|a| a.port()).unwrap_or(chosen);
                        chosen = port;
                        println!("Forwarding from {host}:{port} -> {remote}");
                        listeners.push((l, remote));
                    }
                    Err(err) if host == "[::1]" => {
                        let _ = err;
                    }
                    Err(err) => {
                        return Err(Error::other(format!(
                            "unable to listen on port {chosen}: {err}"
                        )))
                    }
                }
            }
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    // As kubectl does, an error on any forwarded connection ends the whole forward.
    let (lost_tx, mut lost) = tokio::sync::mpsc::channel::<()>(1);
    let mut tasks = Vec::new();
    for (listener, remote) in listeners {
        let api = api.clone();
        let name = name.clone();
        let lost_tx = lost_tx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { continue };
                println!("Handling connection for {remote}");
                let _ = std::io::stdout().flush();
                let (api, name, lost_tx) = (api.clone(), name.clone(), lost_tx.clone());
                tokio::spawn(async move {
                    let mut forwarder = match api.portforward(&name, &[remote]).await {
                        Ok(f) => f,
                        Err(err) => {
                            eprintln!("E0000 error forwarding port {remote}: {err}");
                            return;
                        }
                    };
                    let error = forwarder.take_error(remote);
                    if let Some(mut upstream) = forwarder.take_stream(remote) {
                        let _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
                    }
                    if let Some(error) = error {
                        if let Ok(Some(message)) = tokio::time::timeout(std::time::Duration::from_millis(100), error).await {
                            eprintln!("E0000 an error occurred forwarding {remote} -> {remote}: error forwarding port {remote} to pod: {message}");
                            let _ = lost_tx.try_send(());
                        }
                    }
                    drop(forwarder);
                });
            }
        }));
    }
    drop(lost_tx);
    let _ = lost.recv().await;
    for task in tasks {
        task.abort();
    }
    Err(Error::other("lost connection to pod"))
}
