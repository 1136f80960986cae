//! Routing: one handler reads the path the way kube-apiserver lays it out and hands the request
//! to discovery, OpenAPI, health, metrics or the resource verbs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use http::{header, HeaderValue, Method};
use serde_json::json;

use api::resource::{self, RESOURCES};
use api::ApiError;

use crate::discovery;
use crate::http::{self as h, error_response, negotiate, Query};
use crate::rest::{self, Target};
use crate::Server;

/// The API server's router, for serving over TLS or calling in-process in tests.
pub fn app(server: Arc<Server>) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(axum::middleware::from_fn_with_state(
            server.clone(),
            crate::auth::authenticate,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(server)
}

/// A request that panicked ends in a 500 with kube-apiserver's text; the server goes on.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(panic = what, "a request panicked");
    h::text(
        500,
        "This request caused apiserver to panic. Look in the logs for details.\n",
    )
}

fn not_found_text() -> Response {
    h::text(404, "404 page not found\n")
}

fn not_found_status() -> Response {
    let mut err = ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    err.kind = None;
    let mut status = err.to_status();
    status["details"] = json!({});
    h::json(404, &status)
}

pub const VERSION: &str = "v1.33.0";

fn version() -> serde_json::Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": format!("{VERSION}+kubelite"),
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

const HEALTH_CHECKS: &[&str] = &[
    "ping",
    "log",
    "etcd",
    "informer-sync",
    "poststarthook/start-system-namespaces-controller",
];

/// How long a health check may take before it counts as failed.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// One named check, given what asking the store for its revision gave (asked once per request):
/// `Err` says why it failed (logged; the response withholds it, as kube-apiserver's does).
async fn check(
    server: &Server,
    name: &str,
    store: &Result<store::Revision, String>,
) -> Result<(), String> {
    match (name, store) {
        ("etcd", Err(reason)) => Err(reason.clone()),
        // The watch cache has applied everything the store holds. When the store cannot be
        // asked, the etcd check reports that.
        ("informer-sync", Ok(revision)) => {
            match tokio::time::timeout(CHECK_TIMEOUT, server.cache.wait_for(*revision)).await {
                Ok(true) => Ok(()),
                _ => Err(format!(
                    "the watch cache is at revision {}, the store at {revision}",
                    server.cache.revision()
                )),
            }
        }
        _ => Ok(()),
    }
}

/// The store's revision, or why it could not be had within [`CHECK_TIMEOUT`].
async fn store_revision(server: &Server) -> Result<store::Revision, String> {
    match tokio::time::timeout(CHECK_TIMEOUT, server.store.current_revision()).await {
        Ok(Ok(revision)) => Ok(revision),
        Ok(Err(err)) => Err(format!("the datastore failed: {err}")),
        Err(_) => Err("the datastore did not answer in time".into()),
    }
}

