//! The kuard web app: its routes, HTML pages, JSON APIs and the state behind them.
//!
//! - `/`, `/-/env`, `/-/mem`: HTML pages about this process.
//! - `/healthy`, `/ready`: probes, `200 ok` unless told to fail through `PUT /healthy/api` or
//!   `PUT /ready/api` with `{"failNext": N}` (see [`crate::probe`]).
//! - `/env/api`: the command line and environment as JSON.
//! - `/mem/api`: bytes held by the memory page plus the kernel's view (`/proc/self/status`);
//!   `POST /mem/api/alloc?size=BYTES` allocates and touches that many bytes and keeps them (so a
//!   container memory limit really is hit); `POST /mem/api/clear` releases them.
//! - `/metrics`: Prometheus text with request counters.
//!
//! Every request is logged to stdout as `<remote addr> <METHOD> <URL>`.

use std::collections::BTreeMap;
use std::collections::TryReserveError;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{ConnectInfo, MatchedPath, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::probe::DebugProbe;

/// The size the memory page's "Allocate" button asks for: 500 MiB.
const ALLOCATE_BUTTON_BYTES: u64 = 500 * 1024 * 1024;

/// The byte written over every allocated block, so each page is really resident.
const FILL: u8 = 0x5a;

/// The `/proc/self/status` fields reported by `/mem/api`, all in kB there and bytes here.
const PROC_STATUS_FIELDS: [&str; 7] = [
    "VmPeak", "VmSize", "VmHWM", "VmRSS", "VmData", "RssAnon", "RssFile",
];

/// State shared by all requests; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    command_line: Vec<String>,
    liveness: DebugProbe,
    readiness: DebugProbe,
    memory: Mutex<MemoryHog>,
    requests: Mutex<BTreeMap<RequestKey, u64>>,
}

/// What `/metrics` counts requests by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RequestKey {
    method: String,
    route: String,
    code: u16,
}

impl AppState {
    /// State for a process started with `command_line` (argv, program name first).
    pub fn new(command_line: Vec<String>) -> Self {
        let shared = Shared {
            command_line,
            liveness: DebugProbe::default(),
            readiness: DebugProbe::default(),
            memory: Mutex::new(MemoryHog::default()),
            requests: Mutex::new(BTreeMap::new()),
        };
        AppState {
            shared: Arc::new(shared),
        }
    }

    fn memory(&self) -> MutexGuard<'_, MemoryHog> {
        self.shared
            .memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn requests(&self) -> MutexGuard<'_, BTreeMap<RequestKey, u64>> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn count_request(&self, key: RequestKey) {
        *self.requests().entry(key).or_insert(0) += 1;
    }
}

/// The memory the memory page was asked to hold on to.
#[derive(Debug, Default)]
pub struct MemoryHog {
    blocks: Vec<Vec<u8>>,
}

impl MemoryHog {
    /// Bytes held.
    pub fn allocated(&self) -> u64 {
        self.blocks.iter().map(|block| block.len() as u64).sum()
    }

    /// Number of separate allocations held.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Holds on to `block` until [`MemoryHog::clear`].
    pub fn keep(&mut self, block: Vec<u8>) {
        self.blocks.push(block);
    }

    /// Releases everything held and returns how many bytes that was.
    pub fn clear(&mut self) -> u64 {
        let freed = self.allocated();
        self.blocks = Vec::new();
        freed
    }
}

/// Allocates `size` bytes and writes every one of them, so the pages count against the
/// container's memory limit instead of staying lazily mapped.
pub fn touched_block(size: usize) -> Result<Vec<u8>, TryReserveError> {
    let mut block = Vec::new();
    block.try_reserve_exact(size)?;
    block.resize(size, FILL);
    Ok(block)
}

/// The app's routes, with request logging and counting around all of them.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index_page))
        .route("/-/env", get(env_page))
        .route("/-/mem", get(mem_page))
        .merge(state.shared.liveness.routes("/healthy"))
        .merge(state.shared.readiness.routes("/ready"))
        .route("/env/api", get(env_api))
        .route("/mem/api", get(mem_api))
        .route("/mem/api/alloc", post(mem_alloc))
        .route("/mem/api/clear", post(mem_clear))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), log_and_count))
        .with_state(state)
}

/// Logs `<remote addr> <METHOD> <URL>` and counts the request by method, route and status.
async fn log_and_count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "-".to_owned(), |info| info.0.to_string());
    println!("{remote} {} {}", request.method(), request.uri());
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state.count_request(RequestKey {
        method,
        route,
        code: response.status().as_u16(),
    });
    response
}

