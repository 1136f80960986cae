//! `kubectl exec`, `attach` and `port-forward` on the node: the API server proxies the client's
//! upgrade request here unchanged, and this module speaks whichever protocol the client chose:
//!
//! - WebSocket with the channel protocol `v5.channel.k8s.io` / `v4.channel.k8s.io` (kubectl 1.30+
//!   exec, the client libraries): every message is a channel byte (0 stdin, 1 stdout, 2 stderr,
//!   3 error, 4 resize; 255 closes a channel in v5) and its payload.
//! - SPDY/3.1 (kubectl 1.27–1.29, and the fallback of later versions): one stream per channel.
//! - port-forward: WebSocket `v4.channel.k8s.io` with `ports=` (two channels per port, each
//!   opened by a 3-byte frame naming the port), SPDY (`portforward.k8s.io`: a data and an error
//!   stream per connection), and SPDY tunnelled in a WebSocket (`SPDY/3.1+portforward.k8s.io`,
//!   kubectl 1.31+).
//!
//! Processes run in the container through the OCI runtime; forwarded connections are made inside
//! the pod's network namespace.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use runtime::container::Runtime;
use runtime::exec::ExecRequest;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::spdy;

/// What the streaming handlers need.
#[derive(Clone)]
pub struct Streams {
    pub state_dir: PathBuf,
    pub runtime: Runtime,
}

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

const WS_EXEC_PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const SPDY_EXEC_PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";
const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// How long a SPDY client may take to open all the streams of an exec.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

fn text(code: u16, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r
}

/// Go's `strconv.ParseBool`, which the kubelet uses for query flags (clients send `true`, `1`
/// or Python's `True`).
fn parse_bool(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// The query of an exec or attach request.
fn exec_request(query: Option<&str>) -> ExecRequest {
    let mut req = ExecRequest::default();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "command" => req.command.push(v.into_owned()),
            "tty" => req.tty = parse_bool(&v),
            "stdin" | "input" => req.stdin = parse_bool(&v),
            "stdout" | "output" => req.stdout = parse_bool(&v),
            "stderr" | "error" => req.stderr = parse_bool(&v),
            _ => {}
        }
    }
    // A terminal merges stderr into stdout.
    if req.tty {
        req.stderr = false;
    }
    req
}

fn is_websocket(req: &Request) -> bool {
    req.headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The `X-Stream-Protocol-Version` values a SPDY client offers, in its order of preference.
fn offered_protocols(req: &Request) -> Vec<String> {
    req.headers()
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Answers a SPDY upgrade with the first protocol the client offers that `supported` has, and
/// runs `session` on the upgraded connection.
fn spdy_upgrade<F, Fut>(mut req: Request, supported: &[&str], session: F) -> Response
where
    F: FnOnce(hyper::upgrade::Upgraded, String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let upgrade = req
        .headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !upgrade.eq_ignore_ascii_case("SPDY/3.1") {
        return text(
            400,
            "unable to upgrade: missing upgrade headers in request".into(),
        );
    }
    let offered = offered_protocols(&req);
    if offered.is_empty() {
        return text(
            400,
            "unable to upgrade: X-Stream-Protocol-Version is required".into(),
        );
    }
    let Some(chosen) = offered
        .iter()
        .find(|p| supported.contains(&p.as_str()))
        .cloned()
    else {
        let mut r = text(
            403,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts {supported:?}"
            ),
        );
        for p in supported {
            if let Ok(v) = http::HeaderValue::from_str(p) {
                r.headers_mut()
                    .append("x-accepted-stream-protocol-versions", v);
            }
        }
        return r;
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let protocol = chosen.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => session(upgraded, protocol).await,
            Err(err) => tracing::debug!(%err, "the SPDY upgrade did not complete"),
        }
    });
    let mut r = Response::new(Body::empty());
    *r.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("SPDY/3.1"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&chosen) {
        h.insert("x-stream-protocol-version", v);
    }
    r
}

// ---------------------------------------------------------------------------------------------
// exec and attach

