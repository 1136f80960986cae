//! Network probes made from inside the pod's network namespace: the socket is opened by a thread
//! that entered the namespace, then driven from the async executor. Failures read as the
//! kubelet's (Go's) errors do, since users search for them.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::{GRPCAction, HTTPGetAction, TCPSocketAction};
use tokio::net::TcpStream;

use crate::machine::{ProbeOutcome, ProbeTarget};
use crate::probe::resolve_port;

/// The User-Agent the kubelet's HTTP probes send.
const USER_AGENT: &str = "kube-probe/1.33";
/// How much of a response's body is read (the kubelet's limit).
const BODY_LIMIT: usize = 10 * 1024;

fn address(host: Option<&str>, pod_ip: &str, port: u16) -> Result<SocketAddr, String> {
    let host = host.filter(|h| !h.is_empty()).unwrap_or(pod_ip);
    host.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, port))
        .map_err(|_| format!("dial tcp: lookup {host}: no such host"))
}

/// Where a probe with `port` (number or name) and `host` connects.
fn probed_address(
    port: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
    host: Option<&str>,
    target: &ProbeTarget<'_>,
) -> Result<SocketAddr, String> {
    resolve_port(port, target.container).and_then(|p| address(host, target.pod_ip, p))
}

/// Connects to `addr` from inside `netns` within `timeout`, with Go's wording of a failure.
async fn connect(netns: &Path, addr: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    let netns = netns.to_path_buf();
    let made = tokio::task::spawn_blocking(move || {
        runtime::sandbox::in_netns(&netns, move || {
            let s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
    })
    .await
    .map_err(|e| e.to_string())?;
    match made {
        Ok(s) => TcpStream::from_std(s).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            Err(format!("dial tcp {addr}: i/o timeout"))
        }
        Err(e) => Err(format!(
            "dial tcp {addr}: connect: {}",
            runtime::sandbox::os_text(&e)
        )),
    }
}

pub async fn tcp(
    netns: &Path,
    target: ProbeTarget<'_>,
    action: &TCPSocketAction,
    timeout: Duration,
) -> ProbeOutcome {
    let addr = match probed_address(&action.port, action.host.as_deref(), &target) {
        Ok(a) => a,
        Err(e) => return ProbeOutcome::Unknown(e),
    };
    match connect(netns, addr, timeout).await {
        Ok(_) => ProbeOutcome::Success,
        Err(e) => ProbeOutcome::Failure(e),
    }
}

pub async fn http(
    netns: &Path,
    target: ProbeTarget<'_>,
    action: &HTTPGetAction,
    timeout: Duration,
) -> ProbeOutcome {
    let addr = match probed_address(&action.port, action.host.as_deref(), &target) {
        Ok(a) => a,
        Err(e) => return ProbeOutcome::Unknown(e),
    };
    let https = action.scheme.as_deref() == Some("HTTPS");
    let path = match action.path.as_deref() {
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) => format!("/{p}"),
        None => "/".to_string(),
    };
    let url = format!("{}://{addr}{path}", if https { "https" } else { "http" });
    let attempt = async {
        let stream = connect(netns, addr, timeout).await?;
        let request = http_request(action, &addr, &path)?;
        let response = if https {
            send_http1(tls(stream).await?, request).await?
        } else {
            send_http1(stream, request).await?
        };
        Ok::<_, String>(response)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => ProbeOutcome::Failure(format!(
            "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Ok(Err(e)) => ProbeOutcome::Failure(format!("Get \"{url}\": {e}")),
        Ok(Ok((status, body))) => http_outcome(status, &body),
    }
}

/// 2xx passes; 3xx passes with a warning (the kubelet does not follow it to another host).
fn http_outcome(status: u16, body: &[u8]) -> ProbeOutcome {
    match status {
        200..=299 => ProbeOutcome::Success,
        300..=399 => ProbeOutcome::Warning(format!(
            "Probe terminated redirects, Response body: {}",
            String::from_utf8_lossy(body)
        )),
        _ => ProbeOutcome::Failure(format!("HTTP probe failed with statuscode: {status}")),
    }
}

fn http_request(
    action: &HTTPGetAction,
    addr: &SocketAddr,
    path: &str,
) -> Result<http::Request<Full<Bytes>>, String> {
    let mut builder = http::Request::get(path)
        .header(http::header::USER_AGENT, USER_AGENT)
        .header(http::header::ACCEPT, "*/*");
    let mut host = addr.to_string();
    for h in action.http_headers.iter().flatten() {
        if h.name.eq_ignore_ascii_case("host") {
            host = h.value.clone();
        } else {
            builder = builder.header(h.name.as_str(), h.value.as_str());
        }
    }
    builder
        .header(http::header::HOST, host)
        .header(http::header::CONNECTION, "close")
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())
}

async fn send_http1<S>(
    stream: S,
    request: http::Request<Full<Bytes>>,
) -> Result<(u16, Vec<u8>), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    // Read (a bounded part of) the body, so the server sees a well-behaved client.
    let mut body = response.into_body();
    let mut read = Vec::new();
    while read.len() < BODY_LIMIT {
        match body.frame().await {
            Some(Ok(frame)) => read.extend_from_slice(frame.data_ref().map_or(&[][..], |d| d)),
            _ => break,
        }
    }
    read.truncate(BODY_LIMIT);
    Ok((status, read))
}

