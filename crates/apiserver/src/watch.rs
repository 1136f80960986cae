//! Watch: a chunked stream of `{"type":…,"object":…}` lines served from the watch cache, starting
//! with synthetic ADDED events (resourceVersion "" or "0") or at a given revision (410 Gone in an
//! ERROR event when the cache no longer reaches back that far), with bookmarks and a timeout.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};
use store::EventKind;
use tokio::sync::{broadcast, mpsc};

use api::registry;
use api::resource::Resource;
use api::selector::Selector;
use api::table::{self, IncludeObject};
use api::ApiError;

use crate::cache::{Cached, Change};
use crate::http::{Query, Wants};
use crate::rest::{self, Target};
use crate::Server;

const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

/// Everything that decides which events a watcher sees and how they look.
struct Watcher {
    resource: &'static Resource,
    prefix: String,
    labels: Selector,
    fields: Selector,
    wants: Wants,
    include: IncludeObject,
    sent_columns: bool,
}

impl Watcher {
    fn selects(&self, c: &Cached) -> bool {
        c.key.starts_with(&self.prefix) && rest::matches(c, &self.labels, &self.fields)
    }

    fn encode_object(&mut self, c: &Cached) -> Vec<u8> {
        let needs_value = self.wants != Wants::Object || self.resource.group == "events.k8s.io";
        if !needs_value {
            return c.json.to_vec();
        }
        let obj = registry::from_storage(self.resource, c.value());
        match self.wants {
            Wants::Object => return serde_json::to_vec(&obj).unwrap_or_default(),
            Wants::Metadata => {
                return serde_json::to_vec(&api::meta::partial(&obj)).unwrap_or_default()
            }
            Wants::Table => {}
        }
        let rv = api::meta::resource_version(&obj).map(str::to_string);
        let mut t = table::table(
            self.resource,
            &[&obj],
            rv.as_deref(),
            None,
            self.include,
            !self.sent_columns,
        );
        if self.sent_columns {
            t["columnDefinitions"] = Value::Null;
        }
        self.sent_columns = true;
        serde_json::to_vec(&t).unwrap_or_default()
    }

    fn line(&mut self, kind: &str, c: &Cached) -> Bytes {
        let mut out = format!("{{\"type\":\"{kind}\",\"object\":").into_bytes();
        out.extend_from_slice(&self.encode_object(c));
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }

    /// The event a change becomes for this watcher, if any: objects entering or leaving the
    /// selection become ADDED or DELETED, as Kubernetes' cacher reports them.
    fn translate(&mut self, change: &Change) -> Option<Bytes> {
        let now = self.selects(&change.object);
        let before = change.previous.as_deref().is_some_and(|p| self.selects(p));
        match change.kind {
            EventKind::Deleted => before.then(|| self.line("DELETED", &change.object)),
            _ if now && before => Some(self.line("MODIFIED", &change.object)),
            _ if now => Some(self.line("ADDED", &change.object)),
            _ if before => Some(self.line("DELETED", &change.object)),
            _ => None,
        }
    }

    fn bookmark(&self, revision: i64) -> Bytes {
        let obj = json!({"kind": self.resource.kind, "apiVersion": self.resource.api_version(), "metadata": {"resourceVersion": revision.to_string()}});
        Bytes::from(format!("{{\"type\":\"BOOKMARK\",\"object\":{obj}}}\n"))
    }
}

fn error_line(err: &ApiError) -> Bytes {
    Bytes::from(format!(
        "{{\"type\":\"ERROR\",\"object\":{}}}\n",
        err.to_status()
    ))
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream =
        tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>);
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, private"),
    );
    resp
}

use tokio_stream::StreamExt as _;

/// Serves a watch on `target` (a collection, or one object by name).
pub async fn watch(
    server: &Arc<Server>,
    target: &Target,
    q: &Query,
    wants: Wants,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    if !resource.has_verb("watch") {
        return Err(ApiError::method_not_allowed(format!(
            "watch is not supported on resources of kind \"{}\"",
            resource.plural
        )));
    }
    // A watch of one object (`/watch/.../pods/NAME`) is a collection watch selected by name.
    let field_selector = match (
        q.get("fieldSelector").filter(|f| !f.is_empty()),
        &target.name,
    ) {
        (Some(f), Some(name)) => Some(format!("{f},metadata.name={name}")),
        (None, Some(name)) => Some(format!("metadata.name={name}")),
        (f, None) => f.map(str::to_string),
    };
    let (labels, fields) =
        rest::selectors(resource, q.get("labelSelector"), field_selector.as_deref())?;
    let include = IncludeObject::parse(q.get("includeObject")).map_err(ApiError::bad_request)?;
    let timeout = match q.get("timeoutSeconds") {
        Some(t) => Duration::from_secs(
            t.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t}")))?,
        ),
        None => Duration::from_secs(1800 + rand::random::<u64>() % 1800),
    };
    let bookmarks = q.flag("allowWatchBookmarks");
    let mut watcher = Watcher {
        resource,
        prefix: resource.prefix(target.namespace.as_deref()),
        labels,
        fields,
        wants,
        include,
        sent_columns: false,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let rv = q.get("resourceVersion").filter(|s| !s.is_empty());
    // The starting point: synthetic ADDED events for the current state, or history after rv.
    let (initial, mut live, mut last) = match rv {
        None | Some("0") => {
            if rv.is_none() {
                rest::consistent(server).await?;
            }
            let (items, revision, live) = server.cache.snapshot_and_watch(&watcher.prefix);
            let mut lines = Vec::new();
            for c in &items {
                if watcher.selects(c) {
                    lines.push(watcher.line("ADDED", c));
                }
            }
            (lines, live, revision)
        }
        Some(v) => {
            let from: i64 = v
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v}")))?;
            if from > server.cache.revision() && !server.cache.wait_for(from).await {
                let mut err = ApiError::timeout(format!(
                    "Timeout: Too large resource version: {from}, current: {}",
                    server.cache.revision()
                ));
                err.causes.push(api::status::Cause {
                    reason: "ResourceVersionTooLarge".into(),
                    message: "Too large resource version".into(),
                    field: String::new(),
                });
                err.retry_after = Some(1);
                let _ = tx.try_send(error_line(&err));
                return Ok(stream_response(rx));
            }
            match server.cache.watch_from(from) {
                Ok((past, live)) => {
                    let mut last = from;
                    let mut lines = Vec::new();
                    for c in past {
                        last = c.revision;
                        if let Some(l) = watcher.translate(&c) {
                            lines.push(l);
                        }
                    }
                    (lines, live, last)
                }
                Err(oldest) => {
                    let err =
                        ApiError::gone(format!("too old resource version: {from} ({oldest})"));
                    let _ = tx.try_send(error_line(&err));
                    return Ok(stream_response(rx));
                }
            }
        }
    };
    tokio::spawn(async move {
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(watcher.bookmark(last)).await.is_err() {
                        return;
                    }
                }
                msg = live.recv() => match msg {
                    Ok(change) => {
                        if change.revision <= last {
                            continue;
                        }
                        last = change.revision;
                        if let Some(line) = watcher.translate(&change) {
                            if tx.send(line).await.is_err() {
                                return;
                            }
                        }
                    }
                    // Too slow to keep up: end the watch; the client resumes from its last revision.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    Ok(stream_response(rx))
}
