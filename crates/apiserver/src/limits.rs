//! What one client can hold of the server: requests in flight (`--max-requests-inflight`,
//! `--max-mutating-requests-inflight`; long-running watches, streams and followed logs are not
//! counted, as in kube-apiserver), answered 429 with `Retry-After` when full; and the time a
//! connection may take to finish its TLS handshake or send a request's headers.

use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers (kube-apiserver's 32 s).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(32);

/// The in-flight limits of one server; a limit of 0 is no limit.
#[derive(Clone)]
pub struct InFlight {
    readonly: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

fn semaphore(limit: usize) -> Option<Arc<Semaphore>> {
    (limit > 0).then(|| Arc::new(Semaphore::new(limit)))
}

/// Watches, exec/attach/port-forward, proxies and followed logs run as long as the client wants.
fn long_running(method: &http::Method, uri: &http::Uri) -> bool {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    let flag = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .any(|(k, v)| k == name && (v == "true" || v == "1"))
    };
    path.contains("/watch/")
        || flag("watch")
        || ["/exec", "/attach", "/portforward", "/proxy"]
            .iter()
            .any(|s| path.ends_with(s))
        || (path.ends_with("/log") && flag("follow"))
        || (method == http::Method::CONNECT)
}

impl InFlight {
    pub fn new(max_readonly: usize, max_mutating: usize) -> Self {
        InFlight {
            readonly: semaphore(max_readonly),
            mutating: semaphore(max_mutating),
        }
    }

    /// Lets a request in, holding its place until the permit drops; [`Full`] when its kind of
    /// request is at its limit.
    pub fn admit(
        &self,
        method: &http::Method,
        uri: &http::Uri,
    ) -> Result<Option<OwnedSemaphorePermit>, Full> {
        if long_running(method, uri) {
            return Ok(None);
        }
        let mutating = !matches!(
            *method,
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        );
        let pool = if mutating {
            &self.mutating
        } else {
            &self.readonly
        };
        let Some(pool) = pool else {
            return Ok(None);
        };
        pool.clone().try_acquire_owned().map(Some).map_err(|_| Full)
    }
}

/// The server has as many requests of this kind in flight as it takes.
#[derive(Debug)]
pub struct Full;

impl IntoResponse for Full {
    /// kube-apiserver's answer when it is full.
    fn into_response(self) -> Response {
        too_many_requests()
    }
}

fn too_many_requests() -> Response {
    let mut err = api::ApiError::new(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
    );
    err.kind = None;
    let mut status = err.to_status();
    status["details"] = serde_json::json!({"retryAfterSeconds": 1});
    let mut response = crate::http::json(429, &status).into_response();
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> http::Uri {
        s.parse().expect("uri")
    }

    #[test]
    fn requests_past_the_limit_are_told_to_come_back() {
        let limits = InFlight::new(1, 1);
        let list = uri("/api/v1/pods");
        let held = limits.admit(&http::Method::GET, &list).expect("first");
        assert!(held.is_some());
        let refused = limits
            .admit(&http::Method::GET, &list)
            .expect_err("full")
            .into_response();
        assert_eq!(refused.status(), 429);
        assert_eq!(refused.headers()[http::header::RETRY_AFTER], "1");
        // Writes have their own limit, and long-running requests none.
        assert!(limits.admit(&http::Method::POST, &list).is_ok());
        let watch = uri("/api/v1/pods?watch=true");
        assert!(limits
            .admit(&http::Method::GET, &watch)
            .expect("watch")
            .is_none());
        let follow = uri("/api/v1/namespaces/d/pods/p/log?follow=true");
        assert!(limits.admit(&http::Method::GET, &follow).is_ok());
        drop(held);
        assert!(
            limits.admit(&http::Method::GET, &list).is_ok(),
            "a place freed"
        );
        let unlimited = InFlight::new(0, 0);
        assert!(unlimited
            .admit(&http::Method::GET, &list)
            .expect("no limit")
            .is_none());
    }
}
