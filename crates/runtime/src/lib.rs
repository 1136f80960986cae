//! The node's container runtime layer: everything between "run this pod" and the kernel.
//!
//! - [`image`]: the OCI image store on disk — content-addressed blobs, unpacked layers shared
//!   between containers, import of OCI and `docker save` archives, references and their configs.
//! - [`sandbox`]: pod sandboxes — netns + CNI, the pause process holding UTS/IPC, /etc files.
//! - [`oci`]: bundles — overlay root filesystems and `config.json`.
//! - [`container`]: the OCI runtime (crun/runc) under conmon: create, start, state, kill, exit codes.
//! - [`cgroups`]: cgroup layout detection, the hybrid-mode fix crun needs, pod cgroup removal.
//! - [`volume`]: projected files written atomically, memory-backed `emptyDir`s, `hostPath` checks.
//!
//! **Invariant:** this crate never makes the node agent the parent of container processes:
//! containers run under a per-container shim (conmon) that outlives the agent.
//! **Boundary:** no Kubernetes API access here; callers pass plain specs and get plain results.

pub mod cgroups;
pub mod container;
pub mod exec;
pub mod image;
pub mod oci;
pub mod sandbox;
pub mod volume;

/// Errors of the runtime layer, named for the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image archive {path}: {reason}")]
    BadArchive {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("image {0} is not present")]
    ImageNotFound(String),
    #[error("invalid image reference {0:?}")]
    BadReference(String),
    #[error("digest mismatch for {expected}: got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{command}: {message}")]
    Command { command: String, message: String },
}

impl Error {
    pub fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
