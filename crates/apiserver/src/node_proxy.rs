//! `pods/log`, `pods/exec`, `pods/attach`, `pods/portforward`: find the pod's node and proxy the
//! request to that node agent's HTTPS server, presenting the API server's kubelet-client
//! certificate, and stream the answer back. Streaming requests are upgrades (WebSocket or
//! SPDY/3.1): the upgrade goes to the node unchanged and, once the node has switched protocols,
//! the two connections are spliced, as kube-apiserver's upgrade-aware proxy does. The protocols
//! themselves are the node's business.
//! The node's own certificate is not verified (as kube-apiserver without a kubelet CA); the node
//! verifies ours.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;

use api::ApiError;

use crate::http::Query;
use crate::rest::{consistent, Target};
use crate::Server;

#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn bad_request(message: String) -> ApiError {
    ApiError::bad_request(message)
}

/// Which container's logs, checked as kube-apiserver checks them.
fn pick_container(pod: &Value, wanted: Option<&str>) -> Result<String, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    match wanted.filter(|w| !w.is_empty()) {
        Some(w) if containers.contains(&w) => Ok(w.to_string()),
        Some(w) => Err(bad_request(format!(
            "container {w} is not valid for pod {name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].to_string()),
        None => Err(bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            containers.join(" ")
        ))),
    }
}