/// `/exec/{namespace}/{pod}/{uid}/{container}` and `/attach/…`.
pub async fn exec(
    State(streams): State<Arc<Streams>>,
    Path((_namespace, _pod, uid, container)): Path<(String, String, String, String)>,
    req: Request,
) -> Response {
    let mut request = exec_request(req.uri().query());
    let attach = req.uri().path().starts_with("/attach/");
    if !(request.stdin || request.stdout || request.stderr) {
        return text(
            400,
            "you must specify at least 1 of stdin, stdout, stderr".into(),
        );
    }
    let id = crate::linux::latest_instance(&streams.state_dir, &uid, &container);
    let running = match id.clone() {
        Some(id) => {
            let rt = streams.runtime.clone();
            tokio::task::spawn_blocking(move || rt.state(&id))
                .await
                .ok()
                .and_then(|s| s.ok().flatten())
                .is_some_and(|s| s.status == "running")
        }
        None => false,
    };
    let Some(id) = id.filter(|_| running) else {
        return text(500, format!("container not found ({container:?})"));
    };
    if attach {
        // Attaching runs nothing: the session is the container's own process.
        request.command = vec!["<attach>".into()];
    }
    if request.command.is_empty() {
        request.command = vec!["sh".into()];
    }
    let span = tracing::info_span!("exec", container = %container, id = %id);
    let _enter = span.enter();
    if is_websocket(&req) {
        let (mut parts, _) = req.into_parts();
        let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(ws) => ws.protocols(WS_EXEC_PROTOCOLS),
            Err(rejection) => return axum::response::IntoResponse::into_response(rejection),
        };
        let v5 = ws
            .selected_protocol()
            .is_some_and(|p| p == "v5.channel.k8s.io");
        return ws.on_upgrade(move |socket| async move {
            ws_exec(socket, streams.runtime.clone(), id, request, v5, attach).await
        });
    }
    spdy_upgrade(req, &SPDY_EXEC_PROTOCOLS, move |io, _protocol| async move {
        spdy_exec(TokioIo(io), streams.runtime.clone(), id, request, attach).await
    })
}

/// The bytes of a channel-protocol message: binary, or text (the Python client sends its stdin as
/// text). `Some(None)` for control messages to skip, `None` once the client closed.
fn payload(msg: Message) -> Option<Option<Vec<u8>>> {
    match msg {
        Message::Binary(b) => Some(Some(b.to_vec())),
        Message::Text(t) => Some(Some(t.as_bytes().to_vec())),
        Message::Close(_) => None,
        _ => Some(None),
    }
}

/// The streams of an exec, whatever carries them.
struct ExecChannels {
    stdin: Option<mpsc::Receiver<Vec<u8>>>,
    resize: Option<mpsc::Receiver<Vec<u8>>>,
    stdout: Option<mpsc::Sender<Vec<u8>>>,
    stderr: Option<mpsc::Sender<Vec<u8>>>,
}

/// The `Status` the error channel carries when the process has ended (or failed to start).
fn exit_status(request: &ExecRequest, result: &Result<i32, String>) -> Vec<u8> {
    let status = match result {
        Ok(0) => serde_json::json!({"metadata": {}, "status": "Success"}),
        Ok(code) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command {}, exit code {code}",
                format_command(&request.command)
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Err(err) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("Internal error occurred: {err}"),
            "reason": "InternalError",
            "details": {"causes": [{"message": err}]},
            "code": 500,
        }),
    };
    serde_json::to_vec(&status).unwrap_or_default()
}

/// A command as Go prints a string slice: `[sh -c exit 3]`.
fn format_command(command: &[String]) -> String {
    format!("[{}]", command.join(" "))
}

