//! The node's HTTPS server (the kubelet's port): serves container logs, exec and port-forward to
//! the API server, which proxies `pods/log`, `pods/exec` and `pods/portforward` here. Only clients
//! with a certificate from the cluster CA get in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower::ServiceExt;

use crate::logs;

/// What the server needs.
#[derive(Clone)]
pub struct NodeServer {
    pub logs_dir: PathBuf,
    /// conmon's exit files, to know when a followed container has stopped.
    pub exits_dir: PathBuf,
    pub streams: Arc<crate::streams::Streams>,
}

#[derive(Debug, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LogQuery {
    follow: Option<String>,
    previous: Option<String>,
    tail_lines: Option<usize>,
    timestamps: Option<String>,
    limit_bytes: Option<usize>,
    since_seconds: Option<i64>,
    since_time: Option<String>,
    uid: Option<String>,
}

fn flag(v: &Option<String>) -> bool {
    v.as_deref()
        .is_some_and(|s| s != "0" && !s.eq_ignore_ascii_case("false"))
}

fn text(code: u16, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn container_logs(
    State(server): State<Arc<NodeServer>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let Some(dir) = logs::container_dir(
        &server.logs_dir,
        &namespace,
        &pod,
        q.uid.as_deref(),
        &container,
    ) else {
        return text(
            404,
            format!("container \"{container}\" in pod \"{pod}\" has no logs on this node"),
        );
    };
    let instances = logs::instances(&dir);
    let chosen = if flag(&q.previous) {
        instances.len().checked_sub(2).map(|i| instances[i].clone())
    } else {
        instances.last().cloned()
    };
    let Some((restart, path)) = chosen else {
        return text(
            400,
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found"),
        );
    };
    let opts = logs::Options {
        tail_lines: q.tail_lines,
        timestamps: flag(&q.timestamps),
        limit_bytes: q.limit_bytes,
        since_seconds: q.since_seconds,
        since_time: q.since_time.as_deref().and_then(|t| t.parse().ok()),
    };
    let content = tokio::fs::read_to_string(&path).await.unwrap_or_default();
    let first = logs::render(&content, &opts);
    if !flag(&q.follow) || flag(&q.previous) {
        return text(200, first);
    }
    // Follow: send what is there, then new lines until the instance exits.
    let exit_file = {
        let uid_part = dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let uid = uid_part.rsplit('_').next().unwrap_or("").to_string();
        server.exits_dir.join(format!(
            "{}-{container}-{restart}",
            &uid[..uid.len().min(8)]
        ))
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(16);
    let offset = content.len() as u64;
    let render_opts = logs::Options {
        tail_lines: None,
        ..opts
    };
    tokio::spawn(async move {
        if tx.send(Ok(bytes::Bytes::from(first))).await.is_err() {
            return;
        }
        let _ = follow(&path, offset, &exit_file, &render_opts, &tx).await;
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Sends what is appended to the log at `path` after `offset`, line by line, until the container
/// instance has exited (its exit file exists) and everything it wrote is sent, or the client left.
async fn follow(
    path: &std::path::Path,
    offset: u64,
    exit_file: &std::path::Path,
    opts: &logs::Options,
    tx: &tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut exited = false;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            // conmon writes the exit file after the last log line: once it exists, one more
            // empty read means everything was sent.
            if exited || tx.is_closed() {
                if !pending.is_empty() {
                    let text = logs::render(&String::from_utf8_lossy(&pending), opts);
                    let _ = tx.send(Ok(bytes::Bytes::from(text))).await;
                }
                return Ok(());
            }
            exited = exit_file.exists();
            if !exited {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        // Only whole CRI lines render; the rest waits for its newline.
        if let Some(end) = pending.iter().rposition(|b| *b == b'\n') {
            let lines: Vec<u8> = pending.drain(..=end).collect();
            let text = logs::render(&String::from_utf8_lossy(&lines), opts);
            if !text.is_empty() && tx.send(Ok(bytes::Bytes::from(text))).await.is_err() {
                return Ok(());
            }
        }
    }
}

async fn healthz() -> impl IntoResponse {
    "ok"
}

/// How long a client may take over its TLS handshake, and over a request's headers (as the API
/// server allows).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(32);

pub fn router(server: Arc<NodeServer>) -> Router {
    use crate::streams;
    let streaming = Router::new()
        .route(
            "/exec/{namespace}/{pod}/{uid}/{container}",
            get(streams::exec).post(streams::exec),
        )
        .route(
            "/attach/{namespace}/{pod}/{uid}/{container}",
            get(streams::exec).post(streams::exec),
        )
        .route(
            "/portForward/{namespace}/{pod}/{uid}",
            get(streams::port_forward).post(streams::port_forward),
        )
        .with_state(server.streams.clone());
    Router::new()
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route("/healthz", get(healthz))
        .with_state(server)
        .merge(streaming)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
}

/// A request that panicked ends in a 500; the node server goes on.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(panic = what, "a request to the node server panicked");
    let text = "This request caused the node server to panic. Look in the logs for details.\n";
    (http::StatusCode::INTERNAL_SERVER_ERROR, text).into_response()
}

/// A self-signed serving certificate for this node (the API server does not verify it; the node
/// verifies the API server's client certificate).
fn serving_cert(
    node_name: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let params =
        rcgen::CertificateParams::new(vec![node_name.to_string(), "localhost".to_string()])
            .map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| e.to_string())?;
    Ok((vec![cert.der().clone()], der))
}

/// Serves on `addr` until the process ends. `ca_pem` is the cluster CA clients must be signed by.
pub async fn serve(
    addr: SocketAddr,
    node_name: String,
    ca_pem: String,
    server: Arc<NodeServer>,
) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .map_err(|e| e.to_string())?;
    let (certs, key) = serving_cert(&node_name)?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listen on {addr}: {e}"))?;
    let app = router(server);
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(err) => {
                // Out of file descriptors, say: wait a little instead of spinning.
                tracing::warn!(%err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            // A client that never finishes its handshake or its headers is not waited for.
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    app.clone().oneshot(req.map(Body::new))
                });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await;
        });
    }
}
