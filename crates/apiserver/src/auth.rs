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

/// The user name and groups kube-apiserver would give the request's user.
pub fn identity(user: Option<&User>) -> (String, Vec<String>) {
    let authenticated = "system:authenticated".to_string();
    match user {
        None => (
            "system:anonymous".into(),
            vec!["system:unauthenticated".into()],
        ),
        Some(User::Certificate(c)) => {
            let mut groups = c.organizations.clone();
            groups.push(authenticated);
            (c.common_name.clone(), groups)
        }
        Some(User::Node) => (
            "system:node-token".into(),
            vec!["system:nodes".into(), authenticated],
        ),
        Some(User::ServiceAccount(sa)) => (
            sa.username(),
            vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", sa.namespace),
                authenticated,
            ],
        ),
    }
}

/// Who a bearer token names: the node join token, or a service-account token this server
/// signed whose account (and pod) still exist.
pub fn identify_token(server: &Server, token: &str) -> Option<User> {
    if constant_time_eq(token.as_bytes(), server.pki.node_token.as_bytes()) {
        return Some(User::Node);
    }
    if crate::tokens::Tokens::looks_like_jwt(token) {
        return crate::token_request::authenticate(server, token).map(User::ServiceAccount);
    }
    None
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
        return match identify_token(&server, token) {
            Some(user) => {
                req.extensions_mut().insert(user);
                next.run(req).await
            }
            None => error_response(&api::ApiError::unauthorized()),
        };
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