/// Runs the process (or attaches to the container) and moves bytes until it has ended and its
/// output is drained.
async fn drive(
    runtime: &Runtime,
    id: &str,
    request: &ExecRequest,
    attach: bool,
    channels: ExecChannels,
) -> Result<i32, String> {
    let started = if attach {
        runtime.attach(id, request).await
    } else {
        runtime.exec(id, request).await
    };
    let mut exec = started.map_err(|e| e.to_string())?;
    let ExecChannels {
        stdin,
        resize,
        stdout,
        stderr,
    } = channels;
    let mut pumps = Vec::new();
    if let (Some(mut rx), Some(mut w)) = (stdin, exec.stdin.take()) {
        pumps.push(tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                if w.write_all(&chunk).await.is_err() || w.flush().await.is_err() {
                    break;
                }
            }
            // The client's stdin ended: the process sees EOF.
            let _ = w.shutdown().await;
        }));
    }
    let resizer = match (resize, exec.terminal.take()) {
        (Some(mut rx), Some(terminal)) => Some(tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                for size in parse_sizes(&chunk) {
                    let _ = terminal.resize(size.0, size.1);
                }
            }
        })),
        _ => None,
    };
    let mut outputs = Vec::new();
    for (reader, sink) in [(exec.stdout.take(), stdout), (exec.stderr.take(), stderr)] {
        if let (Some(r), Some(tx)) = (reader, sink) {
            outputs.push(tokio::spawn(copy_out(r, tx)));
        }
    }
    let code = exec.wait().await.map_err(|e| e.to_string());
    for o in outputs {
        let _ = o.await;
    }
    for p in pumps {
        p.abort();
    }
    if let Some(r) = resizer {
        r.abort();
    }
    code
}

/// Sends what `reader` yields to `tx` until it ends (or `tx`'s receiver is gone).
async fn copy_out<R: AsyncRead + Unpin>(mut reader: R, tx: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            // A terminal's master reads EIO once the process is gone: the end, like EOF.
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(buf[..n].to_vec()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Terminal sizes from a resize channel: JSON objects `{"Width":80,"Height":24}`, possibly
/// several in one message.
fn parse_sizes(bytes: &[u8]) -> Vec<(u16, u16)> {
    #[derive(serde::Deserialize)]
    struct Size {
        #[serde(rename = "Width")]
        width: u16,
        #[serde(rename = "Height")]
        height: u16,
    }
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Size>()
        .map_while(Result::ok)
        .map(|s| (s.width, s.height))
        .collect()
}

async fn ws_exec(
    socket: WebSocket,
    runtime: Runtime,
    id: String,
    request: ExecRequest,
    v5: bool,
    attach: bool,
) {
    let (mut sink, mut source) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Vec<u8>)>(64);
    // The kubelet's first message: an empty frame on the lowest channel the client reads.
    let first = if request.stdout {
        STDOUT
    } else if request.stderr {
        STDERR
    } else {
        ERROR
    };
    if sink
        .send(Message::Binary(vec![first].into()))
        .await
        .is_err()
    {
        return;
    }
    let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(16);
    let (resize_tx, resize_rx) = mpsc::channel::<Vec<u8>>(4);
    let mut relays = Vec::new();
    let mut channel_sender = |channel: u8| {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        let out = out_tx.clone();
        relays.push(tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                if out.send((channel, data)).await.is_err() {
                    return;
                }
            }
        }));
        tx
    };
    let stdout = request.stdout.then(|| channel_sender(STDOUT));
    let stderr = request.stderr.then(|| channel_sender(STDERR));
    let channels = ExecChannels {
        stdin: request.stdin.then_some(stdin_rx),
        resize: request.tty.then_some(resize_rx),
        stdout,
        stderr,
    };
    // Client → process. Pings are answered by the WebSocket layer while this reads.
    let reader = tokio::spawn(async move {
        let mut stdin = Some(stdin_tx);
        while let Some(Ok(msg)) = source.next().await {
            let data = match payload(msg) {
                Some(Some(data)) => data,
                Some(None) => continue,
                None => break,
            };
            let Some((&channel, payload)) = data.split_first() else {
                continue;
            };
            tracing::debug!(channel, bytes = payload.len(), "exec message");
            match channel {
                STDIN => {
                    if let Some(tx) = &stdin {
                        let _ = tx.send(payload.to_vec()).await;
                    }
                }
                RESIZE => {
                    let _ = resize_tx.send(payload.to_vec()).await;
                }
                CLOSE if v5 && payload.first() == Some(&STDIN) => stdin = None,
                _ => {}
            }
        }
    });
    let writer = tokio::spawn(async move {
        while let Some((channel, data)) = out_rx.recv().await {
            let mut frame = Vec::with_capacity(data.len() + 1);
            frame.push(channel);
            frame.extend_from_slice(&data);
            if sink.send(Message::Binary(frame.into())).await.is_err() {
                break;
            }
        }
        sink
    });
    let result = drive(&runtime, &id, &request, attach, channels).await;
    // All output first, then the status.
    for relay in relays {
        let _ = relay.await;
    }
    let _ = out_tx.send((ERROR, exit_status(&request, &result))).await;
    drop(out_tx);
    if let Ok(mut sink) = writer.await {
        let _ = sink
            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
    }
    // Let the client read everything and close first.
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
}

