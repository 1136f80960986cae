//! The revisioned key-value store that holds every API object.
//!
//! This crate's one job is the storage contract Kubernetes' `storage.Interface` has over etcd:
//! create-if-absent, get, list at one consistent revision, compare-and-swap update and delete on an
//! object's revision, watch from a revision (with [`StoreError::Compacted`] when that revision is gone),
//! and compaction. The revision is a single counter for the whole store; the API server exposes it as
//! `resourceVersion`.
//!
//! Start at [`Store`]. Two backends implement it: [`sqlite::SqliteStore`] (embedded, the default) and
//! [`etcd::EtcdStore`]. Both must pass the one suite in [`conformance`].
//!
//! **Invariant:** this crate knows nothing about Kubernetes objects: keys are strings, values are bytes.

pub mod conformance;
pub mod etcd;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

/// A store revision: strictly increasing with every write, shared by all keys.
pub type Revision = i64;

/// One key at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision of the write that created this key (reset when a key is deleted and created again).
    pub create_revision: Revision,
    /// The revision of the last write to this key.
    pub mod_revision: Revision,
}

/// What a write did to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
}

/// One change seen by a watcher. For [`EventKind::Deleted`], `kv` holds the last value the key had and
/// `kv.mod_revision` is the revision of the delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
}

/// A stream of changes in revision order. It ends (the sender is dropped) when the store shuts down;
/// an `Err` item ends it too.
pub type WatchReceiver = mpsc::Receiver<Result<WatchEvent, StoreError>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    #[error("key {key} not found")]
    NotFound { key: String },
    /// The precondition on the key's revision failed; `current` is what the key holds now.
    #[error("key {key} was modified (expected revision {expected})")]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<Box<KeyValue>>,
    },
    /// The requested revision was compacted away.
    #[error("revision {requested} is compacted (oldest available is {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("preparing {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("store is shut down")]
    Closed,
    #[error("store task failed: {0}")]
    Task(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The storage contract. All methods are safe to call concurrently.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates `key` if it does not exist; returns the new revision.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision>;
    /// The current value of `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    /// Every key starting with `prefix`, sorted by key, and the store revision they were read at.
    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision)>;
    /// Replaces `key` if its `mod_revision` is still `expected`; returns the new revision.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision>;
    /// Deletes `key` (if its `mod_revision` is `expected`, when given); returns its last value and
    /// the revision of the delete.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)>;
    /// Changes to keys under `prefix` with a revision greater than `after`, in order, then live.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchReceiver>;
    /// The revision of the newest write.
    async fn current_revision(&self) -> Result<Revision>;
    /// Forgets history before `revision`; watches from older revisions fail with `Compacted`.
    async fn compact(&self, revision: Revision) -> Result<()>;
}

pub type DynStore = Arc<dyn Store>;

/// The exclusive end of the key range that starts with `prefix`.
pub(crate) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
