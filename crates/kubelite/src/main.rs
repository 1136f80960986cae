//! The `kubelite` binary: parses the command line, starts logging and runs the chosen component.
//! All behaviour lives in the library crates; this file only wires them together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

mod files;
mod images;

// The API server churns through many short-lived JSON trees; mimalloc returns that memory instead
// of fragmenting per-thread arenas the way glibc malloc does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kubelite",
    version,
    about = "A Kubernetes-compatible cluster in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Datastore {
    Sqlite,
    Etcd,
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Import `docker save` or OCI image archives.
    Import { files: Vec<PathBuf> },
    /// List the images on this node.
    Ls,
    /// Remove images (the node agent must be stopped).
    Rm { references: Vec<String> },
}

/// How this node's pods are networked and run.
#[derive(clap::Args, Clone, Debug)]
struct PodNetwork {
    /// The pod subnet of this node.
    #[arg(long, default_value = "10.42.0.0/24")]
    pod_cidr: String,
    /// The Linux bridge pods attach to.
    #[arg(long, default_value = "kubelite0")]
    pod_bridge: String,
    /// The OCI runtime binary (crun; runc is used when crun is missing).
    #[arg(long, default_value = "crun")]
    oci_runtime: String,
    /// The port of the node's HTTPS server (container logs).
    #[arg(long, default_value_t = 10250)]
    kubelet_port: u16,
    /// Resources kept for the system, not allocatable to pods: `cpu=500m,memory=1Gi`.
    #[arg(long, default_value = "", value_parser = parse_reserved)]
    system_reserved: api::resources::Resources,
    /// A container log past this size is rotated (the kubelet's `containerLogMaxSize`).
    #[arg(long, default_value = "10Mi", value_parser = parse_bytes)]
    container_log_max_size: u64,
    /// How many files of a container's log are kept, the current one included.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..))]
    container_log_max_files: u16,
    /// Seconds between looks at the container logs' sizes.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    container_log_monitor_seconds: u64,
}

/// A duration as kube-apiserver's flags take it (`1h`, `30m`, `90s`), more than zero.
fn parse_service_range(text: &str) -> Result<api::service::IpRange, String> {
    api::service::IpRange::parse(text).ok_or_else(|| {
        format!("{text:?} is not an IPv4 range such as 10.43.0.0/16 (prefix 8 to 30)")
    })
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    cli::config::parse_duration(text)
        .map_err(|e| e.to_string())
        .and_then(|d| {
            (!d.is_zero())
                .then_some(d)
                .ok_or_else(|| "must be more than zero".into())
        })
}

/// A size quantity (`10Mi`) in bytes.
fn parse_bytes(text: &str) -> Result<u64, String> {
    api::quantity::parse(text)
        .filter(|q| *q > 0)
        .map(|q| api::quantity::to_units(q) as u64)
        .ok_or_else(|| format!("{text:?} is not a size"))
}

/// A memory quantity (`256Gi`) in KiB.
fn parse_memory_kib(text: &str) -> Result<u64, String> {
    api::quantity::parse(text)
        .filter(|q| *q > 0)
        .map(|q| (api::quantity::to_units(q) / 1024) as u64)
        .ok_or_else(|| format!("{text:?} is not a memory quantity"))
}

/// Parses `cpu=500m,memory=1Gi,ephemeral-storage=1Gi` as the kubelet's `--system-reserved`.
fn parse_reserved(text: &str) -> Result<api::resources::Resources, String> {
    let mut map = std::collections::BTreeMap::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not NAME=QUANTITY"))?;
        let name = name.trim();
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") {
            return Err(format!(
                "cannot reserve {name:?}: only cpu, memory and ephemeral-storage"
            ));
        }
        if api::quantity::parse(value).is_none_or(|q| q < 0) {
            return Err(format!("{value:?} is not a quantity"));
        }
        map.insert(
            name.to_string(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity(value.trim().into()),
        );
    }
    Ok(api::resources::Resources::from_map(Some(&map)))
}