/// The streams a SPDY exec client opens, by their `streamtype`.
async fn spdy_exec<IO>(io: IO, runtime: Runtime, id: String, request: ExecRequest, attach: bool)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut incoming, session) = Session::start(io);
    let expected = 1
        + usize::from(request.stdin)
        + usize::from(request.stdout)
        + usize::from(request.stderr)
        + usize::from(request.tty);
    let mut by_type: HashMap<String, SessionStream> = HashMap::new();
    let deadline = tokio::time::Instant::now() + STREAM_CREATION_TIMEOUT;
    while by_type.len() < expected {
        match tokio::time::timeout_at(deadline, incoming.recv()).await {
            Ok(Some(stream)) => {
                let kind = stream.header("streamtype").unwrap_or_default();
                by_type.insert(kind, stream);
            }
            _ => {
                tracing::debug!("the exec client did not open its streams");
                return session.close().await;
            }
        }
    }
    let Some(error) = by_type.remove("error") else {
        return session.close().await;
    };
    let mut take = |kind: &str| by_type.remove(kind);
    let (stdin, stdout, stderr, resize) = (
        take("stdin"),
        take("stdout"),
        take("stderr"),
        take("resize"),
    );
    let (stdout, stdout_done) = stdout.map(|s| s.sender()).unzip();
    let (stderr, stderr_done) = stderr.map(|s| s.sender()).unzip();
    let channels = ExecChannels {
        stdin: stdin.map(|s| s.incoming),
        resize: resize.map(|s| s.incoming),
        stdout,
        stderr,
    };
    let result = drive(&runtime, &id, &request, attach, channels).await;
    // Output streams end (FIN) once drained; then the status.
    for done in [stdout_done, stderr_done].into_iter().flatten() {
        let _ = done.await;
    }
    error.write(exit_status(&request, &result)).await;
    error.finish().await;
    session.close().await;
}

// ---------------------------------------------------------------------------------------------
// SPDY sessions

enum Out {
    Reply(u32),
    Data(u32, Vec<u8>, bool),
    Reset(u32),
    Ping(u32),
}

/// A stream the client opened.
struct SessionStream {
    id: u32,
    headers: Vec<(String, String)>,
    /// DATA from the client; ends at FIN or RST_STREAM.
    incoming: mpsc::Receiver<Vec<u8>>,
    out: mpsc::Sender<Out>,
}

impl SessionStream {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    async fn write(&self, data: Vec<u8>) {
        let _ = self.out.send(Out::Data(self.id, data, false)).await;
    }

    async fn finish(&self) {
        let _ = self.out.send(Out::Data(self.id, Vec::new(), true)).await;
    }

    /// A sender whose messages become DATA frames on this stream; once every sender is
    /// dropped the stream is finished (FIN) and the returned task ends.
    fn sender(&self) -> (mpsc::Sender<Vec<u8>>, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        let (out, id) = (self.out.clone(), self.id);
        let relay = tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                if out.send(Out::Data(id, data, false)).await.is_err() {
                    return;
                }
            }
            let _ = out.send(Out::Data(id, Vec::new(), true)).await;
        });
        (tx, relay)
    }
}

/// The server side of one SPDY connection: a reader task that accepts streams and routes DATA,
/// and a writer task that owns the framing (and its compression context).
struct Session {
    out: mpsc::Sender<Out>,
    writer: tokio::task::JoinHandle<()>,
    reader: tokio::task::JoinHandle<()>,
}