/// `/healthz`, `/livez`, `/readyz` and their single checks (`/readyz/etcd`): 200 `ok` when every
/// check passes, else 500 with each check's result, as kube-apiserver answers.
async fn health(server: &Server, kind: &str, only: Option<&str>, q: &Query) -> Response {
    let names: Vec<&str> = HEALTH_CHECKS
        .iter()
        .copied()
        .filter(|c| !(kind == "livez" && *c == "informer-sync"))
        .filter(|c| only.is_none_or(|o| o == *c))
        .collect();
    if names.is_empty() {
        return not_found_text();
    }
    // Only the datastore checks ask the store (a lone `/readyz/ping` must not wait on it).
    let store = if names.iter().any(|n| matches!(*n, "etcd" | "informer-sync")) {
        store_revision(server).await
    } else {
        Err("not asked".to_string())
    };
    let results = futures::future::join_all(names.iter().map(|n| check(server, n, &store))).await;
    let failed = results.iter().any(Result::is_err);
    let mut body = String::new();
    for (name, result) in names.iter().zip(&results) {
        match result {
            Ok(()) => body.push_str(&format!("[+]{name} ok\n")),
            Err(reason) => {
                tracing::warn!(check = name, %reason, "{kind} check failed");
                body.push_str(&format!("[-]{name} failed: reason withheld\n"));
            }
        }
    }
    let mut resp = if failed {
        body.push_str(&format!("{kind} check failed\n"));
        h::text(500, body)
    } else if q.get("verbose").is_some() {
        body.push_str(&format!("{kind} check passed\n"));
        h::text(200, body)
    } else {
        h::text(200, "ok")
    };
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

async fn dispatch(State(server): State<Arc<Server>>, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let audit = server.audit.as_ref().map(|_| Audited::of(&req));
    let (resp, verb, resource) = route(&server, req).await;
    let code = resp.status().as_u16();
    server
        .metrics
        .record(&verb, &resource, code, started.elapsed());
    tracing::debug!(%method, %path, code, took_ms = started.elapsed().as_secs_f64() * 1000.0, "request");
    if let (Some(log), Some(a)) = (&server.audit, audit) {
        log.record(&a.event(&verb, code));
    }
    resp
}

/// What the audit log needs of a request, taken before the router consumes it.
struct Audited {
    method: String,
    uri: String,
    user: Option<crate::auth::User>,
    peer: Option<std::net::SocketAddr>,
    user_agent: Option<String>,
    target: Option<Target>,
    received: chrono::DateTime<chrono::Utc>,
}

impl Audited {
    fn of(req: &Request) -> Audited {
        let path = req.uri().path().trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        Audited {
            method: req.method().to_string(),
            uri: req.uri().to_string(),
            user: req.extensions().get::<crate::auth::User>().cloned(),
            peer: req
                .extensions()
                .get::<crate::audit::PeerAddr>()
                .map(|p| p.0),
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            target: resource_path(&segments).and_then(|(g, v, _, rest)| parse_target(g, v, rest)),
            received: chrono::Utc::now(),
        }
    }

    fn event(&self, verb: &str, code: u16) -> serde_json::Value {
        crate::audit::event(&crate::audit::Request {
            method: &self.method,
            uri: &self.uri,
            user: self.user.as_ref(),
            peer: self.peer,
            user_agent: self.user_agent.as_deref(),
            verb,
            target: self.target.as_ref(),
            code,
            received: self.received,
        })
    }
}

/// `(group, version, watch, rest)` of a path under `/api/v1` or `/apis/GROUP/VERSION`.
fn resource_path<'a>(segments: &'a [&'a str]) -> Option<(&'a str, &'a str, bool, &'a [&'a str])> {
    let (group, version, rest): (&str, &str, &[&str]) = match segments {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return None,
    };
    Some(match rest {
        ["watch", rest @ ..] => (group, version, true, rest),
        _ => (group, version, false, rest),
    })
}

async fn route(server: &Arc<Server>, req: Request) -> (Response, String, String) {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let q = Query::parse(req.uri().query());
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let plain = |r: Response| (r, "GET".to_string(), String::new());
    match segments.as_slice() {
        ["version"] => return plain(h::json(200, &version())),
        // The CA, unauthenticated, for agents that check it against their join token's hash.
        ["cacerts"] => return plain(h::text(200, server.pki.ca.cert_pem.clone())),
        [kind @ ("healthz" | "livez" | "readyz"), rest @ ..] => {
            let only = (!rest.is_empty()).then(|| rest.join("/"));
            return plain(health(server, kind, only.as_deref(), &q).await);
        }
        ["metrics"] => {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for r in RESOURCES.iter().filter(|r| r.group != "events.k8s.io") {
                counts.insert(
                    r.plural.to_string(),
                    server.cache.list(&r.prefix(None), None).0.len(),
                );
            }
            let text = server.metrics.render(&counts, server.started.elapsed());
            let mut resp = h::text(200, text);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return plain(resp);
        }
        ["openapi", "v2"] => {
            let wants_proto = accept.as_deref().unwrap_or("").contains("protobuf");
            let resp = if wants_proto {
                let mut r = Response::new(Body::from(crate::openapi::OPENAPI_V2_PROTOBUF));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    ),
                );
                r
            } else {
                h::json(
                    200,
                    &json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": VERSION}, "paths": {}, "definitions": {}}),
                )
            };
            return plain(resp);
        }
        ["openapi", "v3"] => {
            let mut resp = h::json_bytes(200, server.openapi.index.body.clone());
            if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", server.openapi.index.hash)) {
                resp.headers_mut().insert(header::ETAG, v);
            }
            return plain(resp);
        }
        ["openapi", "v3", rest @ ..] => {
            let key = rest.join("/");
            let Some(doc) = server.openapi.by_path.get(&key) else {
                return plain(not_found_text());
            };
            let mut resp = match q.get("hash") {
                Some(hash) if hash != doc.hash => {
                    let mut r = h::text(301, "");
                    if let Ok(v) =
                        HeaderValue::from_str(&format!("/openapi/v3/{key}?hash={}", doc.hash))
                    {
                        r.headers_mut().insert(header::LOCATION, v);
                    }
                    return plain(r);
                }
                Some(_) => {
                    let mut r = h::json_bytes(200, doc.body.clone());
                    r.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, immutable"),
                    );
                    r
                }
                None => h::json_bytes(200, doc.body.clone()),
            };
            if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", doc.hash)) {
                resp.headers_mut().insert(header::ETAG, v);
            }
            return plain(resp);
        }
        ["api"] => {
            return plain(discovery_response(
                accept.as_deref(),
                true,
                &server_address(&req),
            ))
        }
        ["apis"] => return plain(discovery_response(accept.as_deref(), false, "")),
        ["api", "v1"] => {
            return plain(h::json(
                200,
                &discovery::resource_list("", "v1").unwrap_or_default(),
            ))
        }
        ["apis", group] => {
            return plain(match discovery::api_group(group) {
                Some(g) => h::json(200, &g),
                None => not_found_status(),
            })
        }
        ["apis", group, version] => {
            return plain(match discovery::resource_list(group, version) {
                Some(l) => h::json(200, &l),
                None => not_found_status(),
            })
        }
        _ => {}
    }
    let Some((group, version, watch_path, rest)) = resource_path(&segments) else {
        return plain(not_found_text());
    };
    let Some(target) = parse_target(group, version, rest) else {
        return plain(not_found_status());
    };
    let verb_resource = match &target.subresource {
        Some(s) => format!("{}/{s}", target.resource.plural),
        None => target.resource.plural.to_string(),
    };
    let (resp, verb) = serve_resource(server, req, target, q, accept.as_deref(), watch_path).await;
    (resp, verb, verb_resource)
}