impl PodNetwork {
    fn node_config(
        &self,
        node_name: String,
        data_dir: &std::path::Path,
        ca_pem: String,
        api_server: Option<SocketAddr>,
    ) -> anyhow::Result<node::Config> {
        let state_dir = data_dir.join("agent");
        let exe = std::env::current_exe().context("finding this binary for the pause process")?;
        Ok(node::Config {
            node_name,
            lease_interval: Duration::from_secs(10),
            network: runtime::sandbox::NetworkConfig {
                bridge: self.pod_bridge.clone(),
                subnet: self.pod_cidr.clone(),
                cni_bin_dir: PathBuf::from("/usr/lib/cni"),
                ipam_dir: state_dir.join("cni"),
            },
            pause: vec![exe.display().to_string(), "pause".into()],
            oci_runtime: self.oci_runtime.clone(),
            kubelet_port: self.kubelet_port,
            system_reserved: self.system_reserved,
            ca_pem,
            state_dir,
            api_server,
            log_rotation: node::log_rotation::Policy {
                max_size: self.container_log_max_size,
                max_files: usize::from(self.container_log_max_files),
                interval: Duration::from_secs(self.container_log_monitor_seconds),
            },
        })
    }
}

/// Connects to etcd once it answers, however long that takes: the server may start before its
/// datastore, as kube-apiserver and k3s may (it does not listen, so it is not ready, meanwhile).
async fn wait_for_etcd(endpoints: &[String]) -> store::etcd::EtcdStore {
    use store::Store;
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let store = store::etcd::EtcdStore::connect(endpoints).await?;
            store.current_revision().await?;
            Ok::<_, store::StoreError>(store)
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(store)) => return store,
            Ok(Err(err)) => {
                tracing::warn!(%err, endpoints = %endpoints.join(","), "etcd does not answer yet")
            }
            Err(_) => tracing::warn!(endpoints = %endpoints.join(","), "etcd does not answer yet"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// The socket address of a server URL (`https://host:port`), resolving a host name.
fn server_address(url: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    let uri: http::Uri = url.parse().ok()?;
    let port = uri.port_u16().unwrap_or(443);
    (uri.host()?.trim_matches(|c| c == '[' || c == ']'), port)
        .to_socket_addrs()
        .ok()?
        .next()
}

#[derive(Subcommand)]
enum Command {
    /// The Kubernetes command line, built in (`kubelite kubectl get pods`; also what the binary
    /// is when called through a link named `kubectl`).
    #[command(disable_help_flag = true)]
    Kubectl {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the control plane: API server on the chosen datastore.
    Server {
        /// Where state, certificates and tokens live.
        #[arg(long, default_value = "/var/lib/kubelite")]
        data_dir: PathBuf,
        /// Address and port of the HTTPS API.
        #[arg(long, default_value = "127.0.0.1:6443")]
        https_listen: SocketAddr,
        /// Read requests in flight at once before the server answers 429 (0: no limit).
        #[arg(long, default_value_t = 400)]
        max_requests_inflight: usize,
        /// Write requests in flight at once before the server answers 429 (0: no limit).
        #[arg(long, default_value_t = 200)]
        max_mutating_requests_inflight: usize,
        /// Write the admin kubeconfig here.
        #[arg(long, default_value = "/etc/kubelite/kubelite.yaml")]
        write_kubeconfig: PathBuf,
        /// The file mode of the admin kubeconfig, in octal (it holds the admin's private key).
        #[arg(long, default_value = "0600", value_parser = files::parse_mode)]
        write_kubeconfig_mode: u32,
        /// The storage backend.
        #[arg(long, value_enum, default_value = "sqlite")]
        datastore: Datastore,
        /// etcd client URLs, comma-separated (with --datastore etcd).
        #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
        etcd_endpoints: Vec<String>,
        /// Do not run a node agent in this process.
        #[arg(long)]
        disable_agent: bool,
        /// Seconds between compactions of old store revisions.
        #[arg(long, default_value_t = 300, hide = true)]
        compaction_interval: u64,
        /// Past events the watch cache keeps for resuming watches.
        #[arg(long, default_value_t = apiserver::cache::DEFAULT_HISTORY, hide = true)]
        watch_cache_size: usize,
        /// How long an event is kept after it was last written (`1h`, `30m`, `90s`).
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        event_ttl: Duration,
        /// Append an audit event (JSON) for every request to this file (`-`: standard output).
        #[arg(long)]
        audit_log_path: Option<PathBuf>,
        /// The IPv4 range Services' cluster IPs come from (its first address is the
        /// `kubernetes` Service's).
        #[arg(long, default_value = "10.43.0.0/16", value_parser = parse_service_range)]
        service_cluster_ip_range: api::service::IpRange,
        /// The name of this machine's node (default: the hostname).
        #[arg(long)]
        node_name: Option<String>,
        #[command(flatten)]
        pods: PodNetwork,
        /// Seconds a node's lease may go unrenewed before it is marked not ready.
        #[arg(long, default_value_t = 40, hide = true)]
        node_monitor_grace_period: u64,
    },
    /// Run a node agent that joins a cluster.
    #[command(group = clap::ArgGroup::new("join").required(true).args(["token_file", "token"]))]
    Agent {
        /// The API server, `https://host:port`.
        #[arg(long)]
        server: String,
        /// A file holding the join token (the server writes it to
        /// <data-dir>/server/tls/node-token). Prefer this: a token on the command line is
        /// visible to every user in `ps`.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// The join token itself (or set KUBELITE_TOKEN).
        #[arg(long, env = "KUBELITE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The name of this node (default: the hostname).
        #[arg(long)]
        node_name: Option<String>,
        /// Where the agent keeps its state.
        #[arg(long, default_value = "/var/lib/kubelite")]
        data_dir: PathBuf,
        #[command(flatten)]
        pods: PodNetwork,
        /// Register this many fake nodes (named after --node-name, then -0, -1, …) that report
        /// their pods Running without running anything: for scheduler tests and benchmarks.
        #[arg(long, default_value_t = 0)]
        fake_nodes: usize,
        /// The CPUs each fake node offers.
        #[arg(long, default_value_t = 32)]
        fake_cpus: usize,
        /// The memory each fake node offers.
        #[arg(long, default_value = "256Gi", value_parser = parse_memory_kib)]
        fake_memory: u64,
    },
    /// Manage the node's images.
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
        /// The node's data dir.
        #[arg(long, global = true, default_value = "/var/lib/kubelite")]
        data_dir: PathBuf,
    },
    /// A pod's pause process (started by the node agent).
    #[command(hide = true)]
    Pause {
        /// The pod's own hostname (none: the node's, as with hostNetwork).
        #[arg(long)]
        hostname: Option<String>,
        /// The pod's network namespace (none: the node's).
        #[arg(long)]
        netns: Option<PathBuf>,
        #[arg(long)]
        pidfile: PathBuf,
        /// Hold a PID namespace for the pod's containers to share.
        #[arg(long)]
        share_pid: bool,
    },
}

/// mimalloc reads its options once, from the environment, when the process starts. For a
/// standalone node agent, return freed memory at once and commit arenas lazily: it halves the
/// agent's resident memory. (Not for the server: with 10,000 pods in its cache the same options
/// more than doubled its memory.)
fn tune_allocator(cli: &Cli) {
    use std::os::unix::process::CommandExt;
    let agent = matches!(cli.command, Command::Agent { .. });
    if !agent || std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let (args, token) = args_without_token();
    let mut command = std::process::Command::new(exe);
    command
        .args(args)
        .env("MIMALLOC_PURGE_DELAY", "0")
        .env("MIMALLOC_ARENA_EAGER_COMMIT", "0");
    if let Some(token) = token {
        command.env("KUBELITE_TOKEN", token);
    }
    let err = command.exec();
    eprintln!("re-executing with allocator options failed ({err}); going on without them");
}

/// This process's arguments without a `--token` (and the token): a re-executed agent gets the
/// token through its environment, which other users cannot read, instead of its command line.
fn args_without_token() -> (Vec<std::ffi::OsString>, Option<std::ffi::OsString>) {
    let mut args = Vec::new();
    let mut token = None;
    let mut given = std::env::args_os().skip(1);
    while let Some(arg) = given.next() {
        if arg == "--token" {
            token = given.next();
        } else if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--token=")) {
            token = Some(value.into());
        } else {
            args.push(arg);
        }
    }
    (args, token)
}