impl Session {
    fn start<IO>(io: IO) -> (mpsc::Receiver<SessionStream>, Session)
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (read_half, write_half) = tokio::io::split(io);
        let (out_tx, mut out_rx) = mpsc::channel::<Out>(256);
        let (new_tx, new_rx) = mpsc::channel::<SessionStream>(16);
        let writer = tokio::spawn(async move {
            let mut w = spdy::FrameWriter::new(write_half);
            let mut last_stream = 0;
            while let Some(out) = out_rx.recv().await {
                let sent = match out {
                    Out::Reply(id) => {
                        last_stream = id;
                        w.syn_reply(id).await
                    }
                    Out::Data(id, data, fin) => w.data(id, &data, fin).await,
                    Out::Reset(id) => w.rst_stream(id, spdy::CANCEL).await,
                    Out::Ping(id) => w.ping(id).await,
                };
                let flushed = if out_rx.is_empty() {
                    w.flush().await
                } else {
                    Ok(())
                };
                if sent.and(flushed).is_err() {
                    return;
                }
            }
            let _ = w.go_away(last_stream).await;
        });
        let out = out_tx.clone();
        let reader = tokio::spawn(async move {
            let mut r = spdy::FrameReader::new(read_half);
            let mut routes: HashMap<u32, mpsc::Sender<Vec<u8>>> = HashMap::new();
            loop {
                let frame = match r.next().await {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(err) => {
                        tracing::debug!(%err, "SPDY read");
                        break;
                    }
                };
                match frame {
                    spdy::Frame::SynStream {
                        stream_id,
                        headers,
                        fin,
                    } => {
                        let (tx, rx) = mpsc::channel(64);
                        if !fin {
                            routes.insert(stream_id, tx);
                        }
                        if out.send(Out::Reply(stream_id)).await.is_err() {
                            break;
                        }
                        let stream = SessionStream {
                            id: stream_id,
                            headers,
                            incoming: rx,
                            out: out.clone(),
                        };
                        if new_tx.send(stream).await.is_err() {
                            let _ = out.send(Out::Reset(stream_id)).await;
                        }
                    }
                    spdy::Frame::Data {
                        stream_id,
                        data,
                        fin,
                    } => {
                        if let Some(tx) = routes.get(&stream_id) {
                            if !data.is_empty() {
                                let _ = tx.send(data).await;
                            }
                        }
                        if fin {
                            routes.remove(&stream_id);
                        }
                    }
                    spdy::Frame::RstStream { stream_id } => {
                        routes.remove(&stream_id);
                    }
                    spdy::Frame::Ping(id) => {
                        let _ = out.send(Out::Ping(id)).await;
                    }
                    spdy::Frame::GoAway => break,
                    spdy::Frame::Ignored => {}
                }
            }
        });
        (
            new_rx,
            Session {
                out: out_tx,
                writer,
                reader,
            },
        )
    }

    /// Ends the session once everything queued is written: GOAWAY, then the connection closes
    /// when the client is done with it.
    async fn close(self) {
        drop(self.out);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.writer).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.reader).await;
    }
}

/// hyper's upgraded connection as a tokio stream.
struct TokioIo(hyper::upgrade::Upgraded);