fn server_address(req: &Request) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:6443")
        .to_string()
}

fn discovery_response(accept: Option<&str>, core: bool, address: &str) -> Response {
    if discovery::wants_aggregated(accept) {
        let mut resp = h::json(200, &discovery::aggregated(core));
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Accept"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public"));
        return resp;
    }
    if core {
        h::json(200, &discovery::api_versions(address))
    } else {
        h::json(200, &discovery::api_group_list())
    }
}

/// Reads `[namespaces/NS/]PLURAL[/NAME[/SUBRESOURCE]]` under a group version.
fn parse_target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && resource::find(group, version, rest[2]).is_some_and(|r| r.namespaced);
    let (namespace, rest) = if namespaced_path {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
        _ => return None,
    };
    let resource = resource::find(group, version, plural)?;
    if let Some(s) = &sub {
        if !resource.subresources.iter().any(|x| x.name == s) {
            return None;
        }
    }
    if !resource.namespaced && namespace.is_some() {
        return None;
    }
    if resource.namespaced && namespace.is_none() && name.is_some() {
        return None;
    }
    Some(Target {
        resource,
        namespace,
        name,
        subresource: sub,
    })
}

async fn serve_resource(
    server: &Arc<Server>,
    req: Request,
    target: Target,
    q: Query,
    accept: Option<&str>,
    watch_path: bool,
) -> (Response, String) {
    let method = req.method().clone();
    let user = req.extensions().get::<crate::auth::User>().cloned();
    if let Some(sub @ ("exec" | "attach" | "portforward")) = target.subresource.as_deref() {
        if target.name.is_some() && (method == Method::GET || method == Method::POST) {
            let sub = sub.to_string();
            return match crate::node_proxy::stream(server, &target, &q, &sub, req).await {
                Ok(resp) => (resp, "CONNECT".into()),
                Err(e) => (error_response(&e), "CONNECT".into()),
            };
        }
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let wants = match negotiate(accept) {
        Ok(w) => w,
        Err(e) => return (error_response(&e), method.to_string()),
    };
    let is_watch = watch_path || (method == Method::GET && q.flag("watch"));
    let verb = match (&method, target.name.is_some(), is_watch) {
        (_, _, true) => "WATCH",
        (&Method::GET, false, _) => "LIST",
        (&Method::GET, true, _) => "GET",
        (&Method::POST, _, _) => "POST",
        (&Method::PUT, _, _) => "PUT",
        (&Method::PATCH, _, _) => "PATCH",
        (&Method::DELETE, _, _) => "DELETE",
        _ => "OTHER",
    }
    .to_string();
    let body = match h::read_body(req.into_body()).await {
        Ok(b) => b,
        Err(e) => return (error_response(&e), verb),
    };
    let ct = content_type.as_deref();
    let sub = target.subresource.as_deref();
    let result = match (&method, target.name.is_some(), sub) {
        (&Method::POST, false, None) if target.resource.is_review() => {
            crate::reviews::create(server, &target, user.as_ref(), ct, body).await
        }
        _ if target.resource.is_review() => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
        _ if is_watch => crate::watch::watch(server, &target, &q, wants).await,
        (&Method::GET, false, None) => rest::list(server, &target, &q, wants).await,
        (&Method::GET, true, Some("log")) => crate::node_proxy::logs(server, &target, &q).await,
        (&Method::GET, true, None | Some("status")) => rest::get(server, &target, &q, wants).await,
        (&Method::POST, false, None) => rest::create(server, &target, &q, ct, body, wants).await,
        (&Method::POST, true, Some("binding")) => rest::bind(server, &target, ct, body).await,
        (&Method::POST, true, Some("eviction")) if target.resource.plural == "pods" => {
            crate::eviction::create(server, &target, &q, ct, body).await
        }
        (&Method::POST, true, Some("token")) if target.resource.plural == "serviceaccounts" => {
            crate::token_request::create(server, &target, ct, body).await
        }
        (&Method::PUT, true, None | Some("status")) => {
            rest::update(server, &target, &q, ct, body, wants).await
        }
        (&Method::PATCH, true, None | Some("status")) => {
            rest::patch(server, &target, &q, ct, body, wants).await
        }
        (&Method::DELETE, true, None) => rest::delete(server, &target, &q, ct, body, wants).await,
        (&Method::DELETE, false, None) => {
            rest::delete_collection(server, &target, &q, ct, body).await
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    };
    match result {
        Ok(resp) => (resp, verb),
        Err(e) => (error_response(&e), verb),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_request_gets_500_and_the_service_goes_on() {
        let app: Router = Router::new()
            .route(
                "/boom",
                axum::routing::get(|| async { panic!("boom") as &str }),
            )
            .route("/fine", axum::routing::get(|| async { "fine" }))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked));
        let get = |path: &str| Request::get(path).body(Body::empty()).expect("request");
        let boom = app.clone().oneshot(get("/boom")).await.expect("answered");
        assert_eq!(boom.status(), 500);
        let body = axum::body::to_bytes(boom.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(
            &body[..],
            b"This request caused apiserver to panic. Look in the logs for details.\n"
        );
        let fine = app.oneshot(get("/fine")).await.expect("answered");
        assert_eq!(fine.status(), 200);
    }
}
