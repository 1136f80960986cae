//! HTTPS: a rustls acceptor that asks for (but does not demand) a client certificate signed by the
//! cluster CA, and the accept loop that serves the router over HTTP/1.1 and HTTP/2.

use std::sync::Arc;

use axum::response::IntoResponse;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::auth::PeerCertificate;
use crate::limits::{InFlight, HANDSHAKE_TIMEOUT, HEADER_TIMEOUT};
use crate::pki::Pki;
use crate::Error;

fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("bad certificate PEM: {e}")))
}

fn key(pem: &str) -> Result<PrivateKeyDer<'static>, Error> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| Error::Config(format!("bad key PEM: {e}")))?
        .ok_or_else(|| Error::Config("no private key in PEM".into()))
}

/// The TLS configuration: our serving certificate; client certificates verified against our CA
/// when offered (requests without one may still authenticate with a bearer token).
pub fn acceptor(pki: &Pki) -> Result<TlsAcceptor, Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&pki.ca.cert_pem)? {
        roots.add(c)?;
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .allow_unauthenticated()
        .build()
        .map_err(|e| Error::Config(format!("client verifier: {e}")))?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&pki.serving.cert_pem)?, key(&pki.serving.key_pem)?)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts connections until the listener fails; each connection is served on its own task,
/// within the handshake and header timeouts and the in-flight limits of [`crate::limits`].
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router, inflight: InFlight) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let (app, inflight) = (app.clone(), inflight.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let subject = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| PeerCertificate::from_der(c.as_ref()));
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    if let Some(Some(subject)) = &subject {
                        req.extensions_mut().insert(subject.clone());
                    }
                    req.extensions_mut().insert(crate::audit::PeerAddr(peer));
                    let admitted = inflight.admit(req.method(), req.uri());
                    let app = app.clone();
                    async move {
                        let _permit = match admitted {
                            Ok(permit) => permit,
                            Err(full) => return Ok(full.into_response()),
                        };
                        app.oneshot(req.map(axum::body::Body::new)).await
                    }
                },
            );
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            if let Err(err) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, %err, "connection ended with an error");
            }
        });
    }
}
