//! kubelite's API server: the Kubernetes REST API over HTTPS, wire-compatible with kubectl
//! 1.27–1.33 and the official clients.
//!
//! Start at [`Server::start`]: it loads the PKI ([`pki`]), fills the watch cache ([`cache`]) from the
//! store, seeds the default namespaces and system PriorityClasses and serves [`app`] over TLS ([`tls`]). Requests are
//! authenticated ([`auth`]), routed by path ([`router`]) and handled per verb ([`rest`]); discovery
//! and OpenAPI documents come from [`discovery`] and [`openapi`]; watches stream from the cache
//! ([`watch`]).
//!
//! **Invariant:** every write goes through [`rest`] — decode, admission, validation, store — so
//! in-process components get exactly the checks remote clients get. Reads never touch the store;
//! they are served from the cache after it has caught up with the store's revision.

pub mod admission;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod discovery;
pub mod event_ttl;
pub mod eviction;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod node_proxy;
pub mod openapi;
pub mod pki;
pub mod protobuf;
pub mod rest;
pub mod reviews;
pub mod router;
pub mod tls;
pub mod token_request;
pub mod tokens;
pub mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use store::DynStore;

pub use router::app;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    #[error("storage: {0}")]
    Store(#[from] store::StoreError),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("service-account tokens: {0}")]
    Tokens(#[from] tokens::TokenError),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What the API server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// How often old store revisions are compacted.
    pub compaction_interval: Duration,
    /// How many past events the watch cache keeps for watches that resume at a revision.
    pub watch_cache_size: usize,
    /// Addresses besides `listen` the serving certificate must name (where pods reach it).
    pub extra_ips: Vec<std::net::IpAddr>,
    /// Requests in flight at once, reads and writes apart (0: no limit; long-running requests
    /// are not counted).
    pub max_requests_inflight: usize,
    pub max_mutating_requests_inflight: usize,
    /// How long an event lasts after its last write.
    pub event_ttl: Duration,
    /// Where the audit log goes (`-`: standard output); none without.
    pub audit_log_path: Option<PathBuf>,
    /// Where Services' cluster IPs come from.
    pub service_cluster_ip_range: api::service::IpRange,
}

/// Shared state of a running API server.
pub struct Server {
    pub store: DynStore,
    pub cache: Arc<cache::Cache>,
    pub pki: pki::Pki,
    /// Signs and checks service-account tokens.
    pub tokens: tokens::Tokens,
    pub metrics: metrics::Metrics,
    pub openapi: openapi::Documents,
    pub started: std::time::Instant,
    pub audit: Option<audit::AuditLog>,
    /// Where Services' cluster IPs come from.
    pub service_range: api::service::IpRange,
    /// Held while a Service's cluster IP and node ports are chosen and stored, so that two
    /// creates never take the same.
    pub allocating: tokio::sync::Mutex<()>,
}

/// A started server: its address and the task serving it.
pub struct Running {
    pub addr: SocketAddr,
    pub server: Arc<Server>,
    pub serve: tokio::task::JoinHandle<()>,
}

pub const DEFAULT_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl Server {
    /// Loads the PKI and the cache, seeds the default namespaces and PriorityClasses and starts serving HTTPS.
    pub async fn start(config: Config, store: DynStore) -> Result<Running, Error> {
        let tls_dir = config.data_dir.join("server").join("tls");
        let mut ips = vec![config.listen.ip()];
        ips.extend(config.extra_ips.iter().copied());
        let pki = pki::Pki::load_or_create(&tls_dir, &ips)?;
        let cache = cache::Cache::start(store.clone(), config.watch_cache_size).await?;
        let tokens = tokens::Tokens::new(
            &pki.service_account_key_pem,
            &pki.service_account_public_pem,
        )?;
        let server = Arc::new(Server {
            store,
            cache,
            pki,
            tokens,
            metrics: metrics::Metrics::default(),
            openapi: openapi::Documents::build(),
            started: std::time::Instant::now(),
            audit: match &config.audit_log_path {
                Some(path) => Some(audit::AuditLog::open(path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?),
                None => None,
            },
            service_range: config.service_cluster_ip_range,
            allocating: tokio::sync::Mutex::new(()),
        });
        rest::seed(&server).await;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })?;
        rest::seed_kubernetes_service(&server, advertised(&config, addr), addr.port()).await;
        let acceptor = tls::acceptor(&server.pki)?;
        let app = app(server.clone());
        let inflight = limits::InFlight::new(
            config.max_requests_inflight,
            config.max_mutating_requests_inflight,
        );
        let serve = tokio::spawn(tls::serve(listener, acceptor, app, inflight));
        tokio::spawn(compact_periodically(
            server.store.clone(),
            config.compaction_interval,
        ));
        tokio::spawn(event_ttl::run(server.clone(), config.event_ttl));
        Ok(Running {
            addr,
            server,
            serve,
        })
    }
}

/// The address the `kubernetes` Endpoints name: the first IPv4 address pods reach the server at,
/// else the one it listens on (loopback when it listens on every address).
fn advertised(config: &Config, addr: SocketAddr) -> std::net::Ipv4Addr {
    let v4 = |ip: &std::net::IpAddr| match ip {
        std::net::IpAddr::V4(v4) if !v4.is_unspecified() => Some(*v4),
        _ => None,
    };
    config
        .extra_ips
        .iter()
        .find_map(v4)
        .or_else(|| v4(&addr.ip()))
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST)
}

impl Server {
    /// A client of this server that calls its router in-process, as `identity`: the control-plane
    /// components (scheduler, controllers) run in the server's process and need neither TCP nor
    /// TLS to reach it. Every request still goes through authentication and the REST handlers,
    /// so they get exactly the checks a remote client gets. Upgrades (exec, attach,
    /// port-forward) need a real connection and are not available through it.
    pub fn loopback_client(self: &Arc<Self>, identity: auth::PeerCertificate) -> kube::Client {
        let router = app(self.clone());
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut req: ::http::Request<kube::client::Body>| {
                req.extensions_mut().insert(identity.clone());
                req.map(axum::body::Body::new)
            })
            .service(router);
        kube::Client::new(service, "default")
    }
}

/// Compacts to the revision seen one interval ago, as kube-apiserver does every five minutes,
/// so watchers a little behind can still resume.
async fn compact_periodically(store: DynStore, interval: Duration) {
    let mut previous = None;
    loop {
        tokio::time::sleep(interval).await;
        let current = match store.current_revision().await {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(%err, "compaction: reading the revision failed");
                continue;
            }
        };
        if let Some(rev) = previous {
            if let Err(err) = store.compact(rev).await {
                tracing::warn!(%err, revision = rev, "compaction failed");
            } else {
                tracing::debug!(revision = rev, "compacted");
            }
        }
        previous = Some(current);
    }
}
