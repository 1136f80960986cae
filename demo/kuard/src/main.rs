//! `kuard`: a small demo web app, compatible with the one used by the "Kubernetes: Up and Running"
//! tutorials (same flags, log lines, pages and APIs), rebuilt from scratch so kubelite's demo image
//! can be made offline.
//!
//! This file is the process: command-line flags, the listening socket (with Go's error wording,
//! which tutorials show in `kubectl logs`), and serving until SIGTERM or SIGINT. The pages and APIs
//! live in [`app`].

mod app;
mod probe;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::str::FromStr;

use clap::Parser;
use tokio::net::TcpListener;

/// kuard: a demo app that serves pages about its own process (environment, memory, health).
#[derive(Debug, Parser)]
#[command(name = "kuard", version)]
struct Flags {
    /// The address to serve HTTP on; `:PORT` means every interface.
    #[arg(long, value_name = "ADDR", default_value = ":8080")]
    address: ListenAddr,
}

/// A listen address as written on the command line: `HOST:PORT`, `[V6]:PORT` or `:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListenAddr {
    text: String,
    host: String,
    port: u16,
}

impl ListenAddr {
    /// What to hand to the socket layer: an empty host means every IPv4 interface.
    fn bind_target(&self) -> String {
        if self.host.is_empty() {
            format!("0.0.0.0:{}", self.port)
        } else {
            self.text.clone()
        }
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(format!("address {text}: missing port in address"));
        };
        let bracketed = host.starts_with('[') && host.ends_with(']');
        if host.contains(':') && !bracketed {
            return Err(format!("address {text}: too many colons in address"));
        }
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("address {text}: invalid port"))?;
        Ok(ListenAddr {
            text: text.to_owned(),
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Binds `addr`; a failure is described the way Go's `net.Listen` does, e.g.
/// `listen tcp :8080: bind: address already in use`.
async fn listen(addr: &ListenAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr.bind_target())
        .await
        .map_err(|err| format!("listen tcp {addr}: {}", describe_listen_error(&err)))
}

/// The part of a listen error after the address, in Go's lower-case wording where we know it.
fn describe_listen_error(err: &io::Error) -> String {
    let bind_reason = match err.kind() {
        io::ErrorKind::AddrInUse => "address already in use",
        io::ErrorKind::AddrNotAvailable => "cannot assign requested address",
        io::ErrorKind::PermissionDenied => "permission denied",
        _ => return err.to_string(),
    };
    format!("bind: {bind_reason}")
}

/// Serves the app on `listener` until `shutdown` completes, then drains open requests.
async fn serve(
    listener: TcpListener,
    state: app::AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let service = app::router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on SIGTERM (what the kubelet sends to stop a container) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the default dispositions still stop the process.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    println!("Serving on HTTP on {}", flags.address);
    let listener = match listen(&flags.address).await {
        Ok(listener) => listener,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let state = app::AppState::new(std::env::args().collect());
    match serve(listener, state, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("serve: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(std::iter::once("kuard").chain(args.iter().copied()))
    }

    #[test]
    fn default_address_is_every_interface_on_8080() {
        let flags = parse(&[]).expect("no flags");
        assert_eq!(flags.address.to_string(), ":8080");
        assert_eq!(flags.address.bind_target(), "0.0.0.0:8080");
    }

    #[test]
    fn address_flag_keeps_the_text_as_given() {
        let flags = parse(&["--address", ":8081"]).expect("port only");
        assert_eq!(flags.address.to_string(), ":8081");
        assert_eq!(flags.address.bind_target(), "0.0.0.0:8081");

        let flags = parse(&["--address=127.0.0.1:9000"]).expect("host and port");
        assert_eq!(flags.address.bind_target(), "127.0.0.1:9000");

        let flags = parse(&["--address", "[::1]:9000"]).expect("bracketed v6");
        assert_eq!(flags.address.bind_target(), "[::1]:9000");
    }

    #[test]
    fn bad_addresses_are_refused_with_go_wording() {
        assert_eq!(
            "8080".parse::<ListenAddr>().unwrap_err(),
            "address 8080: missing port in address"
        );
        assert_eq!(
            "::1:80".parse::<ListenAddr>().unwrap_err(),
            "address ::1:80: too many colons in address"
        );
        assert!(":http".parse::<ListenAddr>().is_err());
        assert!(parse(&["--address", "nope"]).is_err());
    }

    #[test]
    fn help_lists_address_and_its_default() {
        let err = parse(&["-h"]).expect_err("-h prints help");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        let help = Flags::command().render_help().to_string();
        assert!(help.contains("--address <ADDR>"), "{help}");
        assert!(help.contains("[default: :8080]"), "{help}");
    }

    #[tokio::test]
    async fn a_taken_port_fails_like_go() {
        let first = listen(&"127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("first bind");
        let port = first.local_addr().expect("local addr").port();
        let addr: ListenAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let err = listen(&addr).await.expect_err("second bind must fail");
        assert_eq!(
            err,
            format!("listen tcp 127.0.0.1:{port}: bind: address already in use")
        );
    }

    #[tokio::test]
    async fn serves_over_a_real_socket() {
        let listener = listen(&"127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let local = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = app::AppState::new(vec!["/kuard".to_owned()]);
        let server = tokio::spawn(serve(listener, state, async {
            let _ = stopped.await;
        }));

        let mut stream = tokio::net::TcpStream::connect(local)
            .await
            .expect("connect");
        let request = "GET /healthy HTTP/1.1\r\nHost: kuard\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\nok"), "{response}");

        let _ = stop.send(());
        server.await.expect("join").expect("serve");
    }
}
