//! Authentication: a client certificate verified by TLS against the cluster CA, or a bearer token
//! (the node join token, or a service-account token this server issued). Health endpoints are open; everything else without credentials gets 401.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::http::error_response;
use crate::Server;

/// The subject of a verified client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate {
    pub common_name: String,
    pub organizations: Vec<String>,
}

impl PeerCertificate {
    /// Reads the subject of a DER certificate (already verified by the TLS layer).
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let common_name = subject
            .iter_common_name()
            .next()?
            .as_str()
            .ok()?
            .to_string();
        let organizations = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_string))
            .collect();
        Some(PeerCertificate {
            common_name,
            organizations,
        })
    }
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum User {
    /// A client certificate: the admin, or any identity the CA signed.
    Certificate(PeerCertificate),
    /// A node agent that presented the join token.
    Node,
    /// A service-account token (`system:serviceaccount:NS:NAME`).
    ServiceAccount(ServiceAccountUser),
}

/// The identity a service-account token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountUser {
    pub namespace: String,
    pub name: String,
    /// The pod the token is bound to.
    pub pod: Option<String>,
}

impl ServiceAccountUser {
    /// `system:serviceaccount:NS:NAME`.
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }
}

fn is_open(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/livez" | "/readyz" | "/version" | "/cacerts"
    ) || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

fn bearer(req: &Request) -> Option<&str> {
    let h = req
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))?;
    Some(token.trim())
}

/// Middleware: attaches a [`User`] or answers 401.
pub async fn authenticate(
    State(server): State<Arc<Server>>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(token) = bearer(&req) {
        if constant_time_eq(token.as_bytes(), server.pki.node_token.as_bytes()) {
            req.extensions_mut().insert(User::Node);
            return next.run(req).await;
        }
        if crate::tokens::Tokens::looks_like_jwt(token) {
            if let Some(user) = crate::token_request::authenticate(&server, token) {
                req.extensions_mut().insert(User::ServiceAccount(user));
                return next.run(req).await;
            }
        }
        return error_response(&api::ApiError::unauthorized());
    }
    if let Some(cert) = req.extensions().get::<PeerCertificate>().cloned() {
        req.extensions_mut().insert(User::Certificate(cert));
        return next.run(req).await;
    }
    if is_open(req.uri().path()) {
        return next.run(req).await;
    }
    error_response(&api::ApiError::unauthorized())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