/// An HTTP/1.1 connection to the node agent at `addr`, authenticated with the kubelet-client
/// certificate; the connection allows upgrades.
async fn connect(
    server: &Server,
    addr: &str,
) -> Result<hyper::client::conn::http1::SendRequest<Body>, ApiError> {
    let pki = &server.pki;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = rustls_pemfile::certs(&mut pki.kubelet_client.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let key = rustls_pemfile::private_key(&mut pki.kubelet_client.key_pem.as_bytes())
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::internal("no kubelet client key"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ApiError::internal(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        .with_client_auth_cert(certs, key)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let unavailable = |e: String| unreachable_node(addr, e);
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let name = ServerName::try_from("kubelet").map_err(|e| ApiError::internal(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    tokio::spawn(conn.with_upgrades());
    Ok(sender)
}

fn unreachable_node(addr: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        500,
        "InternalError",
        format!("Internal error occurred: error dialing node agent at {addr}: {e}"),
    )
}

async fn send(
    server: &Server,
    addr: &str,
    path_and_query: &str,
) -> Result<http::Response<hyper::body::Incoming>, ApiError> {
    let mut sender = connect(server, addr).await?;
    let req = http::Request::get(path_and_query)
        .header(http::header::HOST, addr)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    sender
        .send_request(req)
        .await
        .map_err(|e| unreachable_node(addr, e))
}

/// The pod a subresource request names, from the cache.
async fn pod_of(server: &Arc<Server>, target: &Target) -> Result<Value, ApiError> {
    consistent(server).await?;
    let key = target.resource.key(
        target.namespace.as_deref(),
        target.name.as_deref().unwrap_or(""),
    );
    server
        .cache
        .get(&key)
        .map(|c| c.value())
        .ok_or_else(|| ApiError::not_found("", "pods", target.name.as_deref().unwrap_or("")))
}

/// The `host:port` of the node agent that runs `pod`.
fn node_address(server: &Server, pod: &Value) -> Result<String, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if node_name.is_empty() {
        return Err(bad_request(format!(
            "pod {pod_name} does not have a host assigned"
        )));
    }
    let node_key = api::resource::find("", "v1", "nodes")
        .map(|r| r.key(None, node_name))
        .unwrap_or_default();
    let node = server
        .cache
        .get(&node_key)
        .map(|c| c.value())
        .ok_or_else(|| bad_request(format!("node {node_name} is not registered")))?;
    let ip = node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .unwrap_or("127.0.0.1")
        .to_string();
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .unwrap_or(10250);
    Ok(format!("{ip}:{port}"))
}

/// The request headers an upgrade needs to reach the node unchanged.
const UPGRADE_HEADERS: &[&str] = &[
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
];

/// The response headers that complete the upgrade for the client.
const SWITCH_HEADERS: &[&str] = &[
    "upgrade",
    "connection",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
];

/// `pods/{name}/exec`, `attach` and `portforward` (GET for WebSocket clients, POST for SPDY).
pub async fn stream(
    server: &Arc<Server>,
    target: &Target,
    q: &Query,
    subresource: &str,
    mut req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let pod = pod_of(server, target).await?;
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let query = req.uri().query().unwrap_or("").to_string();
    let path = if subresource == "portforward" {
        format!("/portForward/{namespace}/{name}/{uid}?{query}")
    } else {
        let container = pick_container(&pod, q.get("container"))?;
        format!("/{subresource}/{namespace}/{name}/{uid}/{container}?{query}")
    };
    let addr = node_address(server, &pod)?;
    let mut upstream = http::Request::builder()
        .method(req.method().clone())
        .uri(path)
        .header(http::header::HOST, addr.as_str());
    for name in UPGRADE_HEADERS {
        for value in req.headers().get_all(*name) {
            upstream = upstream.header(*name, value);
        }
    }
    let upstream = upstream
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut sender = connect(server, &addr).await?;
    let mut answer = sender
        .send_request(upstream)
        .await
        .map_err(|e| unreachable_node(&addr, e))?;
    let status = answer.status();
    if status != http::StatusCode::SWITCHING_PROTOCOLS {
        // The node said no (container not running, protocol not offered…): pass it on as is,
        // so that clients that fall back from WebSocket to SPDY do, and report its text.
        let body = answer
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut out = Response::new(Body::from(body));
        *out.status_mut() = status;
        out.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Ok(out);
    }
    let mut out = Response::new(Body::empty());
    *out.status_mut() = status;
    for name in SWITCH_HEADERS {
        for value in answer.headers().get_all(*name) {
            out.headers_mut().append(*name, value.clone());
        }
    }
    let client_side = hyper::upgrade::on(&mut req);
    let node_side = hyper::upgrade::on(&mut answer);
    tokio::spawn(async move {
        let (client, node) = match tokio::try_join!(client_side, node_side) {
            Ok(both) => both,
            Err(err) => return tracing::debug!(%err, "a streaming upgrade did not complete"),
        };
        let mut client = TokioIo::new(client);
        let mut node = TokioIo::new(node);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut node).await;
    });
    Ok(out)
}

/// GET `pods/{name}/log`.
pub async fn logs(server: &Arc<Server>, target: &Target, q: &Query) -> Result<Response, ApiError> {
    let pod = pod_of(server, target).await?;
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
    let namespace = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    validate_log_options(q, &pod_name)?;
    let container = pick_container(&pod, q.get("container"))?;
    let addr = node_address(server, &pod)?;
    let previous = q.flag("previous");
    let status = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|s| s.iter().find(|c| c["name"] == container.as_str()))
        .cloned()
        .unwrap_or(Value::Null);
    let never_ran = status["state"]["running"].is_null()
        && status["state"]["terminated"].is_null()
        && status["lastState"]["terminated"].is_null();
    if never_ran && !previous {
        let reason = status["state"]["waiting"]["reason"]
            .as_str()
            .unwrap_or("ContainerCreating");
        return Err(bad_request(format!(
            "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {reason}"
        )));
    }
    let query = {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for k in [
            "follow",
            "previous",
            "tailLines",
            "timestamps",
            "limitBytes",
            "sinceSeconds",
            "sinceTime",
        ] {
            if let Some(v) = q.get(k) {
                query.append_pair(k, v);
            }
        }
        if let Some(uid) = pod["metadata"]["uid"].as_str() {
            query.append_pair("uid", uid);
        }
        query.finish()
    };
    let path = format!("/containerLogs/{namespace}/{pod_name}/{container}?{query}");
    let resp = send(server, &addr, &path).await?;
    let code = resp.status().as_u16();
    if code != 200 {
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(bad_request(
            String::from_utf8_lossy(&body).trim().to_string(),
        ));
    }
    let mut out = Response::new(Body::new(resp.into_body()));
    out.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    Ok(out)
}

/// `PodLogOptions` validation as kube-apiserver does it (422 with the field errors).
fn validate_log_options(q: &Query, pod_name: &str) -> Result<(), ApiError> {
    use api::validation::{BadValue, ErrorList};
    let number = |key: &str| -> Result<Option<i64>, ApiError> {
        q.get(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| bad_request(format!("invalid {key}: {v}")))
            })
            .transpose()
    };
    let mut errors = ErrorList::new();
    if let Some(n) = number("tailLines")?.filter(|n| *n < 0) {
        let detail = "must be greater than or equal to 0";
        errors.invalid("tailLines", BadValue::Int(n), detail);
    }
    if let Some(n) = number("limitBytes")?.filter(|n| *n < 1) {
        errors.invalid("limitBytes", BadValue::Int(n), "must be greater than 0");
    }
    let since = number("sinceSeconds")?;
    if since.is_some() && q.get("sinceTime").is_some() {
        let why = "at most one of `sinceTime` or `sinceSeconds` may be specified";
        // Kubernetes' empty field path prints as `[]`.
        errors.forbidden("[]", why);
    } else if let Some(n) = since.filter(|n| *n < 1) {
        errors.invalid("sinceSeconds", BadValue::Int(n), "must be greater than 0");
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid("", "PodLogOptions", pod_name, &errors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_container_must_be_named_when_there_are_several() {
        let pod = json!({"metadata": {"name": "duplicate-containers"}, "spec": {"containers": [{"name": "one"}, {"name": "two"}]}});
        let err = pick_container(&pod, None).unwrap_err();
        assert_eq!(err.message, "a container name must be specified for pod duplicate-containers, choose one of: [one two]");
        assert_eq!(pick_container(&pod, Some("two")).unwrap(), "two");
        assert_eq!(pick_container(&pod, Some("three")).unwrap_err().code, 400);
        let single =
            json!({"metadata": {"name": "k"}, "spec": {"containers": [{"name": "kuard"}]}});
        assert_eq!(pick_container(&single, None).unwrap(), "kuard");
    }
}