/// Lifts the soft limit on open files to the hard one, as Go programs (kube-apiserver, the
/// kubelet) do at start: every connection, watch and container log is a file, and Debian's
/// default soft limit of 1,024 would let a thousand idle clients stop the server accepting.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                eprintln!("raising the open files limit to {hard}: {err}");
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    // `kubelite kubectl …`, or the binary called through a `kubectl` link: the command line tool.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let called_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    if called_as.as_deref() == Some("kubectl") {
        std::process::exit(cli::main(args));
    }
    if args.get(1).is_some_and(|a| a == "kubectl") {
        args.remove(0);
        std::process::exit(cli::main(args));
    }
    let cli = Cli::parse();
    tune_allocator(&cli);
    // The pause process must fork before any thread exists: handle it before logging and tokio.
    if let Command::Pause {
        hostname,
        netns,
        pidfile,
        share_pid,
    } = &cli.command
    {
        return runtime::sandbox::pause_main(
            hostname.as_deref(),
            netns.as_deref(),
            pidfile,
            *share_pid,
        )
        .map_err(anyhow::Error::msg);
    }
    if let Command::Images { command, data_dir } = &cli.command {
        return match command {
            ImagesCommand::Import { files } => images::import(data_dir, files),
            ImagesCommand::Ls => images::list(data_dir),
            ImagesCommand::Rm { references } => images::remove(data_dir, references),
        };
    }
    raise_open_files_limit();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBELITE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(run(cli));
    // Blocking work still running (a container runtime call, an image import) must not hold the
    // process past a signal: conmon keeps the containers, and the next agent re-adopts them.
    runtime.shutdown_timeout(Duration::from_millis(300));
    result
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Server {
            data_dir,
            https_listen,
            max_requests_inflight,
            max_mutating_requests_inflight,
            write_kubeconfig,
            write_kubeconfig_mode,
            datastore,
            etcd_endpoints,
            disable_agent,
            compaction_interval,
            watch_cache_size,
            event_ttl,
            audit_log_path,
            service_cluster_ip_range,
            node_name,
            node_monitor_grace_period,
            pods,
        } => {
            let started = std::time::Instant::now();
            files::private_dir(&data_dir)?;
            files::private_dir(&data_dir.join("server"))?;
            let store: store::DynStore = match datastore {
                Datastore::Sqlite => {
                    let dir = data_dir.join("server").join("db");
                    files::private_dir(&dir)?;
                    Arc::new(
                        store::sqlite::SqliteStore::open(&dir.join("state.db"))
                            .context("opening the SQLite store")?,
                    )
                }
                Datastore::Etcd => Arc::new(wait_for_etcd(&etcd_endpoints).await),
            };
            let config = apiserver::Config {
                data_dir: data_dir.clone(),
                listen: https_listen,
                compaction_interval: Duration::from_secs(compaction_interval.max(1)),
                watch_cache_size,
                event_ttl,
                audit_log_path,
                service_cluster_ip_range,
                // Pods of the local agent reach the server through their bridge's gateway.
                max_requests_inflight,
                max_mutating_requests_inflight,
                extra_ips: (!disable_agent)
                    .then(|| node::in_cluster::gateway(&pods.pod_cidr))
                    .flatten()
                    .into_iter()
                    .collect(),
            };
            let running = apiserver::Server::start(config, store)
                .await
                .context("starting the API server")?;
            let host = match running.addr.ip() {
                ip if ip.is_unspecified() => "127.0.0.1".to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            let url = format!("https://{host}:{}", running.addr.port());
            let kubeconfig = admin_kubeconfig(&running.server.pki, &url);
            let yaml =
                serde_saphyr::to_string(&kubeconfig).context("serializing the kubeconfig")?;
            files::write_atomic(&write_kubeconfig, yaml.as_bytes(), write_kubeconfig_mode)?;
            // The control-plane components and the local agent are API clients like any other.
            // The control-plane components call the server in-process, each as itself; the
            // local agent is an API client like any other.
            let component = |name: &str| {
                running
                    .server
                    .loopback_client(apiserver::auth::PeerCertificate {
                        common_name: name.to_string(),
                        organizations: Vec::new(),
                    })
            };
            tokio::spawn(scheduler::run(component("system:kube-scheduler")));
            let lifecycle = controllers::node_lifecycle::Config {
                grace_period: Duration::from_secs(node_monitor_grace_period),
                ..Default::default()
            };
            tokio::spawn(controllers::node_lifecycle::run(
                component("system:kube-controller-manager"),
                lifecycle,
            ));
            tokio::spawn(controllers::disruption::run(component(
                "system:kube-controller-manager",
            )));
            tokio::spawn(controllers::resource_quota::run(component(
                "system:kube-controller-manager",
            )));
            tokio::spawn(controllers::namespace_defaults::run(
                component("system:kube-controller-manager"),
                running.server.pki.ca.cert_pem.clone(),
            ));
            let client = admin_client(kubeconfig).await?;
            if !disable_agent {
                let ca = running.server.pki.ca.cert_pem.clone();
                let config = pods.node_config(
                    node_name.unwrap_or_else(hostname),
                    &data_dir,
                    ca,
                    Some(running.addr),
                )?;
                tokio::spawn(async move {
                    if let Err(err) = node::run(client, config).await {
                        tracing::error!(%err, "the node agent stopped");
                    }
                });
            }
            tracing::info!(
                %url,
                kubeconfig = %write_kubeconfig.display(),
                ready_ms = started.elapsed().as_millis() as u64,
                "kubelite is ready"
            );
            tokio::select! {
                _ = running.serve => anyhow::bail!("the API server stopped"),
                _ = shutdown_signal() => {
                    tracing::info!("shutting down");
                    Ok(())
                }
            }
        }
        Command::Pause { .. } | Command::Images { .. } | Command::Kubectl { .. } => {
            unreachable!("handled before the async runtime starts")
        }
        Command::Agent {
            server,
            token_file,
            token,
            node_name,
            data_dir,
            pods,
            fake_nodes,
            fake_cpus,
            fake_memory,
        } => {
            files::private_dir(&data_dir)?;
            let token = match (token_file, token) {
                (Some(file), _) => std::fs::read_to_string(&file)
                    .with_context(|| format!("reading the join token from {}", file.display()))?
                    .trim()
                    .to_string(),
                (None, Some(token)) => token,
                (None, None) => anyhow::bail!("give the join token with --token-file"),
            };
            let (client, ca) = node::join::client(&server, &token)
                .await
                .context("joining the cluster")?;
            let config = pods.node_config(
                node_name.unwrap_or_else(hostname),
                &data_dir,
                ca,
                server_address(&server),
            )?;
            if fake_nodes > 0 {
                let fake = node::fake::FakeNodes {
                    prefix: config.node_name.clone(),
                    count: fake_nodes,
                    cpus: fake_cpus,
                    memory_kib: fake_memory,
                };
                return tokio::select! {
                    res = node::fake::run(client, config, fake) => res.context("fake nodes"),
                    _ = shutdown_signal() => Ok(()),
                };
            }
            tracing::info!(%server, node = %config.node_name, "node agent starting");
            tokio::select! {
                res = node::run(client, config) => res.context("node agent"),
                _ = shutdown_signal() => Ok(()),
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The admin kubeconfig for `url`, with the cluster CA and the admin client certificate inline.
fn admin_kubeconfig(pki: &apiserver::pki::Pki, url: &str) -> kube::config::Kubeconfig {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let cluster = kube::config::Cluster {
        certificate_authority_data: Some(b64(&pki.ca.cert_pem)),
        ..Default::default()
    };
    let user = kube::config::AuthInfo {
        client_certificate_data: Some(b64(&pki.admin.cert_pem)),
        client_key_data: Some(secrecy::SecretString::from(b64(&pki.admin.key_pem))),
        ..Default::default()
    };
    node::join::kubeconfig(url, cluster, user)
}

/// A client of our own API server with the admin credentials.
async fn admin_client(kc: kube::config::Kubeconfig) -> anyhow::Result<kube::Client> {
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .context("admin client config")?;
    kube::Client::try_from(config).context("admin client")
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