/// TLS without verification: the kubelet's HTTPS probes skip it too.
async fn tls(stream: TcpStream) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name =
        rustls::pki_types::ServerName::try_from("probe.invalid").map_err(|e| e.to_string())?;
    connector
        .connect(name, stream)
        .await
        .map_err(|e| e.to_string())
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Asks `grpc.health.v1.Health/Check` for the action's service; SERVING passes.
pub async fn grpc(
    netns: &Path,
    target: ProbeTarget<'_>,
    action: &GRPCAction,
    timeout: Duration,
) -> ProbeOutcome {
    let port = match u16::try_from(action.port) {
        Ok(p) if p > 0 => p,
        _ => return ProbeOutcome::Unknown(format!("invalid port number: {}", action.port)),
    };
    let addr = match address(None, target.pod_ip, port) {
        Ok(a) => a,
        Err(e) => return ProbeOutcome::Unknown(e),
    };
    let service = action.service.clone().unwrap_or_default();
    let attempt = async {
        let stream = connect(netns, addr, timeout)
            .await
            .map_err(|e| format!("error: failed to connect service at \"{addr}\": {e}"))?;
        health_check(stream, &addr, &service).await
    };
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => ProbeOutcome::Failure(format!(
            "timeout: health rpc did not complete within {}s",
            timeout.as_secs()
        )),
        Ok(Err(e)) => ProbeOutcome::Failure(e),
        Ok(Ok(1)) => ProbeOutcome::Success,
        Ok(Ok(status)) => ProbeOutcome::Failure(format!(
            "service unhealthy (responded with \"{}\")",
            serving_status(status)
        )),
    }
}

fn serving_status(status: u64) -> &'static str {
    match status {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

/// One unary gRPC call over HTTP/2; returns `HealthCheckResponse.status`.
async fn health_check(stream: TcpStream, addr: &SocketAddr, service: &str) -> Result<u64, String> {
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    // HealthCheckRequest { service = 1 } in a gRPC length-prefixed frame.
    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a);
        push_varint(&mut message, service.len() as u64);
        message.extend_from_slice(service.as_bytes());
    }
    let mut frame = vec![0];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let request = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, USER_AGENT)
        .body(Full::new(Bytes::from(frame)))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let collected = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    if let Some(status) = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .filter(|s| *s != "0")
    {
        return Err(format!(
            "error: health rpc probe failed: rpc error: code = {status}"
        ));
    }
    let body = collected.to_bytes();
    // HealthCheckResponse { status = 1 (varint) } after the 5-byte frame header; a message
    // without the field is the default, UNKNOWN.
    match body.get(5..) {
        Some([0x08, status, ..]) => Ok(u64::from(*status)),
        Some(_) => Ok(0),
        None => Err("rpc error: no response message".into()),
    }
}

/// Protobuf's base-128 varint.
fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Incoming;

    /// A gRPC health server on loopback that answers `status` and records the request body.
    async fn health_server(status: u8, seen: Arc<std::sync::Mutex<Vec<u8>>>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                let seen = seen.clone();
                async move {
                    assert_eq!(req.uri().path(), "/grpc.health.v1.Health/Check");
                    let body = req.into_body().collect().await?.to_bytes();
                    seen.lock().expect("lock").extend_from_slice(&body);
                    let frame = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]);
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let body = http_body_util::StreamBody::new(futures::stream::iter([
                        Ok::<_, hyper::Error>(hyper::body::Frame::data(frame)),
                        Ok(hyper::body::Frame::trailers(trailers)),
                    ]));
                    Ok::<_, hyper::Error>(http::Response::new(body))
                }
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        addr
    }

    #[tokio::test]
    async fn health_checks_speak_grpc_and_read_the_serving_status() {
        let long_service = "s".repeat(200);
        for (status, service, want) in [
            (1, "", Ok(1)),
            (2, "kuard", Ok(2)),
            (1, long_service.as_str(), Ok(1)),
        ] {
            let seen = Arc::default();
            let addr = health_server(status, Arc::clone(&seen)).await;
            let stream = TcpStream::connect(addr).await.expect("connect");
            let got = health_check(stream, &addr, service).await;
            assert_eq!(got, want, "{service}");
            // The request: a frame holding HealthCheckRequest { service }.
            let body = seen.lock().expect("lock").clone();
            let mut message = Vec::new();
            if !service.is_empty() {
                message.push(0x0a);
                push_varint(&mut message, service.len() as u64);
                message.extend_from_slice(service.as_bytes());
            }
            assert_eq!(
                &body[..5],
                &[&[0u8][..], &(message.len() as u32).to_be_bytes()].concat()[..]
            );
            assert_eq!(&body[5..], &message[..]);
        }
        assert_eq!(serving_status(2), "NOT_SERVING");
    }

    #[test]
    fn varints_are_base_128() {
        let mut out = Vec::new();
        push_varint(&mut out, 200);
        assert_eq!(out, [0xc8, 0x01]);
        out.clear();
        push_varint(&mut out, 5);
        assert_eq!(out, [5]);
    }
}