async fn index_page() -> Html<String> {
    let body = format!(
        "<p>Hello from <b>{host}</b>. This is kuard {version}, a compatible rebuild of the \
         \"Kubernetes: Up and Running\" demo app.</p>\n\
         <ul>\n\
         <li><a href=\"/-/env\">Server Env</a></li>\n\
         <li><a href=\"/-/mem\">Memory</a></li>\n\
         <li><a href=\"/healthy\">Liveness probe</a> and \
         <a href=\"/ready\">readiness probe</a></li>\n\
         <li>APIs: <a href=\"/env/api\">/env/api</a>, <a href=\"/mem/api\">/mem/api</a>, \
         <a href=\"/metrics\">/metrics</a></li>\n\
         </ul>\n",
        host = escape(&hostname()),
        version = env!("CARGO_PKG_VERSION"),
    );
    page("kuard", &body)
}

async fn env_page(State(state): State<AppState>) -> Html<String> {
    let mut body = String::from("<h2>Command line</h2>\n<pre>");
    body.push_str(&escape(&state.shared.command_line.join(" ")));
    body.push_str("</pre>\n<h2>Environment</h2>\n<table>\n");
    for (name, value) in environment() {
        let _ = writeln!(
            body,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(&name),
            escape(&value)
        );
    }
    body.push_str("</table>\n");
    page("Server Env", &body)
}

async fn mem_page(State(state): State<AppState>) -> Html<String> {
    let allocated = state.memory().allocated();
    let rss = read_proc_status().get("VmRSS").copied().unwrap_or(0);
    let body = format!(
        "<p>Allocated by this page: <b>{allocated}</b> ({allocated_mib})</p>\n\
         <p>Resident set size of the process: <b>{rss}</b> ({rss_mib})</p>\n\
         <form method=\"post\" action=\"/mem/api/alloc?size={ALLOCATE_BUTTON_BYTES}\">\
         <button type=\"submit\">Allocate 500 MiB</button></form>\n\
         <form method=\"post\" action=\"/mem/api/clear\">\
         <button type=\"submit\">Free</button></form>\n",
        allocated_mib = mebibytes(allocated),
        rss_mib = mebibytes(rss),
    );
    page("Memory", &body)
}

async fn env_api(State(state): State<AppState>) -> Json<Value> {
    let env: Map<String, Value> = environment()
        .into_iter()
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    Json(json!({ "commandLine": state.shared.command_line, "env": env }))
}

async fn mem_api(State(state): State<AppState>) -> Json<Value> {
    Json(mem_snapshot(&state))
}

#[derive(Debug, Deserialize)]
struct AllocParams {
    size: u64,
}

async fn mem_alloc(
    State(state): State<AppState>,
    Query(params): Query<AllocParams>,
    headers: HeaderMap,
) -> Response {
    let Ok(size) = usize::try_from(params.size) else {
        return (StatusCode::BAD_REQUEST, "size does not fit in memory\n").into_response();
    };
    // Writing hundreds of MiB takes a while: keep it off the async worker.
    let block = match tokio::task::spawn_blocking(move || touched_block(size)).await {
        Ok(Ok(block)) => block,
        Ok(Err(err)) => {
            let message = format!("cannot allocate {size} bytes: {err}\n");
            return (StatusCode::INSUFFICIENT_STORAGE, message).into_response();
        }
        Err(err) => {
            let message = format!("allocation failed: {err}\n");
            return (StatusCode::INTERNAL_SERVER_ERROR, message).into_response();
        }
    };
    state.memory().keep(block);
    mem_response(&state, &headers)
}

async fn mem_clear(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.memory().clear();
    mem_response(&state, &headers)
}