impl AsyncRead for TokioIo {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let mut io = hyper_util::rt::TokioIo::new(&mut self.get_mut().0);
        std::pin::Pin::new(&mut io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TokioIo {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let mut io = hyper_util::rt::TokioIo::new(&mut self.get_mut().0);
        std::pin::Pin::new(&mut io).poll_write(cx, buf)
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let mut io = hyper_util::rt::TokioIo::new(&mut self.get_mut().0);
        std::pin::Pin::new(&mut io).poll_flush(cx)
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let mut io = hyper_util::rt::TokioIo::new(&mut self.get_mut().0);
        std::pin::Pin::new(&mut io).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// port-forward

/// `/portForward/{namespace}/{pod}/{uid}`.
pub async fn port_forward(
    State(streams): State<Arc<Streams>>,
    Path((_namespace, pod, uid)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let Some(sandbox) = crate::linux::pod_sandbox(&streams.state_dir, &uid) else {
        return text(
            500,
            format!("pod {pod} has no network namespace on this node"),
        );
    };
    let target = Forward {
        netns: sandbox.netns_path(),
        pod: sandbox.id.clone(),
        uid,
    };
    if is_websocket(&req) {
        let ports: Vec<u16> = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .filter(|(k, _)| k == "ports")
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(|p| p.trim().parse::<u16>())
                    .collect::<Vec<_>>()
            })
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        let (mut parts, _) = req.into_parts();
        let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(ws) => ws.protocols([TUNNEL_PROTOCOL, "v4.channel.k8s.io"]),
            Err(rejection) => return axum::response::IntoResponse::into_response(rejection),
        };
        let tunnel = ws.selected_protocol().is_some_and(|p| p == TUNNEL_PROTOCOL);
        if !tunnel && ports.is_empty() {
            return text(400, "query parameter \"port\" is required".into());
        }
        return ws.on_upgrade(move |socket| async move {
            if tunnel {
                spdy_port_forward(websocket_bytes(socket), target).await
            } else {
                ws_port_forward(socket, target, ports).await
            }
        });
    }
    spdy_upgrade(req, &[PORT_FORWARD_PROTOCOL], move |io, _| async move {
        spdy_port_forward(TokioIo(io), target).await
    })
}

/// Where forwarded connections go.
#[derive(Clone)]
struct Forward {
    netns: PathBuf,
    /// The sandbox ID, as CRI runtimes name the pod in their errors.
    pod: String,
    uid: String,
}

impl Forward {
    async fn connect(&self, port: u16) -> Result<tokio::net::TcpStream, String> {
        let netns = self.netns.clone();
        let connected =
            tokio::task::spawn_blocking(move || runtime::sandbox::connect_in_netns(&netns, port))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .and_then(|s| {
                    s.set_nonblocking(true).map_err(|e| e.to_string())?;
                    tokio::net::TcpStream::from_std(s).map_err(|e| e.to_string())
                });
        connected.map_err(|err| {
            format!(
                "error forwarding port {port} to pod {}, uid {}: failed to execute portforward in network namespace {:?}: failed to connect to localhost:{port} inside namespace {:?}, {err} ",
                self.pod,
                self.uid,
                self.netns.display().to_string(),
                self.pod,
            )
        })
    }
}

/// Pumps one forwarded connection: `incoming` to the socket, the socket to `outgoing`. It is over
/// when the pod's side closes; the client's end closing only half-closes the socket.
async fn pump(
    socket: tokio::net::TcpStream,
    mut incoming: mpsc::Receiver<Vec<u8>>,
    outgoing: mpsc::Sender<Vec<u8>>,
) {
    let (read, mut write) = socket.into_split();
    let upstream = tokio::spawn(async move {
        while let Some(chunk) = incoming.recv().await {
            if write.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = write.shutdown().await;
    });
    copy_out(read, outgoing).await;
    upstream.abort();
}

async fn spdy_port_forward<IO>(io: IO, target: Forward)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut incoming, session) = Session::start(io);
    // Streams come in pairs, an error stream and a data stream with the same request ID.
    let mut errors: HashMap<String, SessionStream> = HashMap::new();
    while let Some(stream) = incoming.recv().await {
        let request = stream
            .header("requestid")
            .unwrap_or_else(|| stream.id.to_string());
        match stream.header("streamtype").as_deref() {
            Some("error") => {
                errors.insert(request, stream);
            }
            Some("data") => {
                let error = errors.remove(&request);
                let target = target.clone();
                tokio::spawn(async move { forward_stream(stream, error, target).await });
            }
            _ => {
                let _ = stream.out.send(Out::Reset(stream.id)).await;
            }
        }
    }
    session.close().await;
}

async fn forward_stream(data: SessionStream, error: Option<SessionStream>, target: Forward) {
    let port = data.header("port").and_then(|p| p.parse::<u16>().ok());
    let connected = match port {
        Some(port) => target.connect(port).await,
        None => Err("\"port\" header is required".to_string()),
    };
    match connected {
        Ok(socket) => {
            let (out, finished) = data.sender();
            pump(socket, data.incoming, out).await;
            let _ = finished.await;
        }
        Err(message) => {
            tracing::debug!(%message, "port-forward");
            if let Some(e) = &error {
                e.write(message.into_bytes()).await;
            }
            data.finish().await;
        }
    }
    if let Some(e) = error {
        e.finish().await;
    }
}