/// After a change: browsers (the memory page's forms) go back to the page, API clients get JSON.
fn mem_response(state: &AppState, headers: &HeaderMap) -> Response {
    if wants_html(headers) {
        Redirect::to("/-/mem").into_response()
    } else {
        Json(mem_snapshot(state)).into_response()
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn mem_snapshot(state: &AppState) -> Value {
    let (allocated, blocks) = {
        let memory = state.memory();
        (memory.allocated(), memory.block_count())
    };
    let process: Map<String, Value> = read_proc_status()
        .into_iter()
        .map(|(field, bytes)| (field, Value::from(bytes)))
        .collect();
    json!({ "allocated": allocated, "blocks": blocks, "process": process })
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let content_type = [(
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    )];
    (content_type, render_metrics(&state))
}

fn render_metrics(state: &AppState) -> String {
    let mut out = String::from(
        "# HELP kuard_http_requests_total HTTP requests served, by method, route and status code.\n\
         # TYPE kuard_http_requests_total counter\n",
    );
    for (key, count) in state.requests().iter() {
        let _ = writeln!(
            out,
            "kuard_http_requests_total{{method=\"{}\",route=\"{}\",code=\"{}\"}} {count}",
            label_value(&key.method),
            label_value(&key.route),
            key.code,
        );
    }
    let allocated = state.memory().allocated();
    let _ = write!(
        out,
        "# HELP kuard_memory_allocated_bytes Bytes held by the memory page.\n\
         # TYPE kuard_memory_allocated_bytes gauge\n\
         kuard_memory_allocated_bytes {allocated}\n"
    );
    out
}

/// Escapes a Prometheus label value.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The process environment, sorted by name; non-UTF-8 bytes are replaced.
fn environment() -> BTreeMap<String, String> {
    std::env::vars_os()
        .map(|(name, value)| {
            (
                name.to_string_lossy().into_owned(),
                value.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

fn read_proc_status() -> BTreeMap<String, u64> {
    std::fs::read_to_string("/proc/self/status")
        .map(|text| parse_proc_status(&text))
        .unwrap_or_default()
}

/// Picks [`PROC_STATUS_FIELDS`] out of `/proc/<pid>/status` text, converted from kB to bytes.
fn parse_proc_status(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (field, rest) = line.split_once(':')?;
            if !PROC_STATUS_FIELDS.contains(&field) {
                return None;
            }
            let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
            Some((field.to_owned(), kib * 1024))
        })
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A complete HTML page with the shared header and navigation.
fn page(title: &str, body: &str) -> Html<String> {
    let title = escape(title);
    Html(format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>{title} - kuard</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}th{{text-align:left;padding-right:1em}}\
         td{{font-family:monospace;word-break:break-all}}form{{display:inline;margin-right:1em}}\
         </style></head>\n<body>\n\
         <nav><a href=\"/\">kuard</a> | <a href=\"/-/env\">Server Env</a> | \
         <a href=\"/-/mem\">Memory</a></nav>\n<h1>{title}</h1>\n{body}</body>\n</html>\n"
    ))
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Method;
    use tower::ServiceExt;

    fn request(method: Method, uri: &str) -> Request {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .expect("request")
    }

    async fn send(app: &Router, request: Request) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, headers, body.to_vec())
    }

    async fn send_json(app: &Router, request: Request) -> Value {
        let (status, _, body) = send(app, request).await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_slice(&body).expect("json body")
    }

    fn test_app() -> Router {
        router(AppState::new(vec![
            "/kuard".to_owned(),
            "--address=:8081".to_owned(),
        ]))
    }

    #[test]
    fn memory_bookkeeping_adds_up_and_clears() {
        let mut hog = MemoryHog::default();
        assert_eq!((hog.allocated(), hog.block_count()), (0, 0));
        hog.keep(touched_block(3).expect("alloc"));
        hog.keep(touched_block(5000).expect("alloc"));
        assert_eq!((hog.allocated(), hog.block_count()), (5003, 2));
        assert_eq!(hog.clear(), 5003);
        assert_eq!((hog.allocated(), hog.block_count()), (0, 0));
    }

    #[test]
    fn touched_blocks_are_written_all_the_way() {
        let block = touched_block(3 * 4096 + 1).expect("alloc");
        assert_eq!(block.len(), 3 * 4096 + 1);
        assert!(block.iter().all(|&byte| byte == FILL));
        assert!(touched_block(0).expect("empty").is_empty());
    }

    #[test]
    fn impossible_allocations_are_errors_not_aborts() {
        assert!(touched_block(usize::MAX).is_err());
    }

    #[test]
    fn proc_status_fields_are_read_in_bytes() {
        let text = "Name:\tkuard\nVmPeak:\t  10240 kB\nVmRSS:\t    512 kB\nThreads:\t2\n";
        let fields = parse_proc_status(text);
        assert_eq!(fields.get("VmPeak"), Some(&(10240 * 1024)));
        assert_eq!(fields.get("VmRSS"), Some(&(512 * 1024)));
        assert_eq!(fields.len(), 2);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[tokio::test]
    async fn probes_answer_ok() {
        let app = test_app();
        for uri in ["/healthy", "/ready"] {
            let (status, _, body) = send(&app, request(Method::GET, uri)).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert_eq!(body, b"ok", "{uri}");
        }
    }

    #[tokio::test]
    async fn probes_fail_as_often_as_asked_then_pass_again() {
        let app = test_app();
        let mut put = request(Method::PUT, "/ready/api");
        *put.body_mut() = Body::from(r#"{"failNext": 2}"#);
        put.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            "application/json".parse().expect("header"),
        );
        let (status, _, body) = send(&app, put).await;
        assert_eq!(status, StatusCode::OK);
        let set: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(set["failNext"], 2);
        let answers = [
            (StatusCode::INTERNAL_SERVER_ERROR, "fail, 1 left"),
            (StatusCode::INTERNAL_SERVER_ERROR, "fail, 0 left"),
            (StatusCode::OK, "ok"),
        ];
        for (code, text) in answers {
            let (status, _, body) = send(&app, request(Method::GET, "/ready")).await;
            assert_eq!((status, body.as_slice()), (code, text.as_bytes()));
        }
        let (status, _, _) = send(&app, request(Method::GET, "/healthy")).await;
        assert_eq!(status, StatusCode::OK, "the liveness probe is separate");
        let seen = send_json(&app, request(Method::GET, "/ready/api")).await;
        let codes: Vec<u64> = seen["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter_map(|e| e["code"].as_u64())
            .collect();
        assert_eq!(codes, [200, 500, 500], "newest first");
    }

    #[tokio::test]
    async fn env_api_reports_command_line_and_environment() {
        let value = send_json(&test_app(), request(Method::GET, "/env/api")).await;
        assert_eq!(value["commandLine"], json!(["/kuard", "--address=:8081"]));
        assert!(value["env"].is_object());
        if let Ok(path) = std::env::var("PATH") {
            assert_eq!(value["env"]["PATH"], Value::String(path));
        }
    }

    #[tokio::test]
    async fn mem_api_allocates_and_clears() {
        let app = test_app();
        let value = send_json(&app, request(Method::POST, "/mem/api/alloc?size=8192")).await;
        assert_eq!(value["allocated"], json!(8192));
        assert_eq!(value["blocks"], json!(1));

        let value = send_json(&app, request(Method::GET, "/mem/api")).await;
        assert_eq!(value["allocated"], json!(8192));

        let value = send_json(&app, request(Method::POST, "/mem/api/clear")).await;
        assert_eq!(value["allocated"], json!(0));

        let (status, _, _) = send(&app, request(Method::POST, "/mem/api/alloc")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "size is required");
    }

    #[tokio::test]
    async fn browser_form_posts_go_back_to_the_memory_page() {
        let app = test_app();
        let mut post = request(Method::POST, "/mem/api/clear");
        post.headers_mut()
            .insert(header::ACCEPT, "text/html,*/*".parse().expect("header"));
        let (status, headers, _) = send(&app, post).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers.get(header::LOCATION).expect("location"), "/-/mem");
    }

    #[tokio::test]
    async fn pages_link_to_each_other() {
        let app = test_app();
        let (_, _, index) = send(&app, request(Method::GET, "/")).await;
        let index = String::from_utf8(index).expect("utf-8");
        assert!(index.contains("href=\"/-/env\"") && index.contains("href=\"/-/mem\""));

        let (_, _, mem) = send(&app, request(Method::GET, "/-/mem")).await;
        let mem = String::from_utf8(mem).expect("utf-8");
        assert!(
            mem.contains("action=\"/mem/api/alloc?size=524288000\""),
            "{mem}"
        );
        assert!(mem.contains("Allocate 500 MiB"));
    }

    #[tokio::test]
    async fn metrics_count_requests_by_route_and_code() {
        let app = test_app();
        send(&app, request(Method::GET, "/healthy")).await;
        send(&app, request(Method::GET, "/healthy")).await;
        send(&app, request(Method::GET, "/nowhere")).await;
        let (status, headers, body) = send(&app, request(Method::GET, "/metrics")).await;
        assert_eq!(status, StatusCode::OK);
        let content_type = headers.get(header::CONTENT_TYPE).expect("content type");
        assert!(content_type
            .to_str()
            .expect("ascii")
            .starts_with("text/plain"));
        let text = String::from_utf8(body).expect("utf-8");
        assert!(
            text.contains(
                "kuard_http_requests_total{method=\"GET\",route=\"/healthy\",code=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "kuard_http_requests_total{method=\"GET\",route=\"unmatched\",code=\"404\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("kuard_memory_allocated_bytes 0"), "{text}");
    }
}