async fn ws_port_forward(socket: WebSocket, target: Forward, ports: Vec<u16>) {
    let (mut sink, mut source) = socket.split();
    // Every channel opens with the port it carries, little-endian.
    for (i, port) in ports.iter().enumerate() {
        for channel in [2 * i as u8, 2 * i as u8 + 1] {
            let mut frame = vec![channel];
            frame.extend_from_slice(&port.to_le_bytes());
            if sink.send(Message::Binary(frame.into())).await.is_err() {
                return;
            }
        }
    }
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Vec<u8>)>(64);
    let mut inputs: HashMap<u8, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut forwards = Vec::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let (data, err) = (2 * i as u8, 2 * i as u8 + 1);
        let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(16);
        inputs.insert(data, in_tx);
        let (out, target) = (out_tx.clone(), target.clone());
        forwards.push(tokio::spawn(async move {
            match target.connect(port).await {
                Ok(socket) => {
                    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
                    let relay = out.clone();
                    let relayed = tokio::spawn(async move {
                        while let Some(chunk) = rx.recv().await {
                            if relay.send((data, chunk)).await.is_err() {
                                return;
                            }
                        }
                    });
                    pump(socket, in_rx, tx).await;
                    let _ = relayed.await;
                }
                Err(message) => {
                    let _ = out.send((err, message.into_bytes())).await;
                }
            }
        }));
    }
    drop(out_tx);
    let writer = tokio::spawn(async move {
        while let Some((channel, data)) = out_rx.recv().await {
            let mut frame = vec![channel];
            frame.extend_from_slice(&data);
            if sink.send(Message::Binary(frame.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = source.next().await {
            let data = match payload(msg) {
                Some(Some(data)) => data,
                Some(None) => continue,
                None => break,
            };
            if let Some((channel, payload)) = data.split_first() {
                if let Some(tx) = inputs.get(channel) {
                    let _ = tx.send(payload.to_vec()).await;
                }
            }
        }
    });
    for f in forwards {
        let _ = f.await;
    }
    let _ = writer.await;
    reader.abort();
}

/// A WebSocket whose binary messages carry one byte stream each way (kubectl's SPDY tunnel).
fn websocket_bytes(socket: WebSocket) -> tokio::io::DuplexStream {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (mut read_half, mut write_half) = tokio::io::split(ours);
    let (mut sink, mut source) = socket.split();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = source.next().await {
            let written = match msg {
                Message::Binary(b) => write_half.write_all(&b).await,
                Message::Close(_) => break,
                _ => Ok(()),
            };
            if written.is_err() {
                break;
            }
        }
        let _ = write_half.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match read_half.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(buf[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = sink
            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
    });
    theirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_flags_parse_as_go_does() {
        let r = exec_request(Some(
            "command=sh&command=-c&command=exit%203&stdin=True&stdout=1&stderr=true&tty=false",
        ));
        assert_eq!(r.command, ["sh", "-c", "exit 3"]);
        assert!(r.stdin && r.stdout && r.stderr && !r.tty);
        let t = exec_request(Some(
            "command=sh&stdin=true&stdout=true&stderr=true&tty=true",
        ));
        assert!(t.tty && !t.stderr, "a terminal has no separate stderr");
    }

    #[test]
    fn exit_statuses_read_as_the_kubelet_writes_them() {
        let req = ExecRequest {
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
            ..Default::default()
        };
        let ok: serde_json::Value = serde_json::from_slice(&exit_status(&req, &Ok(0))).unwrap();
        assert_eq!(ok, serde_json::json!({"metadata": {}, "status": "Success"}));
        let failed: serde_json::Value = serde_json::from_slice(&exit_status(&req, &Ok(3))).unwrap();
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(failed["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(failed["details"]["causes"][0]["message"], "3");
        assert_eq!(
            failed["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
    }

    #[test]
    fn resize_messages_may_hold_several_sizes() {
        assert_eq!(
            parse_sizes(b"{\"Width\":80,\"Height\":24}\n{\"Width\":120,\"Height\":40}\n"),
            vec![(80, 24), (120, 40)]
        );
    }
}
